// What each Debian package holds, as a pure function of the emissions:
// one leakless-<module> per module, leakless-users (the fixed ids, before
// anything that would allocate them) and the leakless metapackage. The
// emission's paths are the packages' paths (one layout for the image and the
// packages); only files another package owns, or that every Debian system
// has, are shipped as a vendor copy and put in place under a diversion.
import { gzipSync } from 'node:zlib';
import { rfc2822Date } from '@leakless/apt-repo';
import type { Emission, GeneratedFile } from '@leakless/policy';
import { byteOrder, PATHS, UNIT_SEARCH_PATH } from '@leakless/policy';
import { modulePostinst, modulePostrm, modulePrerm, usersPreinst, type ModuleScripts } from './scripts.js';
import { debianVersionProblem } from './version.js';

/** Bad input, named by its field: nothing is built. */
export class DebInputError extends Error {
  override readonly name = 'DebInputError';
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/**
 * Paths under /etc that exist on a Debian system before leakless is
 * installed: a file of another package (`dpkg -S` in a bookworm chroot with
 * the packages' Depends installed) or a local file of every system. They are
 * diverted (dpkg-divert --rename), so removing leakless gives the original
 * back and reinstalling the owner never overwrites leakless' copy (Whonix
 * diverts the torrc the same way). The value is the owning package, or
 * says there is none. e2e/iso/deb.test.ts checks the table against a
 * bookworm chroot: every shipped path that exists there is here, and each
 * named owner is what dpkg -S says. A path that may be absent (sources.list
 * on a system configured with deb822 .sources) is diverted all the same: the
 * diversion then only records that there is nothing to give back.
 */
export const DIVERTED: Readonly<Record<string, string>> = {
  '/etc/tor/torrc': 'tor',
  '/etc/tor/torsocks.conf': 'torsocks',
  [PATHS.resolvConf]: 'the local resolver configuration (no package)',
  '/etc/environment': 'the local environment (no package)',
  '/etc/apt/sources.list': 'the local apt sources (no package)',
};

/** Suffix of a diverted original: /etc/tor/torrc.leakless-orig (no program reads that name). */
export const DIVERT_SUFFIX = '.leakless-orig';
/** Where a diverted file's vendor copy is shipped: /usr/share/leakless/etc/tor/torrc. */
export const VENDOR_COPIES = PATHS.share;

/**
 * bookworm's Essential packages: always installed, so Debian policy (3.5)
 * forbids depending on them without a version (lintian
 * depends-on-essential-package-without-using-version); a module that names
 * one (util-linux) gets no Depends for it. e2e/iso/deb.test.ts compares this
 * list with a bookworm chroot.
 */
export const ESSENTIAL = [
  'base-files',
  'base-passwd',
  'bash',
  'bsdutils',
  'coreutils',
  'dash',
  'debianutils',
  'diffutils',
  'dpkg',
  'findutils',
  'grep',
  'gzip',
  'hostname',
  'init-system-helpers',
  'libc-bin',
  'login',
  'ncurses-base',
  'ncurses-bin',
  'perl-base',
  'sed',
  'sysvinit-utils',
  'tar',
  'util-linux',
] as const;

export const USERS_PACKAGE = 'leakless-users';
export const META_PACKAGE = 'leakless';
export const DEFAULT_MAINTAINER = 'leakless developers <leakless@example.org>';

export interface PackageUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly shell: string;
  /** A login account (the desktop user) rather than a system account. */
  readonly login: boolean;
}

export interface Diversion {
  readonly path: string;
  readonly divertTo: string;
  readonly vendorCopy: string;
  readonly mode: number;
  /** Whose file it is (the package, or "no package"). */
  readonly owner: string;
}

export interface DebFile {
  /** Absolute path in the installed system. */
  readonly path: string;
  readonly content: Buffer;
  readonly mode: number;
}

export interface DebPackage {
  readonly name: string;
  /** The module it comes from; undefined for leakless-users and the metapackage. */
  readonly module?: string;
  readonly version: string;
  readonly preDepends: readonly string[];
  readonly depends: readonly string[];
  readonly synopsis: string;
  readonly description: readonly string[];
  readonly files: readonly DebFile[];
  readonly conffiles: readonly string[];
  readonly diversions: readonly Diversion[];
  readonly units: { readonly enabled: readonly string[]; readonly masked: readonly string[] };
  readonly scripts: Readonly<Partial<Record<'preinst' | 'postinst' | 'prerm' | 'postrm', string>>>;
}

export interface DebInput {
  readonly emissions: readonly Emission[];
  readonly users: readonly PackageUser[];
  /** The same accounts as the image's users.tsv (usersTsv of @leakless/image), for leakless-users' preinst. */
  readonly usersTsv: string;
  /** release.version of the policy. */
  readonly version: string;
  readonly sourceDateEpoch: number;
  readonly policyName: string;
  readonly maintainer?: string;
}

export interface DebPlan {
  readonly version: string;
  readonly sourceDateEpoch: number;
  readonly maintainer: string;
  readonly packages: readonly DebPackage[];
}

/** systemd units the emission says must never start (contract field maskedUnits; absent in older emissions). */
export function maskedUnitsOf(e: Emission): readonly string[] {
  return (e as Emission & { readonly maskedUnits?: readonly string[] }).maskedUnits ?? [];
}

export function packageName(module: string): string {
  return `leakless-${module}`;
}

/** An emission with nothing to install (crosscheck: checks only) gets no package. */
function installsSomething(e: Emission): boolean {
  return e.files.length > 0 || e.units.length > 0 || maskedUnitsOf(e).length > 0 || e.users.length > 0;
}

/** A unit the package ships: its file is in one of systemd's unit directories. */
const UNIT_DIRS: readonly string[] = UNIT_SEARCH_PATH;

/** Every problem that stops a build, first the fields, then the paths. */
export function inputProblems(inp: DebInput): DebInputError[] {
  const problems: DebInputError[] = [];
  const vp = debianVersionProblem(inp.version);
  if (vp) problems.push(new DebInputError('release.version', `${JSON.stringify(inp.version)} is not a Debian version: ${vp}`));
  const owner = new Map<string, string>();
  for (const e of inp.emissions) {
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(packageName(e.module)))
      problems.push(new DebInputError('module', `${JSON.stringify(e.module)} makes no Debian package name`));
    for (const f of e.files) {
      const prev = owner.get(f.path);
      if (prev && prev !== e.module)
        problems.push(new DebInputError('files', `${f.path} is claimed by both ${packageName(prev)} and ${packageName(e.module)}`));
      owner.set(f.path, e.module);
      if (!f.path.startsWith('/') || f.path.split('/').some((s) => s === '..' || s === '.') || /[\s\\]/.test(f.path)) {
        problems.push(new DebInputError('files', `${JSON.stringify(f.path)} (${e.module}) is not a plain absolute path`));
      }
    }
  }
  const all = [...owner.keys()];
  for (const p of all) {
    const copy = `${VENDOR_COPIES}${p}`;
    if (DIVERTED[p] && owner.has(copy))
      problems.push(new DebInputError('files', `${copy} is claimed by ${packageName(owner.get(copy)!)} and is the vendor copy of ${p}`));
    for (const q of all)
      if (q.startsWith(`${p}/`))
        problems.push(new DebInputError('files', `${p} is a file of ${packageName(owner.get(p)!)} and a directory of ${packageName(owner.get(q)!)}`));
  }
  return problems;
}

const wrap = (text: string, width = 72): string[] => {
  const out: string[] = [];
  let line = '';
  for (const w of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + w.length > width) {
      out.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) out.push(line);
  return out;
};

/** /usr/share/doc/PKG/{copyright,changelog.gz}: every Debian package has both (lintian no-copyright-file, no-changelog). */
/**
 * lintian reports a diversion of a file the package does not ship
 * (diversion-for-unknown-file). Ours are replaced in postinst by the vendor
 * copy: a diverted path cannot also be a conffile of the diverting package
 * (dpkg keeps one conffile record per path; the owner's record made dpkg
 * prompt at install and delete the restored original at purge when we
 * tried). Each override names the file and why.
 */
function lintianOverrides(pkg: string, diversions: readonly Diversion[]): DebFile[] {
  if (diversions.length === 0) return [];
  const text = diversions
    .map((d) => `# ${d.path} (${d.owner}) is replaced in postinst by ${d.vendorCopy}\n${pkg}: diversion-for-unknown-file ${d.path.slice(1)} [postinst:*]\n`)
    .join('');
  return [{ path: `/usr/share/lintian/overrides/${pkg}`, content: Buffer.from(text), mode: 0o644 }];
}

function docFiles(pkg: string, inp: DebInput, maintainer: string): DebFile[] {
  const copyright = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: leakless
Comment: Generated by leakless deb from the policy "${inp.policyName}".

Files: *
Copyright: ${new Date(inp.sourceDateEpoch * 1000).getUTCFullYear()} leakless contributors
License: GPL-3+

License: GPL-3+
 This program is free software: you can redistribute it and/or modify it
 under the terms of the GNU General Public License as published by the Free
 Software Foundation, either version 3 of the License, or (at your option)
 any later version.
 .
 On Debian systems, the complete text of the GNU General Public License
 version 3 can be found in "/usr/share/common-licenses/GPL-3".
`;
  const changelog = `${pkg} (${inp.version}) unstable; urgency=medium

  * Generated by leakless deb from the policy "${inp.policyName}", release
    ${inp.version}.

 -- ${maintainer}  ${rfc2822Date(inp.sourceDateEpoch)}
`;
  return [
    { path: `/usr/share/doc/${pkg}/copyright`, content: Buffer.from(copyright), mode: 0o644 },
    // gzip -9n: no name, no time (zlib writes mtime 0), maximum compression
    { path: `/usr/share/doc/${pkg}/changelog.gz`, content: gzipSync(Buffer.from(changelog), { level: 9 }), mode: 0o644 },
  ];
}

const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort(byteOrder);

function scriptsOf(s: ModuleScripts): DebPackage['scripts'] {
  const out: Partial<Record<'preinst' | 'postinst' | 'prerm' | 'postrm', string>> = {};
  const tidy = (t: string | undefined) => t?.replace(/\n[ \t]*\n(?:[ \t]*\n)+/g, '\n\n');
  const post = tidy(modulePostinst(s));
  const prerm = tidy(modulePrerm(s));
  const postrm = tidy(modulePostrm(s));
  if (post) out.postinst = post;
  if (prerm) out.prerm = prerm;
  if (postrm) out.postrm = postrm;
  return out;
}

function modulePackage(e: Emission, inp: DebInput, maintainer: string): DebPackage {
  const name = packageName(e.module);
  const files: DebFile[] = [];
  const conffiles: string[] = [];
  const diversions: Diversion[] = [];
  const owned: { path: string; uid: number; gid: number }[] = [];
  for (const f of [...e.files].sort((a, b) => byteOrder(a.path, b.path))) {
    if ((f.uid ?? 0) !== 0 || (f.gid ?? 0) !== 0) owned.push({ path: f.path, uid: f.uid ?? 0, gid: f.gid ?? 0 });
    const divertOwner = DIVERTED[f.path];
    if (divertOwner !== undefined) {
      const vendorCopy = `${VENDOR_COPIES}${f.path}`;
      diversions.push({ path: f.path, divertTo: `${f.path}${DIVERT_SUFFIX}`, vendorCopy, mode: f.mode, owner: divertOwner });
      files.push({ path: vendorCopy, content: Buffer.from(f.content), mode: 0o644 });
      continue;
    }
    files.push(fileOf(f));
    if (f.path.startsWith('/etc/')) conffiles.push(f.path);
  }
  const shipped = new Set(files.map((f) => f.path));
  const isOwn = (u: string) => UNIT_DIRS.some((d) => shipped.has(`${d}/${u}`));
  const enabled = sorted(e.units);
  const masked = sorted(maskedUnitsOf(e));
  const ownUnits = enabled.filter(isOwn);
  const foreignUnits = enabled.filter((u) => !isOwn(u));
  const reload = files.some((f) => UNIT_DIRS.some((d) => f.path.startsWith(`${d}/`)));
  const description = [
    ...wrap(`The ${e.module} module of leakless, generated from the policy "${inp.policyName}" (release ${inp.version}).`),
    '.',
    ...wrap(
      `Ships ${files.length} file(s)${conffiles.length ? `, ${conffiles.length} of them configuration files under /etc` : ''}.` +
        (diversions.length ? ` Replaces ${diversions.map((d) => `${d.path} (${d.owner})`).join(', ')} through dpkg-divert; removal restores them.` : '') +
        (enabled.length ? ` Enables ${enabled.join(', ')}.` : '') +
        (masked.length ? ` Masks ${masked.join(', ')}.` : ''),
    ),
  ];
  return {
    name,
    module: e.module,
    version: inp.version,
    preDepends: [`${USERS_PACKAGE} (= ${inp.version})`],
    depends: sorted(e.packages.filter((p) => !(ESSENTIAL as readonly string[]).includes(p))),
    synopsis: `leakless ${e.module} module (Tor-only network policy)`,
    description,
    files: [...files, ...lintianOverrides(name, diversions), ...docFiles(name, inp, maintainer)],
    conffiles,
    diversions,
    units: { enabled, masked },
    scripts: scriptsOf({ pkg: name, diversions, ownUnits, foreignUnits, maskedUnits: masked, owned, reload }),
  };
}

function fileOf(f: GeneratedFile): DebFile {
  return { path: f.path, content: Buffer.from(f.content), mode: f.mode };
}

function usersPackage(inp: DebInput, maintainer: string): DebPackage {
  const users = [...inp.users].sort((a, b) => a.uid - b.uid || byteOrder(a.name, b.name));
  return {
    name: USERS_PACKAGE,
    version: inp.version,
    // preinst runs useradd and groupadd before anything is unpacked
    preDepends: ['passwd'],
    depends: [],
    synopsis: 'leakless accounts with fixed ids (Tor-only network policy)',
    description: [
      ...wrap(
        `Creates the accounts the policy "${inp.policyName}" names, with their fixed uids and gids, before the packages that would allocate them: the firewall matches numeric uids from early boot.`,
      ),
      '.',
      ...wrap(`Accounts: ${users.map((u) => `${u.name} ${u.uid}:${u.gid}`).join(', ')}. Installing fails if one exists with other ids or an id is taken.`),
    ],
    files: docFiles(USERS_PACKAGE, inp, maintainer),
    conffiles: [],
    diversions: [],
    units: { enabled: [], masked: [] },
    scripts: { preinst: usersPreinst(USERS_PACKAGE, inp.usersTsv) },
  };
}

function metaPackage(inp: DebInput, modules: readonly DebPackage[], maintainer: string): DebPackage {
  return {
    name: META_PACKAGE,
    version: inp.version,
    preDepends: [],
    depends: [`${USERS_PACKAGE} (= ${inp.version})`, ...modules.map((m) => `${m.name} (= ${inp.version})`)],
    synopsis: 'Tor-only network policy (metapackage)',
    description: [
      ...wrap(
        `Everything the leakless policy "${inp.policyName}" puts on a system, in the Tails network model: every connection through Tor, a default-deny firewall, DNS only through Tor.`,
      ),
      '.',
      ...wrap(`Depends on ${[USERS_PACKAGE, ...modules.map((m) => m.name)].join(', ')}.`),
    ],
    files: docFiles(META_PACKAGE, inp, maintainer),
    conffiles: [],
    diversions: [],
    units: { enabled: [], masked: [] },
    scripts: {},
  };
}

/** The packages of a policy's emissions. Throws the first DebInputError (see inputProblems for all). */
export function planDebs(inp: DebInput): DebPlan {
  const problems = inputProblems(inp);
  if (problems.length) throw problems[0]!;
  const maintainer = inp.maintainer ?? DEFAULT_MAINTAINER;
  const modules = inp.emissions.filter(installsSomething).map((e) => modulePackage(e, inp, maintainer));
  return {
    version: inp.version,
    sourceDateEpoch: inp.sourceDateEpoch,
    maintainer,
    packages: [usersPackage(inp, maintainer), ...modules, metaPackage(inp, modules, maintainer)],
  };
}

/** The control file of a package (deb-control(5)). */
export function controlFile(p: DebPackage, maintainer: string): string {
  // Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up, and one per directory
  const dirs = new Set<string>();
  for (const f of p.files) for (let d = f.path.slice(0, f.path.lastIndexOf('/')); d; d = d.slice(0, d.lastIndexOf('/'))) dirs.add(d);
  const kib = p.files.reduce((n, f) => n + Math.max(1, Math.ceil(f.content.length / 1024)), 0) + dirs.size;
  const lines = [
    `Package: ${p.name}`,
    `Version: ${p.version}`,
    'Architecture: all',
    `Maintainer: ${maintainer}`,
    `Installed-Size: ${kib}`,
    ...(p.preDepends.length ? [`Pre-Depends: ${p.preDepends.join(', ')}`] : []),
    ...(p.depends.length ? [`Depends: ${p.depends.join(', ')}`] : []),
    `Section: ${p.module || p.name === USERS_PACKAGE ? 'admin' : 'metapackages'}`,
    'Priority: optional',
    'Multi-Arch: foreign',
    `Description: ${p.synopsis}`,
    ...p.description.map((l) => ` ${l}`),
  ];
  return `${lines.join('\n')}\n`;
}

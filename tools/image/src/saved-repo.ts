// The saved repository of a release: every .deb the image was built from and
// every .deb of the build tools that shape its bytes (GRUB's images and
// modules, shim, xorriso, mksquashfs, mmdebstrap, debos and what they run
// on), as two local apt repositories made by @leakless/apt-repo, with a copy
// of the manifest. Debian's mirror moves on within days and keeps no old
// versions; this directory is what lets anyone rebuild the same ISO next
// year (docs/design.md#reproducibility), the way Tails rebuilds from its
// frozen APT snapshots.
//
//   DIR/image/     the image's packages (flat repository)
//   DIR/tools/     the build environment's packages (flat repository)
//   DIR/leakless-amd64.manifest.json
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { canonicalDebName, makeAptRepo } from '@leakless/apt-repo';
import { digestFile } from './cache.js';

export class SavedRepoError extends Error {
  override readonly name = 'SavedRepoError';
}

export interface DebRecord {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
  readonly sha256: string;
}

export interface PackageId {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
}

/** What the build environment must contain besides the essential set: every tool that writes bytes into the ISO, and what runs them. */
export const BUILD_TOOL_PACKAGES = [
  'debos',
  'mmdebstrap',
  'squashfs-tools',
  'xorriso',
  'grub-common',
  'grub-pc-bin',
  'grub-efi-amd64-bin',
  'grub-efi-amd64-signed',
  'shim-signed',
  'mtools',
  'dosfstools',
  'systemd',
  'systemd-container',
  'util-linux',
  'mount',
  'apt',
  'dpkg',
  'tar',
  'findutils',
  'sed',
  'gzip',
  'zstd',
] as const;

export const MANIFEST_COPY = 'leakless-amd64.manifest.json';

interface Installed extends PackageId {
  readonly essential: boolean;
  readonly priority: string;
  readonly provides: readonly string[];
  readonly depends: readonly (readonly string[])[];
}

const names = (field: string) =>
  field
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map((alt) =>
      alt
        .split('|')
        .map((a) => a.trim().split(/[\s(:]/)[0]!)
        .filter(Boolean),
    );

/** The host's installed packages (dpkg status), with what the closure needs. */
export function parseInstalled(tsv: string): Installed[] {
  return tsv
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t'))
    .filter((f) => f[5]?.endsWith(' installed'))
    .map(([name, version, arch, essential, priority, , provides, pre, deps]) => ({
      name: name!,
      version: version!,
      arch: arch!,
      essential: essential === 'yes',
      priority: priority ?? '',
      provides: names(provides ?? '').flat(),
      depends: [...names(pre ?? ''), ...names(deps ?? '')],
    }));
}

/**
 * The installed packages a build environment of `seeds` needs: the seeds, the
 * essential and required set (what mmdebstrap's minbase installs), and the
 * Depends/Pre-Depends closure, each alternative resolved to the first one
 * that is installed here (by name, then by what it provides).
 */
export function toolClosure(installed: readonly Installed[], seeds: readonly string[]): PackageId[] {
  const byName = new Map(installed.map((p) => [p.name, p]));
  const provider = new Map<string, Installed>();
  for (const p of installed) for (const v of p.provides) if (!provider.has(v)) provider.set(v, p);
  const want = new Map<string, Installed>();
  const queue: Installed[] = [];
  const add = (p: Installed | undefined) => {
    if (p && !want.has(p.name)) {
      want.set(p.name, p);
      queue.push(p);
    }
  };
  for (const s of seeds) {
    const p = byName.get(s);
    if (!p) throw new SavedRepoError(`the build tool ${s} is not installed on this machine (tools/leakless/install-deps.sh e2e installs it)`);
    add(p);
  }
  for (const p of installed) if (p.essential || p.priority === 'required') add(p);
  while (queue.length) {
    const p = queue.shift()!;
    for (const alts of p.depends) {
      const hit = alts.map((a) => byName.get(a) ?? provider.get(a)).find((x) => x !== undefined);
      if (!hit) throw new SavedRepoError(`${p.name} depends on ${alts.join(' | ')}, which is not installed here`);
      add(hit);
    }
  }
  return [...want.values()].map(({ name, version, arch }) => ({ name, version, arch })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own ${field} format, not a template
const DPKG_FORMAT = '${Package}\t${Version}\t${Architecture}\t${Essential}\t${Priority}\t${Status}\t${Provides}\t${Pre-Depends}\t${Depends}\n';

/** The build environment this machine builds in: the tools, their closure and the essential set, at the installed versions. */
export async function hostBuildEnv(seeds: readonly string[] = BUILD_TOOL_PACKAGES): Promise<PackageId[]> {
  const r = await execa('dpkg-query', ['-W', '-f', DPKG_FORMAT], { reject: false });
  if (r.exitCode !== 0) throw new SavedRepoError(`dpkg-query failed: ${r.stderr}`);
  return toolClosure(parseInstalled(r.stdout), seeds);
}

/**
 * The tools whose own bytes end up in the ISO (GRUB's images and modules,
 * shim, xorriso's ISO writer, mksquashfs, mtools/mkfs.msdos for efi.img) and
 * the programs that run the build: their saved version must be the one
 * installed here, or a rebuild would not be a rebuild.
 */
export const BYTE_SHAPING_PACKAGES = [
  'debos',
  'mmdebstrap',
  'squashfs-tools',
  'xorriso',
  'libisofs6',
  'libburn4',
  'libisoburn1',
  'grub-common',
  'grub-pc-bin',
  'grub-efi-amd64-bin',
  'grub-efi-amd64-signed',
  'shim-signed',
  'shim-helpers-amd64-signed',
  'mtools',
  'dosfstools',
  'libzstd1',
] as const;

export interface FetchedDebs {
  readonly files: readonly string[];
  /** What was saved: the installed version, or the mirror's where the mirror no longer has it. */
  readonly packages: readonly PackageId[];
  /** Supporting packages saved at another version than the one installed here (the mirror dropped it). */
  readonly substituted: readonly { readonly name: string; readonly installed: string; readonly saved: string }[];
}

const UNAVAILABLE = /Can't find a source to download version '([^']+)' of '([^':]+)(?::[^']*)?'/g;

async function debControl(file: string): Promise<PackageId> {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-deb's own ${field} format, not a template
  const r = await execa('dpkg-deb', ['--show', '--showformat', '${Package}\t${Version}\t${Architecture}', file]);
  const [name, version, arch] = r.stdout.split('\t');
  return { name: name!, version: version!, arch: arch! };
}

/**
 * The .debs of these package versions, from the host's apt sources (apt-get
 * download checks them against the signed indexes), kept in `dir` between
 * builds. Debian's mirror keeps only the current point release: a supporting
 * package whose installed version it dropped is saved at the mirror's
 * version and listed as substituted; a byte-shaping tool never is.
 */
export async function fetchDebs(pkgs: readonly PackageId[], dir: string, note?: (s: string) => void): Promise<FetchedDebs> {
  await mkdir(dir, { recursive: true });
  const path = (p: PackageId) => join(dir, canonicalDebName(p.name, p.version, p.arch));
  const canonicalize = async () => {
    // apt names files with the epoch as %3a; the repository wants the canonical name
    for (const f of await readdir(dir)) {
      const m = /^(.+?)_(\d+)%3a(.+)$/.exec(f);
      if (m) await rename(join(dir, f), join(dir, `${m[1]}_${m[3]}`));
    }
  };
  const download = (specs: readonly string[]) => execa('apt-get', ['download', ...specs], { cwd: dir, reject: false, all: true });
  const missing = pkgs.filter((p) => !existsSync(path(p)));
  const substituted: { name: string; installed: string; saved: string }[] = [];
  const saved = new Map(pkgs.map((p) => [p.name, p]));
  if (missing.length) {
    note?.(`build environment: downloading ${missing.length} .debs of the installed build tools`);
    const r = await download(missing.map((p) => `${p.name}:${p.arch}=${p.version}`));
    const gone = new Map([...(r.all ?? '').matchAll(UNAVAILABLE)].map((m) => [m[2]!, m[1]!]));
    if (r.exitCode !== 0 && gone.size === 0)
      throw new SavedRepoError(`apt-get download of the build tools failed: ${(r.all ?? '').trim().split('\n').slice(-3).join(' | ')}`);
    const shaping = [...gone.keys()].filter((n) => (BYTE_SHAPING_PACKAGES as readonly string[]).includes(n));
    if (shaping.length)
      throw new SavedRepoError(
        `the mirror no longer has the installed ${shaping.map((n) => `${n} ${gone.get(n)}`).join(', ')}: upgrade the build tools and build again`,
      );
    if (gone.size) {
      // everything but the dropped versions came down in the first run only if apt fetched anything: fetch the rest again
      const again = await download([...missing.filter((p) => !gone.has(p.name)).map((p) => `${p.name}:${p.arch}=${p.version}`), ...[...gone.keys()]]);
      if (again.exitCode !== 0)
        throw new SavedRepoError(`apt-get download of the build tools failed: ${(again.all ?? '').trim().split('\n').slice(-3).join(' | ')}`);
    }
    await canonicalize();
    for (const f of await readdir(dir)) {
      if (!f.endsWith('.deb')) continue;
      const c = await debControl(join(dir, f));
      const want = saved.get(c.name);
      if (want && gone.has(c.name) && want.version !== c.version) {
        substituted.push({ name: c.name, installed: want.version, saved: c.version });
        saved.set(c.name, c);
      }
    }
  } else {
    // a previous download may have substituted: read what is there
    for (const p of pkgs) if (!existsSync(path(p))) throw new SavedRepoError(`no .deb for ${p.name} ${p.version}`);
  }
  const packages = [...saved.values()];
  const files = packages.map(path);
  const absent = files.filter((p) => !existsSync(p));
  if (absent.length) throw new SavedRepoError(`no .deb for ${absent.map((p) => basename(p)).join(', ')}`);
  if (substituted.length)
    note?.(
      `build environment: ${substituted.length} supporting packages saved at the mirror's version (${substituted.map((x) => `${x.name} ${x.installed} -> ${x.saved}`).join(', ')})`,
    );
  return { files, packages, substituted };
}

/** sha256 of every .deb of a directory, by the package it is. */
export async function debRecords(debsDir: string, pkgs: readonly PackageId[]): Promise<DebRecord[]> {
  const out: DebRecord[] = [];
  for (const p of pkgs) {
    const f = join(debsDir, canonicalDebName(p.name, p.version, p.arch));
    if (!existsSync(f)) throw new SavedRepoError(`the base records no .deb for ${p.name} ${p.version} (${p.arch})`);
    out.push({ ...p, sha256: (await digestFile(f, basename(f))).sha256 });
  }
  return out;
}

/**
 * Priority and Section of `names` in apt's index files: what the archive says
 * (it overrides the .debs' own control fields), the first index that lists a
 * package winning.
 */
export function archiveOverrides(packagesText: string, names: ReadonlySet<string>): Map<string, { priority: string; section: string }> {
  const out = new Map<string, { priority: string; section: string }>();
  for (const stanza of packagesText.split(/\n\s*\n/)) {
    const field = (f: string) => new RegExp(`^${f}: *(\\S+)`, 'm').exec(stanza)?.[1];
    const name = field('Package');
    const priority = field('Priority');
    const section = field('Section');
    if (name && priority && section && names.has(name) && !out.has(name)) out.set(name, { priority, section });
  }
  return out;
}

/** The index files of an apt state's lists directory (any compression apt reads), as one text. */
export async function listsText(listsDir: string): Promise<string> {
  const files = (await readdir(listsDir)).filter((f) => /_Packages(\.\w+)?$/.test(f)).sort();
  if (files.length === 0) throw new SavedRepoError(`${listsDir}: no apt index files (the package set was resolved elsewhere)`);
  const r = await execa('/usr/lib/apt/apt-helper', ['cat-file', ...files.map((f) => join(listsDir, f))], { reject: false, maxBuffer: 1e9 });
  if (r.exitCode !== 0) throw new SavedRepoError(`reading the apt indexes of ${listsDir} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

export interface SaveRepoInputs {
  readonly dir: string;
  readonly imageDebs: readonly string[];
  readonly toolDebs: readonly string[];
  readonly manifestPath: string;
  readonly sourceDateEpoch: number;
  readonly suite: string;
  /** The apt lists the image's package set was resolved from: the archive's Priority and Section go into the image repository's index. */
  readonly archiveLists: string;
}

/** Write the saved repository; returns its size in bytes. */
export async function saveRepo(o: SaveRepoInputs): Promise<number> {
  await mkdir(o.dir, { recursive: true });
  // the suite's codename: mmdebstrap picks the required set from the repository whose codename is the suite's
  const common = { sourceDateEpoch: o.sourceDateEpoch, suite: o.suite, codename: o.suite };
  // mmdebstrap's minbase of a rebuild picks the required set by the index's Priority: the archive's, not the .debs' (apt is important in its
  // control file, required in the archive; without this a rebuild's base has no apt)
  const names = new Set(await Promise.all(o.imageDebs.map(async (f) => (await debControl(f)).name)));
  const overrides = archiveOverrides(await listsText(o.archiveLists), names);
  await makeAptRepo({
    ...common,
    dir: join(o.dir, 'image'),
    debs: o.imageDebs,
    label: 'leakless-image',
    description: 'the packages of a leakless image',
    overrides,
  });
  await makeAptRepo({ ...common, dir: join(o.dir, 'tools'), debs: o.toolDebs, label: 'leakless-tools', description: 'the build tools of a leakless image' });
  await copyFile(o.manifestPath, join(o.dir, MANIFEST_COPY));
  const du = await execa('du', ['-sb', o.dir]);
  return Number(du.stdout.split('\t')[0]);
}

export interface SavedRepo {
  readonly dir: string;
  readonly manifest: Record<string, unknown> & {
    readonly packages: readonly DebRecord[];
    readonly buildEnv: { readonly packages: readonly PackageId[]; readonly substituted: readonly { name: string; installed: string; saved: string }[] };
    readonly aptSources: { readonly name: string; readonly content: string };
    readonly iso: { readonly sha256: string };
  };
}

/**
 * Open a saved repository: its manifest, and every image .deb checked
 * against the sha256 the manifest records (the repository is served to apt
 * as trusted; this check is what earns that).
 */
export async function openSavedRepo(dir: string, manifestPath = join(dir, MANIFEST_COPY)): Promise<SavedRepo> {
  if (!existsSync(join(dir, 'image', 'Packages')) || !existsSync(join(dir, 'tools', 'Packages')))
    throw new SavedRepoError(`--from-repo: ${dir} is not a saved repository (no image/Packages and tools/Packages; leakless iso --save-repo makes one)`);
  if (!existsSync(manifestPath)) throw new SavedRepoError(`--from-repo: no manifest at ${manifestPath}`);
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as SavedRepo['manifest'];
  if (!Array.isArray(manifest.packages) || !manifest.buildEnv || !manifest.aptSources)
    throw new SavedRepoError(`${manifestPath}: not a manifest with the packages, build environment and apt sources of its build`);
  for (const p of manifest.packages) {
    const f = join(dir, 'image', canonicalDebName(p.name, p.version, p.arch));
    if (!existsSync(f)) throw new SavedRepoError(`${dir}/image: no .deb for ${p.name} ${p.version} (${p.arch})`);
    const d = await digestFile(f, basename(f));
    if (d.sha256 !== p.sha256) throw new SavedRepoError(`${f}: sha256 ${d.sha256.slice(0, 16)}…, the manifest records ${p.sha256.slice(0, 16)}…`);
  }
  for (const p of manifest.buildEnv.packages) {
    if (!existsSync(join(dir, 'tools', canonicalDebName(p.name, p.version, p.arch))))
      throw new SavedRepoError(`${dir}/tools: no .deb for ${p.name} ${p.version} (${p.arch})`);
  }
  return { dir, manifest };
}

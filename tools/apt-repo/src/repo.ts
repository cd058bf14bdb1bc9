// The one helper that makes local apt repositories: .deb files in, a flat
// repository a `file:` source line serves out. Used for the leakless .debs
// (tools/deb, the bookworm chroot test) and for the packages an image was
// built from. Same .debs and same epoch give the same bytes, so a repository
// can be checksummed and shipped like any other build output
// (docs/design.md#reproducibility).
import { createHash } from 'node:crypto';
import { copyFile, link, mkdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';

export interface AptRepoOptions {
  /** The repository directory. Built beside it and renamed into place: a failure leaves the old one. */
  readonly dir: string;
  /** The .deb files to serve (copied, or hard-linked when on the same file system). */
  readonly debs: readonly string[];
  /** The Release file's Date and every file's mtime: same .debs and same epoch, same bytes. */
  readonly sourceDateEpoch: number;
  /** Release fields; defaults: origin and label "leakless", suite and codename "local". */
  readonly origin?: string;
  readonly label?: string;
  readonly suite?: string;
  readonly codename?: string;
  readonly description?: string;
  /**
   * The archive's Priority and Section per package (dpkg-scanpackages'
   * override file): Debian's archive overrides what a .deb's control says
   * (apt's says important, the archive makes it required), and mmdebstrap
   * picks its required set by the index's Priority.
   */
  readonly overrides?: ReadonlyMap<string, { readonly priority: string; readonly section: string }>;
}

export interface RepoPackage {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  /** Path inside the repository, e.g. ./leakless_0.1.0_all.deb */
  readonly filename: string;
  readonly size: number;
  readonly sha256: string;
}

export interface AptRepo {
  readonly dir: string;
  readonly packages: readonly RepoPackage[];
  /** sources.list line: `deb [trusted=yes] file:/abs/dir ./` */
  readonly sourcesLine: string;
  /** The same as a deb822 stanza (/etc/apt/sources.list.d/NAME.sources). */
  readonly sources: string;
}

/** Bad input (missing file, not a .deb, the same package version twice): nothing is written. */
export class AptRepoError extends Error {
  override readonly name = 'AptRepoError';
}

/** Index files the repository carries, in the order the Release file lists them. */
export const INDEX_FILES = ['Packages', 'Packages.gz'] as const;

const FIELD_SAFE = /^[\x21-\x7e][\x20-\x7e]*$/;

/**
 * A local repository is trusted by where it is, not by a signature: only a
 * directory this machine built may be served this way (apt's trusted=yes).
 */
export function sourcesLine(dir: string): string {
  return `deb [trusted=yes] file:${resolve(dir)} ./`;
}

export function sourcesStanza(dir: string): string {
  return `Types: deb\nURIs: file:${resolve(dir)}\nSuites: ./\nTrusted: yes\n`;
}

/** The date format apt's Release files and Debian changelogs use (RFC 2822, UTC). */
export function rfc2822Date(epoch: number): string {
  const d = new Date(epoch * 1000);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()]!;
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()]!;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${day}, ${p(d.getUTCDate())} ${month} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** The Release file of a flat repository: its fields and the digests of each index. */
export function releaseFile(
  fields: { origin: string; label: string; suite: string; codename: string; description: string; architectures: readonly string[]; sourceDateEpoch: number },
  indexes: readonly { name: string; content: Buffer }[],
): string {
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v === 'string' && !FIELD_SAFE.test(v)) throw new AptRepoError(`${k}: ${JSON.stringify(v)} is not a one-line printable value`);
  }
  const sum = (algo: string) => indexes.map((i) => ` ${createHash(algo).update(i.content).digest('hex')} ${String(i.content.length).padStart(8)} ${i.name}`);
  return [
    `Origin: ${fields.origin}`,
    `Label: ${fields.label}`,
    `Suite: ${fields.suite}`,
    `Codename: ${fields.codename}`,
    `Date: ${rfc2822Date(fields.sourceDateEpoch)}`,
    `Architectures: ${fields.architectures.join(' ')}`,
    `Description: ${fields.description}`,
    'MD5Sum:',
    ...sum('md5'),
    'SHA256:',
    ...sum('sha256'),
    '',
  ].join('\n');
}

/** Paragraphs of a Packages file, each as its fields (continuation lines kept in the value). */
export function parseParagraphs(text: string): Record<string, string>[] {
  return text
    .split(/\n\s*\n/)
    .filter((p) => p.trim() !== '')
    .map((p) => {
      const out: Record<string, string> = {};
      let last: string | undefined;
      for (const line of p.split('\n')) {
        if (/^\s/.test(line) && last) out[last] += `\n${line}`;
        else {
          const m = /^([^:\s]+):\s*(.*)$/.exec(line);
          if (m) {
            last = m[1]!;
            out[last] = m[2]!;
          }
        }
      }
      return out;
    });
}

export function packagesOf(packagesFile: string): RepoPackage[] {
  return parseParagraphs(packagesFile).map((p) => ({
    name: p.Package ?? '',
    version: p.Version ?? '',
    architecture: p.Architecture ?? '',
    filename: p.Filename ?? '',
    size: Number(p.Size),
    sha256: p.SHA256 ?? '',
  }));
}

/** The file name Debian gives a binary package: NAME_VERSION_ARCH.deb, the epoch left out. */
export function canonicalDebName(name: string, version: string, arch: string): string {
  return `${name}_${version.replace(/^\d+:/, '')}_${arch}.deb`;
}

async function controlOf(deb: string): Promise<{ name: string; version: string; arch: string }> {
  const r = await execa('dpkg-deb', ['--field', deb, 'Package', 'Version', 'Architecture'], { reject: false });
  if (r.exitCode !== 0) throw new AptRepoError(`debs: ${deb} is not a Debian package (${r.stderr.trim().split('\n')[0] ?? `exit ${r.exitCode}`})`);
  const f = parseParagraphs(r.stdout)[0] ?? {};
  if (!f.Package || !f.Version || !f.Architecture) throw new AptRepoError(`debs: ${deb} has no Package, Version or Architecture field`);
  return { name: f.Package, version: f.Version, arch: f.Architecture };
}

async function place(from: string, to: string): Promise<void> {
  await link(from, to).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EXDEV' && e.code !== 'EPERM') throw e;
    await copyFile(from, to);
  });
}

/** Make (or replace) a flat local apt repository at `dir` serving exactly `debs`. */
export async function makeAptRepo(o: AptRepoOptions): Promise<AptRepo> {
  if (!Number.isInteger(o.sourceDateEpoch) || o.sourceDateEpoch < 0) throw new AptRepoError(`sourceDateEpoch: ${o.sourceDateEpoch} is not a Unix time`);
  if (o.debs.length === 0) throw new AptRepoError('debs: no packages given');
  const dir = resolve(o.dir);
  const seen = new Map<string, string>();
  const entries: { from: string; name: string }[] = [];
  for (const deb of o.debs) {
    const from = isAbsolute(deb) ? deb : resolve(deb);
    if (
      !(await stat(from).then(
        (s) => s.isFile(),
        () => false,
      ))
    )
      throw new AptRepoError(`debs: ${deb} does not exist`);
    const c = await controlOf(from);
    const name = canonicalDebName(c.name, c.version, c.arch);
    const prev = seen.get(name);
    if (prev) throw new AptRepoError(`debs: ${c.name} ${c.version} (${c.arch}) is given twice: ${prev} and ${deb}`);
    seen.set(name, deb);
    entries.push({ from, name });
  }
  const fields = {
    origin: o.origin ?? 'leakless',
    label: o.label ?? 'leakless',
    suite: o.suite ?? 'local',
    codename: o.codename ?? o.suite ?? 'local',
    description: o.description ?? 'local packages (made by @leakless/apt-repo)',
  };

  await mkdir(dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  try {
    for (const e of entries) await place(e.from, join(tmp, e.name));
    // dpkg-scanpackages sorts by package name and version: the index does not
    // depend on the order of `debs` or of the directory
    const override = `${tmp}.override`;
    const lines = [...(o.overrides ?? new Map())].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([n, v]) => `${n} ${v.priority} ${v.section}\n`);
    await writeFile(override, lines.join(''));
    const scan = await execa('dpkg-scanpackages', ['--multiversion', '.', override], { cwd: tmp, reject: false, env: { LC_ALL: 'C' } }).finally(() =>
      rm(override, { force: true }),
    );
    if (scan.exitCode !== 0) throw new Error(`dpkg-scanpackages failed: ${scan.stderr.trim()}`);
    const packages = Buffer.from(scan.stdout.endsWith('\n') ? scan.stdout : `${scan.stdout}\n`);
    const indexes = [
      { name: 'Packages', content: packages },
      { name: 'Packages.gz', content: gzipSync(packages, { level: 9 }) },
    ];
    const list = packagesOf(packages.toString());
    const architectures = [...new Set(list.map((p) => p.architecture))].sort();
    const release = releaseFile({ ...fields, architectures, sourceDateEpoch: o.sourceDateEpoch }, indexes);
    for (const i of indexes) await writeFile(join(tmp, i.name), i.content);
    await writeFile(join(tmp, 'Release'), release);
    // every mtime pinned: a tarball or image of the repository is reproducible too
    for (const f of [...entries.map((e) => e.name), ...INDEX_FILES, 'Release']) await utimes(join(tmp, f), o.sourceDateEpoch, o.sourceDateEpoch);
    await utimes(tmp, o.sourceDateEpoch, o.sourceDateEpoch);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    return { dir, packages: list, sourcesLine: sourcesLine(dir), sources: sourcesStanza(dir) };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Digests of a repository's Release and index files (for manifests). */
export async function repoDigest(dir: string): Promise<string> {
  const h = createHash('sha256');
  for (const f of ['Release', ...INDEX_FILES]) h.update(`${f}\n`).update(await readFile(join(dir, f)));
  return h.digest('hex');
}

// The build cache: one store, one entry format, for everything `leakless iso`
// builds once and reuses (the base layer, the Debian kernel of the accelerator
// probe). An entry is a directory `<kind>-<key16>/` holding its content files
// and `entry.json`:
//
//   { format, kind, key, inputs, content: { sha256, bytes, files[] }, created, lastUsed }
//
// `inputs` records what made the entry (so another machine can tell what it
// is getting), `content` the sha256 of every file (an entry whose bytes do not
// match is removed and rebuilt, never used: a truncated squashfs from a full
// disk, or a tampered one from a shared cache, must not become an image), and
// `lastUsed` orders pruning. Entries are built under `.tmp-*` and renamed into
// place, so a reader sees a complete entry or none.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { safeRemove } from './iso-mounts.js';

export const CACHE_FORMAT = 1;
export const ENTRY_FILE = 'entry.json';
export const TMP_PREFIX = '.tmp-';
/** A `.tmp-` directory this old is a leftover of a killed build, not a build still running. */
export const STALE_TMP_MS = 6 * 3600_000;

export interface FileDigest {
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
}

export interface CacheEntry {
  readonly format: typeof CACHE_FORMAT;
  readonly kind: string;
  readonly key: string;
  readonly inputs: Readonly<Record<string, unknown>>;
  readonly content: { readonly sha256: string; readonly bytes: number; readonly files: readonly FileDigest[] };
  readonly created: string;
  readonly lastUsed: string;
}

export interface CacheHit {
  readonly dir: string;
  readonly entry: CacheEntry;
}

const KIND = /^[a-z][a-z0-9-]*$/;
const KEY = /^[0-9a-f]{16,64}$/;

export function entryDirName(kind: string, key: string): string {
  if (!KIND.test(kind)) throw new Error(`cache: bad entry kind ${JSON.stringify(kind)}`);
  if (!KEY.test(key)) throw new Error(`cache: bad entry key ${JSON.stringify(key)}`);
  return `${kind}-${key.slice(0, 16)}`;
}

/** The digest of an entry's whole content: the sorted list of its files' digests. */
export function contentDigest(files: readonly FileDigest[]): { sha256: string; bytes: number } {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const text = sorted.map((f) => `${f.sha256}  ${f.bytes}  ${f.path}\n`).join('');
  return { sha256: createHash('sha256').update(text).digest('hex'), bytes: sorted.reduce((n, f) => n + f.bytes, 0) };
}

/** sha256 and size of a file, streamed (squashfs layers and ISOs are hundreds of MB). */
export async function digestFile(path: string, shownAs: string): Promise<FileDigest> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { path: shownAs, bytes, sha256: h.digest('hex') };
}

/** Every regular file below dir except entry.json, relative paths, sorted. */
export async function digestContent(dir: string): Promise<FileDigest[]> {
  const out: FileDigest[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(dir, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const d of names) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      if (d.isDirectory()) await walk(r);
      else if (d.isFile() && r !== ENTRY_FILE) out.push(await digestFile(join(dir, r), r));
      else if (!d.isFile()) throw new Error(`cache: ${join(dir, r)} is neither a file nor a directory`);
    }
  };
  await walk('');
  return out;
}

/** Parse entry.json; undefined when it is missing or not an entry of this format and kind. */
export function parseEntry(text: string, kind?: string): CacheEntry | undefined {
  let e: Partial<CacheEntry>;
  try {
    e = JSON.parse(text) as Partial<CacheEntry>;
  } catch {
    return undefined;
  }
  const ok =
    e.format === CACHE_FORMAT &&
    typeof e.kind === 'string' &&
    (kind === undefined || e.kind === kind) &&
    typeof e.key === 'string' &&
    KEY.test(e.key) &&
    typeof e.inputs === 'object' &&
    e.inputs !== null &&
    typeof e.content?.sha256 === 'string' &&
    Array.isArray(e.content.files) &&
    typeof e.lastUsed === 'string' &&
    !Number.isNaN(Date.parse(e.lastUsed)) &&
    typeof e.created === 'string';
  return ok ? (e as CacheEntry) : undefined;
}

async function readEntry(dir: string, kind?: string): Promise<CacheEntry | undefined> {
  const text = await readFile(join(dir, ENTRY_FILE), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseEntry(text, kind);
}

async function writeEntry(dir: string, e: CacheEntry): Promise<void> {
  const tmp = join(dir, `${TMP_PREFIX}${ENTRY_FILE}-${process.pid}-${randomBytes(3).toString('hex')}`);
  await writeFile(tmp, JSON.stringify(e, null, 2) + '\n');
  await rename(tmp, join(dir, ENTRY_FILE));
}

/** Does the content on disk match the entry's digests? The reason when not. */
export async function checkContent(dir: string, e: CacheEntry): Promise<string | undefined> {
  const files = await digestContent(dir);
  const want = new Map(e.content.files.map((f) => [f.path, f]));
  for (const f of files) {
    const w = want.get(f.path);
    if (!w) return `${f.path}: not part of the entry`;
    if (w.sha256 !== f.sha256 || w.bytes !== f.bytes)
      return `${f.path}: sha256 ${f.sha256.slice(0, 16)}… (${f.bytes} bytes), entry says ${w.sha256.slice(0, 16)}… (${w.bytes} bytes)`;
    want.delete(f.path);
  }
  if (want.size) return `${[...want.keys()][0]}: missing`;
  if (contentDigest(files).sha256 !== e.content.sha256) return 'content digest differs from the entry';
  return undefined;
}

export interface LookupOptions {
  readonly note?: (s: string) => void;
  readonly now?: () => Date;
}

/**
 * The entry for (kind, key) if it is complete and its content matches its
 * digest; its lastUsed is renewed. A damaged entry is removed (the caller
 * rebuilds it).
 */
export async function lookupEntry(cacheDir: string, kind: string, key: string, o: LookupOptions = {}): Promise<CacheHit | undefined> {
  const dir = join(cacheDir, entryDirName(kind, key));
  const e = await readEntry(dir, kind);
  if (!e || e.key !== key) {
    if (await stat(dir).catch(() => undefined)) {
      o.note?.(`cache: ${dir} is not a complete ${kind} entry; removing it`);
      await safeRemove(dir);
    }
    return undefined;
  }
  return verifiedHit(dir, e, o);
}

/** The most recently used valid entry of a kind, whatever its key (e.g. any probe kernel will do). */
export async function lookupLatest(cacheDir: string, kind: string, o: LookupOptions = {}): Promise<CacheHit | undefined> {
  for (const { dir, entry } of await listEntries(cacheDir, kind)) {
    const hit = await verifiedHit(dir, entry, o);
    if (hit) return hit;
  }
  return undefined;
}

async function verifiedHit(dir: string, e: CacheEntry, o: LookupOptions): Promise<CacheHit | undefined> {
  const bad = await checkContent(dir, e);
  if (bad) {
    o.note?.(`cache: ${dir} does not match its digest (${bad}); removing it, it will be rebuilt`);
    await safeRemove(dir);
    return undefined;
  }
  const used: CacheEntry = { ...e, lastUsed: (o.now?.() ?? new Date()).toISOString() };
  await writeEntry(dir, used);
  return { dir, entry: used };
}

/** Valid entries of a kind, most recently used first. */
export async function listEntries(cacheDir: string, kind: string): Promise<CacheHit[]> {
  const names = await readdir(cacheDir).catch(() => [] as string[]);
  const out: CacheHit[] = [];
  for (const n of names) {
    if (!n.startsWith(`${kind}-`)) continue;
    const dir = join(cacheDir, n);
    const entry = await readEntry(dir, kind);
    if (entry) out.push({ dir, entry });
  }
  return out.sort((a, b) => Date.parse(b.entry.lastUsed) - Date.parse(a.entry.lastUsed) || (a.dir < b.dir ? -1 : 1));
}

/** A fresh scratch directory in the cache (same filesystem: the commit is a rename). */
export async function newEntryDir(cacheDir: string, kind: string): Promise<string> {
  await mkdir(cacheDir, { recursive: true });
  const dir = join(cacheDir, `${TMP_PREFIX}${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(dir);
  return dir;
}

/** Digest what was built in `tmpDir`, write its entry.json and move it into place. */
export async function commitEntry(
  cacheDir: string,
  tmpDir: string,
  kind: string,
  key: string,
  inputs: Readonly<Record<string, unknown>>,
  now: () => Date = () => new Date(),
): Promise<CacheHit> {
  const files = await digestContent(tmpDir);
  const t = now().toISOString();
  const entry: CacheEntry = { format: CACHE_FORMAT, kind, key, inputs, content: { ...contentDigest(files), files }, created: t, lastUsed: t };
  await writeEntry(tmpDir, entry);
  const dir = join(cacheDir, entryDirName(kind, key));
  const old = `${join(cacheDir, TMP_PREFIX)}old-${entryDirName(kind, key)}-${process.pid}-${randomBytes(3).toString('hex')}`;
  if (await stat(dir).catch(() => undefined)) await rename(dir, old);
  await rename(tmpDir, dir);
  await safeRemove(old);
  return { dir, entry };
}

export interface PruneOptions {
  /** How many entries of each kind to keep (most recently used first). */
  readonly keep: Readonly<Record<string, number>>;
  readonly note?: (s: string) => void;
  readonly now?: () => number;
}

/**
 * Keep the most recently used entries of each kind; remove the rest, every
 * directory of a known kind without a valid entry.json (an older cache
 * format, or damage), and `.tmp-` leftovers old enough not to belong to a
 * build still running.
 */
export async function pruneCache(cacheDir: string, o: PruneOptions): Promise<string[]> {
  const now = o.now ?? Date.now;
  const removed: string[] = [];
  const remove = async (dir: string, why: string) => {
    o.note?.(`cache: removing ${dir} (${why})`);
    await safeRemove(dir);
    removed.push(dir);
  };
  const names = await readdir(cacheDir).catch(() => [] as string[]);
  for (const n of names.filter((x) => x.startsWith(TMP_PREFIX)).sort()) {
    const dir = join(cacheDir, n);
    const st = await stat(dir).catch(() => undefined);
    if (st && now() - st.mtimeMs > STALE_TMP_MS) await remove(dir, 'leftover of an interrupted build');
  }
  for (const [kind, keep] of Object.entries(o.keep)) {
    const valid = await listEntries(cacheDir, kind);
    const validDirs = new Set(valid.map((v) => v.dir));
    for (const n of names.filter((x) => x.startsWith(`${kind}-`)).sort()) {
      const dir = join(cacheDir, n);
      if (!validDirs.has(dir)) await remove(dir, `no valid ${ENTRY_FILE}`);
    }
    for (const v of valid.slice(keep)) await remove(v.dir, `not among the ${keep} most recently used ${kind} entries`);
  }
  return removed;
}

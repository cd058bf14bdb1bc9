// The base cache shared between build machines through turbo's remote-cache
// protocol (`PUT`/`GET /v8/artifacts/<hash>?teamId=…`, bearer token), so a
// release team runs an existing server (turborepo-remote-cache) instead of
// a home-made one. An artifact is the cache entry directory as a tar.
//
// A cache server is a place where an attacker, or a full disk, can change
// bytes. Every artifact therefore travels with turbo's own artifact tag
// (x-artifact-tag: base64 HMAC-SHA256 over the artifact and the team, keyed
// with a secret the builders share and the server never sees), kept by the
// server beside the artifact, not in it: an entry whose bytes do not match
// its tag is refused and the base is rebuilt. After unpacking, the entry's
// own per-file digests (cache.ts) are checked too, as for a local entry.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { checkContent, entryDirName, newEntryDir, parseEntry, ENTRY_FILE, type CacheHit } from './cache.js';
import { safeRemove } from './iso-mounts.js';

export interface RemoteCache {
  /** The server, e.g. http://127.0.0.1:3000 (the /v8 API lives below it). */
  readonly url: string;
  readonly token: string;
  readonly team: string;
  /** The builders' shared secret for the artifact tags. */
  readonly signatureKey: string;
  /** Reach the server from inside this network namespace (a cache server that listens on a namespace's loopback only). */
  readonly netns?: string;
}

export class RemoteCacheError extends Error {
  override readonly name = 'RemoteCacheError';
}

/** turbo's artifact tag: base64 HMAC-SHA256(key, artifact bytes ‖ team). */
export async function artifactTag(file: string, team: string, key: string): Promise<string> {
  const h = createHmac('sha256', key);
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  h.update(team);
  return h.digest('base64');
}

function curlArgv(rc: RemoteCache, args: readonly string[]): [string, string[]] {
  const curl = ['curl', '--silent', '--show-error', '--max-time', '600', '-H', `Authorization: Bearer ${rc.token}`, ...args];
  return rc.netns ? ['ip', ['netns', 'exec', rc.netns, ...curl]] : [curl[0]!, curl.slice(1)];
}

const artifactUrl = (rc: RemoteCache, key: string) => `${rc.url.replace(/\/$/, '')}/v8/artifacts/${key}?teamId=${encodeURIComponent(rc.team)}`;

export type RemoteFetch =
  | { readonly kind: 'hit'; readonly hit: CacheHit; readonly bytes: number }
  | { readonly kind: 'miss' }
  | { readonly kind: 'rejected'; readonly reason: string };

/**
 * Fetch the entry (kind, key) from the server into the local cache. A miss
 * when the server has none; rejected (nothing written) when its tag is
 * missing or wrong, or its content does not match its digests.
 */
export async function remoteFetch(rc: RemoteCache, cacheDir: string, kind: string, key: string): Promise<RemoteFetch> {
  await mkdir(cacheDir, { recursive: true });
  const tmp = await newEntryDir(cacheDir, kind);
  const tar = `${tmp}.tar`;
  const headers = `${tmp}.headers`;
  try {
    const [cmd, args] = curlArgv(rc, ['-o', tar, '-D', headers, '-w', '%{http_code}', artifactUrl(rc, key)]);
    const r = await execa(cmd, args, { reject: false });
    const status = r.stdout.trim();
    if (status === '404') return { kind: 'miss' };
    if (r.exitCode !== 0 || status !== '200') throw new RemoteCacheError(`GET ${artifactUrl(rc, key)}: ${r.stderr.trim() || `HTTP ${status}`}`);
    const tagLine = (await readFile(headers, 'utf8')).split(/\r?\n/).find((l) => /^x-artifact-tag:/i.test(l));
    const tag = tagLine?.replace(/^x-artifact-tag:\s*/i, '').trim();
    if (!tag) return { kind: 'rejected', reason: 'the server keeps no artifact tag for it' };
    const want = Buffer.from(await artifactTag(tar, rc.team, rc.signatureKey));
    const got = Buffer.from(tag);
    if (want.length !== got.length || !timingSafeEqual(want, got))
      return { kind: 'rejected', reason: 'its bytes do not match the artifact tag kept beside it (tampered or damaged)' };
    const x = await execa('tar', ['-x', '-f', tar, '-C', tmp, '--no-same-owner'], { reject: false, all: true });
    if (x.exitCode !== 0) return { kind: 'rejected', reason: `not a tar: ${x.all}` };
    const entry = parseEntry(await readFile(join(tmp, ENTRY_FILE), 'utf8').catch(() => ''), kind);
    if (!entry || entry.key !== key) return { kind: 'rejected', reason: `no ${kind} entry for this key inside` };
    const bad = await checkContent(tmp, entry);
    if (bad) return { kind: 'rejected', reason: `content does not match its digests: ${bad}` };
    const dir = join(cacheDir, entryDirName(kind, key));
    await safeRemove(dir);
    await rename(tmp, dir);
    return { kind: 'hit', hit: { dir, entry }, bytes: (await stat(tar)).size };
  } finally {
    await safeRemove(tmp).catch(() => undefined);
    await rm(tar, { force: true });
    await rm(headers, { force: true });
  }
}

/** Whether the server has an artifact for key (HEAD); undefined when it cannot tell. */
export async function remoteFetchable(rc: RemoteCache, key: string): Promise<boolean | undefined> {
  const [cmd, args] = curlArgv(rc, ['-I', '-o', '/dev/null', '-w', '%{http_code}', artifactUrl(rc, key)]);
  const r = await execa(cmd, args, { reject: false });
  const status = r.stdout.trim();
  return status === '200' ? true : status === '404' ? false : undefined;
}

/** Upload a local entry (its directory as a tar, with its tag). */
export async function remotePush(rc: RemoteCache, hit: CacheHit): Promise<{ bytes: number; sha256: string }> {
  const tar = `${hit.dir}.push-${process.pid}.tar`;
  try {
    // same entry, same bytes: sorted, numeric owners, mtimes as they are
    const t = await execa('tar', ['-c', '-f', tar, '-C', hit.dir, '--sort=name', '--numeric-owner', '--owner=0', '--group=0', '.'], {
      reject: false,
      all: true,
    });
    if (t.exitCode !== 0) throw new RemoteCacheError(`tar of ${hit.dir} failed: ${t.all}`);
    const tag = await artifactTag(tar, rc.team, rc.signatureKey);
    const [cmd, args] = curlArgv(rc, [
      '-X',
      'PUT',
      '-H',
      'Content-Type: application/octet-stream',
      '-H',
      `x-artifact-tag: ${tag}`,
      '--data-binary',
      `@${tar}`,
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      artifactUrl(rc, hit.entry.key),
    ]);
    const r = await execa(cmd, args, { reject: false });
    if (r.exitCode !== 0 || !/^20\d$/.test(r.stdout.trim()))
      throw new RemoteCacheError(`PUT ${artifactUrl(rc, hit.entry.key)}: ${r.stderr.trim() || `HTTP ${r.stdout.trim()}`}`);
    const h = createHash('sha256');
    for await (const chunk of createReadStream(tar)) h.update(chunk as Buffer);
    return { bytes: (await stat(tar)).size, sha256: h.digest('hex') };
  } finally {
    await rm(tar, { force: true });
  }
}

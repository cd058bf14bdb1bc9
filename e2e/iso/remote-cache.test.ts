// The remote-cache protocol end to end against a real turborepo-remote-cache
// in a loopback-only namespace, with a small synthetic cache entry (seconds,
// no image build): push, fetch into an empty cache, and the anti-tests — a
// byte changed in the stored artifact, an artifact without its tag, a
// builder with another signing secret — each refused, nothing written.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commitEntry, lookupEntry, newEntryDir, remoteFetch, remoteFetchable, remotePush, type RemoteCache } from '@leakless/image';
import { needRoot, needTool, skipUnless } from '@leakless/testing';
import { startCacheServer, type CacheServer } from './cache-server.js';
import { work } from './shared.js';

const skip = skipUnless(
  'the remote-cache protocol test',
  needRoot('it makes a network namespace for the cache server'),
  needTool('curl', ['--version'], 'apt-get install --no-install-recommends curl'),
  needTool('ip', ['-V'], 'apt-get install --no-install-recommends iproute2'),
);

describe.skipIf(skip).sequential('the base cache shared through a turbo remote-cache server', () => {
  mkdirSync(work, { recursive: true });
  const dir = mkdtempSync(join(work, 'remote-cache-'));
  let server: CacheServer;
  let rc: RemoteCache;
  const key = 'ab'.repeat(32);

  beforeAll(async () => {
    server = await startCacheServer(join(dir, 'server'));
    rc = {
      url: server.url,
      netns: server.netns,
      token: server.env.LEAKLESS_REMOTE_CACHE_TOKEN!,
      signatureKey: server.env.LEAKLESS_REMOTE_CACHE_KEY!,
      team: server.env.LEAKLESS_REMOTE_CACHE_TEAM!,
    };
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pushes an entry and a builder with an empty cache gets it back, digests verified', async () => {
    const a = join(dir, 'a');
    const tmp = await newEntryDir(a, 'base');
    mkdirSync(join(tmp, 'debs'));
    writeFileSync(join(tmp, 'filesystem.squashfs'), Buffer.alloc(1 << 20, 3));
    writeFileSync(join(tmp, 'debs', 'x_1_all.deb'), 'deb');
    const hit = await commitEntry(a, tmp, 'base', key, { what: 'test' });
    expect(await remoteFetchable(rc, key)).toBe(false);
    await remotePush(rc, hit);
    expect(await remoteFetchable(rc, key)).toBe(true);
    // the server listens on its namespace's loopback only
    expect(existsSync(server.artifactPath(key))).toBe(true);

    const b = join(dir, 'b');
    const got = await remoteFetch(rc, b, 'base', key);
    expect(got.kind).toBe('hit');
    expect((await lookupEntry(b, 'base', key))?.entry.content.sha256).toBe(hit.entry.content.sha256);
    expect(readFileSync(join(b, 'base-abababababababab', 'debs', 'x_1_all.deb'), 'utf8')).toBe('deb');
    expect((await remoteFetch(rc, b, 'base', 'cd'.repeat(32))).kind).toBe('miss');
  });

  it('anti-test: a builder with another signing secret refuses the entry', async () => {
    const got = await remoteFetch({ ...rc, signatureKey: 'not-the-team-secret' }, join(dir, 'c'), 'base', key);
    expect(got).toMatchObject({ kind: 'rejected', reason: expect.stringMatching(/artifact tag/) });
    expect(await lookupEntry(join(dir, 'c'), 'base', key)).toBeUndefined();
  });

  it('anti-test: one byte changed in the stored artifact is detected, nothing is written', async () => {
    const p = server.artifactPath(key);
    const bytes = readFileSync(p);
    bytes[bytes.length >> 1]! ^= 0xff;
    writeFileSync(p, bytes);
    const d = join(dir, 'd');
    const got = await remoteFetch(rc, d, 'base', key);
    expect(got).toMatchObject({ kind: 'rejected', reason: expect.stringMatching(/do not match the artifact tag/) });
    expect(await lookupEntry(d, 'base', key)).toBeUndefined();
  });
});

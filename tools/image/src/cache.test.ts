import { afterAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  commitEntry,
  contentDigest,
  ENTRY_FILE,
  listEntries,
  lookupEntry,
  lookupLatest,
  newEntryDir,
  parseEntry,
  pruneCache,
  type CacheEntry,
} from './cache.js';

const root = mkdtempSync(join(tmpdir(), 'lk-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshCache = () => join(root, `c${n++}`);
const key = (c: string) => c.repeat(64);
const at = (iso: string) => () => new Date(iso);

async function build(cache: string, kind: string, k: string, files: Record<string, string>, when = '2026-01-01T00:00:00.000Z') {
  const tmp = await newEntryDir(cache, kind);
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(tmp, p, '..'), { recursive: true });
    writeFileSync(join(tmp, p), c);
  }
  return commitEntry(cache, tmp, kind, k, { recipe: `recipe of ${k.slice(0, 4)}` }, at(when));
}

describe('one entry format', () => {
  it('entry.json records the key, the inputs, the sha256 of every file and of the whole content, and the last use', async () => {
    const cache = freshCache();
    const hit = await build(cache, 'base', key('a'), { 'filesystem.squashfs': 'squash', vmlinuz: 'k', 'sub/x': 'y' });
    expect(hit.dir).toBe(join(cache, 'base-aaaaaaaaaaaaaaaa'));
    const e = JSON.parse(readFileSync(join(hit.dir, ENTRY_FILE), 'utf8')) as CacheEntry;
    expect(parseEntry(JSON.stringify(e), 'base')).toEqual(e);
    expect(e).toMatchObject({
      format: 1,
      kind: 'base',
      key: key('a'),
      inputs: { recipe: 'recipe of aaaa' },
      created: '2026-01-01T00:00:00.000Z',
      lastUsed: '2026-01-01T00:00:00.000Z',
    });
    expect(e.content.files.map((f) => f.path)).toEqual(['filesystem.squashfs', 'sub/x', 'vmlinuz']);
    expect(e.content.files[0]).toEqual({ path: 'filesystem.squashfs', bytes: 6, sha256: createHash('sha256').update('squash').digest('hex') });
    expect(e.content).toMatchObject(contentDigest(e.content.files));
    expect(e.content.bytes).toBe('squash'.length + 1 + 1);
    expect(readdirSync(cache)).toEqual(['base-aaaaaaaaaaaaaaaa']);
  });

  it('a lookup verifies the content and renews lastUsed', async () => {
    const cache = freshCache();
    await build(cache, 'base', key('b'), { f: '1' });
    const hit = await lookupEntry(cache, 'base', key('b'), { now: at('2026-02-02T00:00:00.000Z') });
    expect(hit?.entry.lastUsed).toBe('2026-02-02T00:00:00.000Z');
    expect(parseEntry(readFileSync(join(hit!.dir, ENTRY_FILE), 'utf8'))?.lastUsed).toBe('2026-02-02T00:00:00.000Z');
    expect(await lookupEntry(cache, 'base', key('c'))).toBeUndefined();
  });

  it('an entry whose content does not match its digest is removed (to be rebuilt), never used', async () => {
    const cache = freshCache();
    const { dir } = await build(cache, 'base', key('d'), { 'filesystem.squashfs': 'the real squashfs', vmlinuz: 'k' });
    writeFileSync(join(dir, 'filesystem.squashfs'), 'the real squashfX'); // same size, other bytes
    const notes: string[] = [];
    expect(await lookupEntry(cache, 'base', key('d'), { note: (s) => notes.push(s) })).toBeUndefined();
    expect(existsSync(dir)).toBe(false);
    expect(notes.join('\n')).toMatch(/does not match its digest \(filesystem\.squashfs: sha256 .* entry says .*\); removing it, it will be rebuilt/);

    const t = await build(cache, 'base', key('e'), { 'filesystem.squashfs': 'abcdef' });
    truncateSync(join(t.dir, 'filesystem.squashfs'), 3); // a full disk
    expect(await lookupEntry(cache, 'base', key('e'))).toBeUndefined();
    const m = await build(cache, 'base', key('f'), { a: '1', b: '2' });
    rmSync(join(m.dir, 'b'));
    expect(await lookupEntry(cache, 'base', key('f'))).toBeUndefined();
    const x = await build(cache, 'base', key('1'), { a: '1' });
    writeFileSync(join(x.dir, 'planted'), 'extra');
    expect(await lookupEntry(cache, 'base', key('1'))).toBeUndefined();
    expect(readdirSync(cache)).toEqual([]);
  });

  it('a directory without a valid entry.json (older format, interrupted commit) is not an entry', async () => {
    const cache = freshCache();
    mkdirSync(join(cache, 'base-2222222222222222'), { recursive: true });
    writeFileSync(join(cache, 'base-2222222222222222', 'base.json'), '{}');
    expect(await lookupEntry(cache, 'base', key('2'))).toBeUndefined();
    expect(existsSync(join(cache, 'base-2222222222222222'))).toBe(false);
  });

  it('lookupLatest: the most recently used intact entry of a kind, whatever its key', async () => {
    const cache = freshCache();
    await build(cache, 'probe-kernel', key('3'), { vmlinuz: 'old' }, '2026-01-01T00:00:00.000Z');
    const newer = await build(cache, 'probe-kernel', key('4'), { vmlinuz: 'new' }, '2026-01-02T00:00:00.000Z');
    await build(cache, 'base', key('5'), { x: 'base' }, '2026-01-03T00:00:00.000Z');
    expect((await lookupLatest(cache, 'probe-kernel'))?.dir).toBe(newer.dir);
    writeFileSync(join(newer.dir, 'vmlinuz'), 'bad');
    expect((await lookupLatest(cache, 'probe-kernel'))?.entry.key).toBe(key('3'));
  });
});

describe('pruning', () => {
  it('keeps the most recently used entries by entry.json lastUsed (not file times), per kind', async () => {
    const cache = freshCache();
    const used = ['2026-03-01', '2026-01-01', '2026-04-01', '2026-02-01'];
    for (const [i, c] of ['a', 'b', 'c', 'd'].entries()) {
      const { dir } = await build(cache, 'base', key(c), { f: c }, `${used[i]}T00:00:00.000Z`);
      // file times say the opposite of lastUsed: a copy from another machine, or a restore, sets them anew
      const t = Date.now() / 1000 - 1000 + (3 - i) * 100;
      utimesSync(join(dir, ENTRY_FILE), t, t);
      utimesSync(dir, t, t);
    }
    await build(cache, 'probe-kernel', key('e'), { vmlinuz: 'k' }, '2025-01-01T00:00:00.000Z');
    const removed = await pruneCache(cache, { keep: { base: 2, 'probe-kernel': 1 } });
    expect(removed.map((d) => d.slice(cache.length + 1)).sort()).toEqual(['base-bbbbbbbbbbbbbbbb', 'base-dddddddddddddddd']);
    expect((await listEntries(cache, 'base')).map((e) => e.entry.key)).toEqual([key('c'), key('a')]);
    expect(readdirSync(cache).sort()).toEqual(['base-aaaaaaaaaaaaaaaa', 'base-cccccccccccccccc', 'probe-kernel-eeeeeeeeeeeeeeee']);
  });

  it('removes stale .tmp- leftovers and invalid entries, keeps a .tmp- build still running', async () => {
    const cache = freshCache();
    await build(cache, 'base', key('a'), { f: 'a' });
    const old = join(cache, '.tmp-base-1-dead');
    mkdirSync(old);
    const t = Date.now() / 1000 - 7 * 3600;
    utimesSync(old, t, t);
    mkdirSync(join(cache, '.tmp-base-2-running'));
    mkdirSync(join(cache, 'base-0000000000000000'));
    writeFileSync(join(cache, 'base-0000000000000000', 'base.json'), '{"key":"0"}');
    mkdirSync(join(cache, 'unrelated'));
    await pruneCache(cache, { keep: { base: 3 } });
    expect(readdirSync(cache).sort()).toEqual(['.tmp-base-2-running', 'base-aaaaaaaaaaaaaaaa', 'unrelated']);
  });
});

import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { digestFile, IsoBuildError, pruneCache, resolveSources } from './iso-build.js';
import { mountsUnder, safeRemove } from './iso-mounts.js';

const dir = mkdtempSync(join(tmpdir(), 'lk-isobuild-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('resolveSources', () => {
  it('a mirror URL becomes a one-line source for the suite', async () => {
    expect(await resolveSources('http://mirror.example/debian', 'bookworm')).toEqual({ name: 'mirror.list', content: 'deb http://mirror.example/debian bookworm main\n' });
    await expect(resolveSources('http://a b', 'bookworm')).rejects.toThrow(IsoBuildError);
  });
  it('a sources file is pasted as it is (deb822 or one-line)', async () => {
    const f = join(dir, 'x.sources');
    writeFileSync(f, 'Types: deb\n');
    expect(await resolveSources(f, 'bookworm')).toEqual({ name: 'debian.sources', content: 'Types: deb\n' });
    await expect(resolveSources(join(dir, 'missing'), 'bookworm')).rejects.toThrow(/neither an http/);
  });
  it('by default: the host’s Debian sources', async () => {
    const r = await resolveSources(undefined, 'bookworm');
    expect(r.content).toMatch(/deb/);
  });
});

describe('the base cache', () => {
  it('keeps the most recently used bases, drops the rest and stale leftovers', async () => {
    const cache = join(dir, 'cache');
    const t0 = Date.now() / 1000;
    for (const [i, name] of ['base-a', 'base-b', 'base-c', 'base-d'].entries()) {
      mkdirSync(join(cache, name), { recursive: true });
      writeFileSync(join(cache, name, 'base.json'), '{}');
      utimesSync(join(cache, name, 'base.json'), t0 - 1000 + i, t0 - 1000 + i);
    }
    mkdirSync(join(cache, '.tmp-base-old'));
    utimesSync(join(cache, '.tmp-base-old'), t0 - 7 * 3600, t0 - 7 * 3600);
    mkdirSync(join(cache, '.tmp-base-running'));
    await pruneCache(cache, 2);
    expect(readdirSync(cache).sort()).toEqual(['.tmp-base-running', 'base-c', 'base-d']);
  });
});

describe('safeRemove and digests', () => {
  it('removes a tree with nothing mounted below it', async () => {
    mkdirSync(join(dir, 'rm/a/b'), { recursive: true });
    expect(await mountsUnder(join(dir, 'rm'))).toEqual([]);
    await safeRemove(join(dir, 'rm'));
    expect(existsSync(join(dir, 'rm'))).toBe(false);
  });
  it.skipIf(process.getuid?.() !== 0)('never deletes through a bind mount left below it (a killed mmdebstrap leaves /dev, /proc binds)', async () => {
    mkdirSync(join(dir, 'host-dir'), { recursive: true });
    writeFileSync(join(dir, 'host-dir', 'precious'), 'x');
    mkdirSync(join(dir, 'victim/root/dev'), { recursive: true });
    await execa('mount', ['--bind', join(dir, 'host-dir'), join(dir, 'victim/root/dev')]);
    expect(await mountsUnder(join(dir, 'victim'))).toEqual([join(dir, 'victim/root/dev')]);
    await safeRemove(join(dir, 'victim'));
    expect(existsSync(join(dir, 'victim'))).toBe(false);
    expect(existsSync(join(dir, 'host-dir', 'precious'))).toBe(true);
  });
  it('sha256 of a file, streamed', async () => {
    writeFileSync(join(dir, 'f'), 'abc');
    expect(await digestFile(join(dir, 'f'), 'f')).toEqual({ path: 'f', bytes: 3, sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' });
  });
});

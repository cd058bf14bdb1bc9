import { describe, expect, it } from 'vitest';
import tar from 'tar-stream';
import { Readable } from 'node:stream';
import { buildTree } from './tree.js';
import { tarballOf } from './tar.js';
import { emission } from './contract.js';

async function entries(buf: Buffer) {
  const out: { name: string; mode: number; uid: number; gid: number; mtime: number; type: string }[] = [];
  const ex = tar.extract();
  ex.on('entry', (h, stream, next) => {
    out.push({ name: h.name, mode: h.mode ?? 0, uid: h.uid ?? -1, gid: h.gid ?? -1, mtime: h.mtime!.getTime() / 1000, type: h.type ?? '' });
    stream.on('end', next);
    stream.resume();
  });
  await new Promise((res, rej) => {
    ex.on('finish', () => res(undefined));
    ex.on('error', rej);
    Readable.from(buf).pipe(ex);
  });
  return out;
}

describe('deterministic tarball', () => {
  const e1 = emission('a', {
    files: [
      { path: '/etc/z.conf', content: 'z\n', mode: 0o600, clause: 'x' },
      { path: '/usr/lib/leakless/t', content: '#!/bin/sh\n', mode: 0o755, clause: 'x' },
    ],
  });
  const e2 = emission('b', { files: [{ path: '/etc/a/b.conf', content: 'b\n', mode: 0o644, uid: 106, gid: 112, clause: 'y' }] });

  it('is byte-identical whatever the module order', async () => {
    const a = await tarballOf(buildTree([e1, e2]), 1700000000);
    const b = await tarballOf(buildTree([e2, e1]), 1700000000);
    expect(a.equals(b)).toBe(true);
  });

  it('has sorted entries, parents first, fixed mtime, explicit modes and owners', async () => {
    const list = await entries(await tarballOf(buildTree([e1, e2]), 1700000000));
    expect(list.map((e) => e.name)).toEqual([
      './etc/',
      './etc/a/',
      './etc/a/b.conf',
      './etc/z.conf',
      './usr/',
      './usr/lib/',
      './usr/lib/leakless/',
      './usr/lib/leakless/t',
    ]);
    expect(new Set(list.map((e) => e.mtime))).toEqual(new Set([1700000000]));
    const byName = Object.fromEntries(list.map((e) => [e.name, e]));
    expect(byName['./etc/z.conf']).toMatchObject({ mode: 0o600, uid: 0, gid: 0 });
    expect(byName['./etc/a/b.conf']).toMatchObject({ mode: 0o644, uid: 106, gid: 112 });
    expect(byName['./usr/lib/leakless/t']).toMatchObject({ mode: 0o755 });
    expect(byName['./etc/']).toMatchObject({ mode: 0o755, type: 'directory' });
  });

  it('changes when a mode changes (modes are part of the output)', async () => {
    const other = emission('a', {
      files: [
        { path: '/etc/z.conf', content: 'z\n', mode: 0o644, clause: 'x' },
        { path: '/usr/lib/leakless/t', content: '#!/bin/sh\n', mode: 0o755, clause: 'x' },
      ],
    });
    const a = await tarballOf(buildTree([e1]), 1700000000);
    const b = await tarballOf(buildTree([other]), 1700000000);
    expect(a.equals(b)).toBe(false);
  });
});

describe('tree', () => {
  it('refuses two modules emitting the same path', () => {
    const f = { path: '/etc/x', content: '', mode: 0o644, clause: 'c' };
    expect(() => buildTree([emission('a', { files: [f] }), emission('b', { files: [f] })])).toThrow(/emitted by both a and b/);
  });
  it('refuses unsafe paths', () => {
    for (const path of ['etc/x', '/etc/../x', '/etc/x y', '/etc//x']) {
      expect(() => buildTree([emission('a', { files: [{ path, content: '', mode: 0o644, clause: 'c' }] })])).toThrow(/unsafe file path/);
    }
  });
});

import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { needRoot, skipUnless } from '@leakless/testing';
import { digestFile } from './cache.js';
import { mountsUnder, safeRemove } from './iso-mounts.js';

const dir = mkdtempSync(join(tmpdir(), 'lk-isobuild-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('safeRemove and digests', () => {
  it('removes a tree with nothing mounted below it', async () => {
    mkdirSync(join(dir, 'rm/a/b'), { recursive: true });
    expect(await mountsUnder(join(dir, 'rm'))).toEqual([]);
    await safeRemove(join(dir, 'rm'));
    expect(existsSync(join(dir, 'rm'))).toBe(false);
  });
  it.skipIf(skipUnless('the bind-mount removal test', needRoot('bind mounts need root')))(
    'never deletes through a bind mount left below it (a killed mmdebstrap leaves /dev, /proc binds)',
    async () => {
      mkdirSync(join(dir, 'host-dir'), { recursive: true });
      writeFileSync(join(dir, 'host-dir', 'precious'), 'x');
      mkdirSync(join(dir, 'victim/root/dev'), { recursive: true });
      await execa('mount', ['--bind', join(dir, 'host-dir'), join(dir, 'victim/root/dev')]);
      expect(await mountsUnder(join(dir, 'victim'))).toEqual([join(dir, 'victim/root/dev')]);
      await safeRemove(join(dir, 'victim'));
      expect(existsSync(join(dir, 'victim'))).toBe(false);
      expect(existsSync(join(dir, 'host-dir', 'precious'))).toBe(true);
    },
  );
  it('sha256 of a file, streamed', async () => {
    writeFileSync(join(dir, 'f'), 'abc');
    expect(await digestFile(join(dir, 'f'), 'f')).toEqual({ path: 'f', bytes: 3, sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' });
  });
});

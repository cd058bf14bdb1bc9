// cleanup.sh's initrd checks, run on stand-in initrds: the live system's
// initrd must carry live-boot and be zstd-compressed (mkinitramfs falls back
// to gzip without a word when the zstd tool is missing).
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CLEANUP_SH } from './iso-scripts.js';

const dir = mkdtempSync(join(tmpdir(), 'lk-cleanup-initrd-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The initrd loop of cleanup.sh, pointed at a stand-in /boot, with a stand-in lsinitramfs that lists live-boot. */
function checkInitrds(boot: string): { status: number | null; stderr: string } {
  const loop = CLEANUP_SH.slice(CLEANUP_SH.indexOf('for i in /boot/initrd.img-*'), CLEANUP_SH.indexOf('\ndone\n') + '\ndone\n'.length);
  expect(loop).toContain('lsinitramfs');
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'lsinitramfs'), '#!/bin/sh\necho usr/lib/live/boot/9990-main.sh\n');
  chmodSync(join(bin, 'lsinitramfs'), 0o755);
  const script = `set -eu\n${loop.replace('for i in /boot/', `for i in ${boot}/`)}`;
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  return { status: r.status, stderr: r.stderr };
}

function bootWith(name: string, initrd: Buffer): string {
  const boot = join(dir, name);
  mkdirSync(boot, { recursive: true });
  writeFileSync(join(boot, 'initrd.img-6.1.0-test-amd64'), initrd);
  return boot;
}

// a zstd frame's magic number (RFC 8878), then a few bytes: the check reads the magic only
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

describe('cleanup.sh: the initrd', () => {
  it('accepts a zstd initrd', () => {
    const r = checkInitrds(bootWith('zstd', Buffer.concat([ZSTD_MAGIC, Buffer.alloc(64)])));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('refuses a gzip initrd (mkinitramfs without the zstd tool), naming it', () => {
    const boot = bootWith('gzip', gzipSync(Buffer.from('070701')));
    const r = checkInitrds(boot);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`leakless cleanup: ${boot}/initrd.img-6.1.0-test-amd64 is not zstd-compressed`);
  });
});

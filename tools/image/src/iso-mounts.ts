// Mounts for looking at a built image (the squashfs layers stacked the way
// live-boot stacks them) and a removal that never descends into a mount: a
// killed mmdebstrap or debos can leave /proc, /sys or /dev bind mounts inside
// a work dir, and a recursive delete through those would hit the host.
import { mkdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';

/** Decode the octal escapes /proc/self/mounts uses for spaces and the like. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export async function mountsUnder(dir: string): Promise<string[]> {
  const abs = resolve(dir);
  const text = await readFile('/proc/self/mounts', 'utf8');
  return text
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m): m is string => m !== undefined)
    .map(unescapeMount)
    .filter((m) => m === abs || m.startsWith(abs + '/'))
    .sort((a, b) => b.length - a.length);
}

/** rm -rf, after unmounting (lazily) anything mounted below; refuses if a mount stays. */
export async function safeRemove(dir: string): Promise<void> {
  for (const m of await mountsUnder(dir)) await execa('umount', ['-l', m], { reject: false });
  const left = await mountsUnder(dir);
  if (left.length) throw new Error(`not removing ${dir}: still mounted below it: ${left.join(', ')}`);
  await rm(dir, { recursive: true, force: true });
}

async function umount(path: string): Promise<void> {
  const r = await execa('umount', [path], { reject: false });
  if (r.exitCode !== 0) await execa('umount', ['-l', path], { reject: false });
}

/**
 * The image's root filesystem as the live system sees it: each squashfs
 * loop-mounted read-only, stacked with a read-only overlay (first = bottom,
 * like /live/filesystem.module). Unmounted again whatever fn does.
 */
export async function withStackedRootfs<T>(layers: readonly string[], workDir: string, fn: (root: string) => Promise<T>): Promise<T> {
  const mounted: string[] = [];
  const root = join(workDir, 'rootfs');
  try {
    const dirs: string[] = [];
    for (const [i, layer] of layers.entries()) {
      const d = join(workDir, `layer${i}`);
      await mkdir(d, { recursive: true });
      await execa('mount', ['-t', 'squashfs', '-o', 'ro,loop', layer, d]);
      mounted.push(d);
      dirs.push(d);
    }
    await mkdir(root, { recursive: true });
    // overlayfs: lowerdir lists the top layer first
    await execa('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${[...dirs].reverse().join(':')}`, root]);
    mounted.push(root);
    return await fn(root);
  } finally {
    for (const m of mounted.reverse()) await umount(m);
    for (const m of mounted) await rmdir(m).catch(() => {});
  }
}

// The rebuild's chroot runs debos, and debos runs every chroot action of host
// mode with systemd-nspawn: nspawn must work inside the chroot, in a network
// namespace, as leakless rebuild enters it. The chroot here is this host's
// /usr bound into an empty tree (no mmdebstrap needed); the container nspawn
// starts is a second such tree, run with the options debos gives it.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { needRoot, needTool, skipUnless } from '@leakless/testing';
import { prepareChroot } from './build-env.js';
import { safeRemove } from './iso-mounts.js';

const tmp = mkdtempSync('/var/tmp/lk-build-env-');
afterAll(() => safeRemove(tmp));

/** An OS tree made of links into /usr (merged /usr): what nspawn accepts as a root. */
function usrTree(dir: string): void {
  for (const d of ['usr', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp']) mkdirSync(join(dir, d), { recursive: true });
  for (const l of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${l}`, join(dir, l));
}

const skip = skipUnless('systemd-nspawn in the rebuild chroot', needRoot(), needTool('systemd-nspawn', ['--version']), needTool('ip', ['-V']));

describe.skipIf(skip)('the rebuild chroot', () => {
  it("runs systemd-nspawn as debos does: its '/' is a mount point, with /proc, /sys/fs/cgroup, /dev, /run and a machine ID", async () => {
    const root = join(tmp, 'root');
    usrTree(root);
    usrTree(join(root, 'target'));
    writeFileSync(join(root, 'etc', 'machine-id'), ''); // as mmdebstrap leaves it
    const netns = `lk-nspawn-${randomBytes(3).toString('hex')}`;
    const undo = await prepareChroot(root, ['/usr']);
    try {
      await execa('mount', ['--bind', '-o', 'ro', '/usr', join(root, 'target', 'usr')]);
      await execa('ip', ['netns', 'add', netns]);
      // debos' own options for a chroot action (debos' Command.Run, ChrootMethodNspawn)
      const r = await execa(
        'ip',
        [
          ...['netns', 'exec', netns, 'chroot', root],
          ...['systemd-nspawn', '-q', '--resolv-conf=off', '--timezone=off', '--register=no', '--machine=debos-lk', '--keep-unit', '--console=pipe'],
          ...['-D', '/target', '/bin/sh', '-c', 'echo "pid $$ in the container"; test -e /proc/self/cgroup'],
        ],
        { reject: false, all: true },
      );
      expect(r.all).toMatch(/^pid 1 in the container$/m);
      expect(r.exitCode).toBe(0);
    } finally {
      await execa('ip', ['netns', 'del', netns], { reject: false });
      await execa('umount', ['-l', join(root, 'target', 'usr')], { reject: false });
      await undo();
    }
    expect((await execa('findmnt', ['-rn', '-o', 'TARGET'])).stdout.split('\n').filter((m) => m.startsWith(tmp))).toEqual([]);
  });
});

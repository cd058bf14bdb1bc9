// The initramfs hook that keeps only what finds a live medium: run on a
// stand-in module tree, it drops network, GPU and network-storage modules and
// keeps storage controllers, USB, input and the file systems of live media.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { LIVE_MEDIA_ONLY_HOOK } from './iso-scripts.js';

describe('the live-media-only initramfs hook', () => {
  it('keeps storage, USB, input and live file systems; drops network, GPU and network storage', () => {
    const dest = mkdtempSync(join(tmpdir(), 'lk-initramfs-'));
    try {
      const k = join(dest, 'usr', 'lib', 'modules', '6.1.0-test', 'kernel');
      const keep = [
        'drivers/ata/ahci.ko',
        'drivers/usb/storage/uas.ko',
        'drivers/scsi/sr_mod.ko',
        'drivers/scsi/virtio_scsi.ko',
        'drivers/nvme/host/nvme.ko',
        'drivers/mmc/core/mmc_block.ko',
        'drivers/hid/usbhid/usbhid.ko',
        'fs/isofs/isofs.ko',
        'fs/squashfs/squashfs.ko',
        'fs/overlayfs/overlay.ko',
        'fs/ext4/ext4.ko',
        'fs/udf/udf.ko',
      ];
      const drop = [
        'drivers/net/virtio_net.ko',
        'drivers/net/ethernet/intel/e1000e/e1000e.ko',
        'drivers/gpu/drm/drm.ko',
        'drivers/infiniband/core/ib_core.ko',
        'drivers/scsi/lpfc/lpfc.ko',
        'drivers/scsi/iscsi_tcp.ko',
        'fs/nfs/nfs.ko',
        'fs/xfs/xfs.ko',
        'net/sunrpc/sunrpc.ko',
        'drivers/block/rbd.ko',
      ];
      for (const f of [...keep, ...drop]) {
        mkdirSync(dirname(join(k, f)), { recursive: true });
        writeFileSync(join(k, f), '');
      }
      // merged /usr, as mkinitramfs lays out DESTDIR
      execFileSync('ln', ['-s', 'usr/lib', join(dest, 'lib')]);
      const hook = join(dest, 'hook');
      writeFileSync(hook, LIVE_MEDIA_ONLY_HOOK, { mode: 0o755 });
      expect(execFileSync(hook, ['prereqs'], { encoding: 'utf8' }).trim()).toBe('');
      execFileSync(hook, [], { env: { ...process.env, DESTDIR: dest, version: '6.1.0-test' } });
      expect(keep.filter((f) => !existsSync(join(k, f)))).toEqual([]);
      expect(drop.filter((f) => existsSync(join(k, f)))).toEqual([]);
      // without DESTDIR it refuses instead of deleting from the build host's own tree
      expect(() => execFileSync(hook, [], { env: { PATH: process.env.PATH ?? '' }, stdio: 'pipe' })).toThrow();
    } finally {
      rmSync(dest, { recursive: true, force: true });
    }
  });
});

import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildTree, emission, hostToolRunner, memoryTree, type GeneratedFile } from '@leakless/policy';
import { defaultPolicy } from '@leakless/policy/testing';
import { effectiveDepsInRoot, emittedUnitFiles, imageAssertions, resolveInRoot } from './iso-verify.js';
import type { ImagePlan } from './iso-plan.js';
import { qemuArgs } from './boot.js';

const root = mkdtempSync(join(tmpdir(), 'lk-verify-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const put = (p: string, content: string) => {
  mkdirSync(dirname(join(root, p)), { recursive: true });
  writeFileSync(join(root, p), content);
};
describe('unit files', () => {
  it('effectiveDepsInRoot: fragment by priority, drop-ins by name, a reset in a drop-in is seen', () => {
    mkdirSync(join(root, 'usr/lib'), { recursive: true });
    symlinkSync('usr/lib', join(root, 'lib')); // merged /usr
    put('/usr/lib/systemd/system/fw.service', '[Unit]\nBefore=network-pre.target\nWants=network-pre.target\n');
    expect([...effectiveDepsInRoot(root, 'fw.service').deps.Before]).toEqual(['network-pre.target']);
    put('/lib/systemd/system/fw.service.d/10-pkg.conf', '[Unit]\nBefore=\n');
    expect([...effectiveDepsInRoot(root, 'fw.service').deps.Before]).toEqual([]);
    put('/etc/systemd/system/fw.service.d/10-pkg.conf', '[Unit]\nAfter=y\n'); // same name in /etc masks the /usr one
    const r = effectiveDepsInRoot(root, 'fw.service');
    expect([...r.deps.Before]).toEqual(['network-pre.target']);
    expect(r.dropins).toEqual(['/etc/systemd/system/fw.service.d/10-pkg.conf']);
  });

  it('instances use the template and its drop-ins; a unit masked to /dev/null has none', () => {
    put('/usr/lib/systemd/system/tor@.service', '[Unit]\nAfter=network.target\n');
    put('/etc/systemd/system/tor@default.service.d/leakless.conf', '[Unit]\nAfter=leakless-firewall.service\n');
    expect([...effectiveDepsInRoot(root, 'tor@default.service').deps.After].sort()).toEqual(['leakless-firewall.service', 'network.target']);
    mkdirSync(join(root, 'dev'), { recursive: true });
    writeFileSync(join(root, 'dev/null'), '');
    symlinkSync('/dev/null', join(root, 'etc/systemd/system/masked.service'));
    put('/usr/lib/systemd/system/masked.service', '[Unit]\nBefore=x\n');
    expect(effectiveDepsInRoot(root, 'masked.service').fragment).toBeUndefined();
  });

  it('resolveInRoot never leaves the root, even through absolute symlinks', () => {
    symlinkSync('/etc/hostname-target', join(root, 'abs-link'));
    put('/etc/hostname-target', 'inside\n');
    expect(resolveInRoot(root, '/abs-link')).toBe(join(root, 'etc/hostname-target'));
    put('/etc/passwd', 'root:x:0:0::/root:/bin/sh\n');
    symlinkSync('../../../../../../etc/passwd', join(root, 'escape'));
    expect(resolveInRoot(root, '/escape')).toBe(join(root, 'etc/passwd'));
    expect(resolveInRoot(root, '/lib/systemd/system/fw.service')).toBe(join(root, 'usr/lib/systemd/system/fw.service'));
  });

  it('emittedUnitFiles finds a unit’s own file and its drop-ins, template ones included', () => {
    const tree = buildTree([
      emission('m', {
        files: [
          { path: '/usr/lib/systemd/system/fw.service', content: '', mode: 0o644, clause: 't' },
          { path: '/usr/lib/systemd/system/tor@default.service.d/a.conf', content: '', mode: 0o644, clause: 't' },
          { path: '/usr/lib/systemd/system/tor@.service.d/b.conf', content: '', mode: 0o644, clause: 't' },
          { path: '/etc/other.conf', content: '', mode: 0o644, clause: 't' },
        ],
      }),
    ]);
    expect(emittedUnitFiles(tree, 'fw.service').map((f) => f.path)).toEqual(['/usr/lib/systemd/system/fw.service']);
    expect(
      emittedUnitFiles(tree, 'tor@default.service')
        .map((f) => f.path)
        .sort(),
    ).toEqual(['/usr/lib/systemd/system/tor@.service.d/b.conf', '/usr/lib/systemd/system/tor@default.service.d/a.conf']);
  });
});

// A root filesystem shaped like the built image's: base-files' /usr/local
// directories (and its man link), the links systemctl makes in
// /etc/systemd/system, the modules' vendor files.
describe('the Debian layout and the masks on a root filesystem', () => {
  const policy = defaultPolicy();
  const r = mkdtempSync(join(tmpdir(), 'lk-layout-'));
  afterAll(() => rmSync(r, { recursive: true, force: true }));
  const at = (p: string) => join(r, p);
  const file = (p: string, content = '') => {
    mkdirSync(dirname(at(p)), { recursive: true });
    writeFileSync(at(p), content);
  };
  const link = (target: string, p: string) => {
    mkdirSync(dirname(at(p)), { recursive: true });
    symlinkSync(target, at(p));
  };
  const shipped: GeneratedFile[] = [
    { path: '/usr/lib/systemd/system/leakless-firewall.service', content: '[Unit]\n', mode: 0o644, clause: 't' },
    { path: '/usr/lib/leakless/firewall.nft', content: 'table inet leakless {}\n', mode: 0o644, clause: 't' },
    { path: '/usr/sbin/leakless-selftest', content: '#!/bin/sh\n', mode: 0o755, clause: 't' },
    { path: '/etc/resolv.conf', content: 'nameserver 127.0.0.1\n', mode: 0o644, clause: 't' },
  ];
  for (const f of shipped) file(f.path, f.content);
  for (const d of ['bin', 'sbin', 'lib', 'share/man']) mkdirSync(at(`/usr/local/${d}`), { recursive: true });
  link('share/man', '/usr/local/man');
  link('/usr/lib/systemd/system/leakless-firewall.service', '/etc/systemd/system/sysinit.target.wants/leakless-firewall.service');
  file('/usr/lib/systemd/system/nftables.service', '[Service]\nExecStart=/usr/sbin/nft -f /etc/nftables.conf\n');
  link('/dev/null', '/etc/systemd/system/nftables.service');
  const plan = { maskedUnits: ['nftables.service'], units: [], users: [], hostname: 'h', selftest: { assertions: [] } } as unknown as ImagePlan;
  const check = async (id: string, tree = buildTree([emission('m', { files: shipped })])) => {
    const a = imageAssertions(plan, tree, r).find((x) => x.id === id)!;
    return a.check({ tree: memoryTree(tree), policy, run: hostToolRunner });
  };
  const without = async (p: string, body: () => Promise<void>) => {
    try {
      await body();
    } finally {
      rmSync(at(p), { force: true });
    }
  };

  it('holds for vendor files, base-files’ /usr/local directories and systemctl’s links', async () => {
    expect(await check('image.layout')).toMatchObject({ ok: true });
    expect(await check('image.units-masked')).toMatchObject({ ok: true, detail: '1 units masked' });
  });

  it('a shipped file outside the package locations fails image.layout', async () => {
    for (const path of ['/usr/local/sbin/leakless-netns-exec', '/etc/systemd/system/leakless-netns.service', '/etc/leakless/time.conf', '/opt/leakless/x']) {
      const tree = buildTree([emission('m', { files: [...shipped, { path, content: '', mode: 0o644, clause: 't' }] })]);
      expect(await check('image.layout', tree), path).toMatchObject({ ok: false, detail: expect.stringContaining(path) });
    }
  });

  it('a regular file under /usr/local in the image fails image.layout', async () => {
    await without('/usr/local/bin/tool', async () => {
      file('/usr/local/bin/tool', '#!/bin/sh\n');
      expect(await check('image.layout')).toMatchObject({ ok: false, detail: expect.stringContaining('/usr/local/bin/tool') });
    });
  });

  it('a unit or drop-in file in /etc/systemd/system fails image.layout (the links systemctl makes do not)', async () => {
    for (const p of ['/etc/systemd/system/extra.service', '/etc/systemd/system/NetworkManager.service.d/50-leakless-firewall.conf'])
      await without(p, async () => {
        file(p, '[Unit]\n');
        expect(await check('image.layout'), p).toMatchObject({ ok: false, detail: expect.stringContaining(p) });
      });
  });

  it('a masked unit that is not masked fails image.units-masked: no link, or a link elsewhere', async () => {
    rmSync(at('/etc/systemd/system/nftables.service'));
    try {
      expect(await check('image.units-masked')).toMatchObject({ ok: false, detail: expect.stringContaining('nftables.service: no link') });
      link('/usr/lib/systemd/system/nftables.service', '/etc/systemd/system/nftables.service');
      expect(await check('image.units-masked')).toMatchObject({
        ok: false,
        detail: expect.stringContaining('links to /usr/lib/systemd/system/nftables.service'),
      });
    } finally {
      rmSync(at('/etc/systemd/system/nftables.service'), { force: true });
      link('/dev/null', '/etc/systemd/system/nftables.service');
    }
    expect(await check('image.units-masked')).toMatchObject({ ok: true });
  });
});

describe('qemuArgs', () => {
  const common = { iso: '/x.iso', accel: 'tcg' as const, memoryMb: 2048, cpus: 2, serialLog: '/s', resultFile: '/r' };
  it('gives the guest no network at all: -nodefaults, -nic none, and never user-mode networking', () => {
    for (const firmware of ['bios', 'uefi'] as const) {
      const a = qemuArgs({ ...common, firmware, ovmfVars: '/v.fd' });
      expect(a).toContain('-nodefaults');
      expect(a.join(' ')).toContain('-nic none');
      // the only network option is "-nic none"; no -netdev, -net, slirp or host forwards
      expect(a.filter((x, i) => /^-(nic|net|netdev)$/.test(x) && !(x === '-nic' && a[i + 1] === 'none'))).toEqual([]);
      expect(a.join(' ')).not.toMatch(/slirp|hostfwd|user,|tap,|bridge/);
      expect(a.join(' ')).toContain('virtserialport,chardev=lkresult,name=leakless.selftest');
      expect(a.join(' ')).toContain('file=/x.iso,media=cdrom');
    }
  });
  it('UEFI boots OVMF from pflash with a per-run variable store; BIOS boots the CD', () => {
    const u = qemuArgs({ ...common, firmware: 'uefi', ovmfVars: '/v.fd' }).join(' ');
    expect(u).toContain('if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd');
    expect(u).toContain('if=pflash,format=raw,unit=1,file=/v.fd');
    expect(() => qemuArgs({ ...common, firmware: 'uefi' })).toThrow(/variable store/);
    expect(qemuArgs({ ...common, firmware: 'bios' }).join(' ')).toContain('-boot order=d');
    expect(qemuArgs({ ...common, firmware: 'bios', accel: 'kvm' }).join(' ')).toContain('-accel kvm -cpu host');
  });
  it('a UEFI lab boot names the CD as the only boot device, so OVMF never brings up its own IPv6 on the NIC', () => {
    const lab = { tap: 'lktap0-t', mac: '52:54:00:12:34:56', agentSocket: '/a.sock', qmpSocket: '/q.sock' };
    const u = qemuArgs({ ...common, firmware: 'uefi', ovmfVars: '/v.fd', lab });
    expect(u.join(' ')).toContain('-global ide-cd.bootindex=0');
    // the global reaches the CD only while the CD is an IDE cdrom; and no other device (not the NIC) has a boot index
    expect(u.filter((x) => x.includes('media=cdrom'))).toEqual([expect.stringContaining('if=ide')]);
    expect(u.filter((x) => x.includes('bootindex'))).toEqual(['ide-cd.bootindex=0']);
    expect(u.join(' ')).toContain(`virtio-net-pci,netdev=lknet,mac=${lab.mac},romfile=`);
    // BIOS: no network driver in the firmware at all (romfile= empty), nothing to switch off
    expect(qemuArgs({ ...common, firmware: 'bios', lab }).join(' ')).not.toContain('bootindex');
  });
  it('under TCG the emulated CPU has no ERMS/FSRM, so the guest kernel does not zero pages a byte per emulated loop; KVM keeps the host CPU', () => {
    for (const firmware of ['bios', 'uefi'] as const) {
      const a = qemuArgs({ ...common, firmware, ovmfVars: '/v.fd' });
      expect(a[a.indexOf('-cpu') + 1]).toBe('max,-erms,-fsrm');
      expect(a.filter((x) => x === '-cpu')).toHaveLength(1);
    }
    const k = qemuArgs({ ...common, firmware: 'bios', accel: 'kvm' });
    expect(k[k.indexOf('-cpu') + 1]).toBe('host');
  });
  it('without a result file the guest has no self-test port, so its self-test does not run', () => {
    const { resultFile: _, ...noResult } = common;
    const a = qemuArgs({ ...noResult, firmware: 'bios' }).join(' ');
    expect(a).not.toContain('leakless.selftest');
    expect(a).toContain('virtio-serial-pci');
  });
});

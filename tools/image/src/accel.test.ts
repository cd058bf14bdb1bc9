import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProgress } from '@leakless/debos-ts';
import {
  AccelError,
  bootProbeKernel,
  chooseAccel,
  decideAccel,
  fakemachineMissing,
  fakemachineRelease,
  kvmVerdict,
  probeKvm,
  probeQemuArgs,
  type HostView,
} from './accel.js';
import { kernelPackageOf } from './probe-kernel.js';

const dir = mkdtempSync(join(tmpdir(), 'lk-accel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A stand-in /dev/kvm that opens read-write, and a kernel file the doubles never read.
const device = join(dir, 'kvm');
writeFileSync(device, '');
const kernel = join(dir, 'vmlinuz');
writeFileSync(kernel, 'not a kernel');

/**
 * Test doubles of qemu-system-x86_64. Each logs its arguments and then
 * behaves like QEMU on one kind of machine.
 */
function fakeQemu(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n[ "$1" = --version ] && { echo 'QEMU emulator version 7.2.19'; exit 0; }\necho "$*" >> '${p}.calls'\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}
const calls = (qemu: string) => readFileSync(`${qemu}.calls`, 'utf8').trim().split('\n');
const PANIC = '[    1.783876] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)';

// KVM works: the kernel boots and panics at once.
const working = fakeQemu('qemu-working', `echo '[    0.000000] Linux version 6.1.0-56-amd64'\necho '${PANIC}'\nexec sleep 30`);
// KVM opens, a 512-byte boot sector runs (QEMU exits 67 through isa-debug-exit),
// but a real Linux kernel prints nothing, for ever: the machine the old probe passed.
const hangsOnLinux = fakeQemu('qemu-hangs-on-linux', `case "$*" in *-kernel*) exec sleep 30 ;; esac\nexit 67`);
// KVM aborts the guest at once, as on the build machine.
const aborts = fakeQemu('qemu-aborts', `echo 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69' >&2\nkill -ABRT $$`);

describe('the KVM probe boots a real kernel', () => {
  it('QEMU arguments: the kernel, no initrd, panic=-1, -no-reboot, serial console, no network', () => {
    const a = probeQemuArgs('/k', 'kvm');
    expect(a).toEqual(expect.arrayContaining(['-kernel', '/k', '-no-reboot', '-nodefaults', '-serial', 'stdio', '-append', 'console=ttyS0 panic=-1']));
    expect(a.join(' ')).toContain('-accel kvm -cpu host');
    expect(a).not.toContain('-initrd');
    expect(a.slice(a.indexOf('-nic'), a.indexOf('-nic') + 2)).toEqual(['-nic', 'none']);
    expect(probeQemuArgs('/k', 'tcg').join(' ')).toContain('-accel tcg -cpu max,-erms,-fsrm');
  });

  it('the panic line: usable, within the time it took, and QEMU is stopped', async () => {
    const t = Date.now();
    const v = await probeKvm({ device, qemu: working, kernel, timeoutMs: 10_000 });
    expect(v.usable).toBe(true);
    expect(v.reason).toMatch(/a Debian kernel booted under KVM to its panic line/);
    expect(Date.now() - t).toBeLessThan(5000);
    expect(calls(working).at(-1)).toContain(`-kernel ${kernel}`);
  });

  it('KVM opens, a boot sector would run, but Linux prints nothing: unusable, with the reason', async () => {
    const t = Date.now();
    const v = await probeKvm({ device, qemu: hangsOnLinux, kernel, timeoutMs: 1500 });
    expect(v.usable).toBe(false);
    expect(v.reason).toMatch(/opens, but a KVM guest cannot boot Linux: no kernel panic line within 1\.5s \(the guest printed nothing\)/);
    expect(Date.now() - t).toBeLessThan(5000);
  });

  it('QEMU aborts under KVM: unusable, and the reason carries QEMU’s own last line', async () => {
    const v = await probeKvm({ device, qemu: aborts, kernel, timeoutMs: 10_000 });
    expect(v.usable).toBe(false);
    expect(v.reason).toMatch(/QEMU exited \(.*\) before the kernel's panic line; last output: qemu-system-x86_64: error: failed to set MSR 0x10a/);
  });

  it('no /dev/kvm, no QEMU, no kernel: unusable ("cannot tell" is not a yes)', async () => {
    expect((await probeKvm({ device: join(dir, 'no-kvm'), qemu: working, kernel })).reason).toMatch(/no-kvm: ENOENT/);
    expect((await probeKvm({ device, qemu: join(dir, 'no-qemu'), kernel })).reason).toMatch(/no-qemu is not usable \(ENOENT\): cannot tell/);
    const v = await probeKvm({ device, qemu: working, kernel: () => Promise.reject(new Error('apt-get download failed: 404')) });
    expect(v).toMatchObject({ usable: false });
    expect(v.reason).toMatch(/no kernel to probe KVM with \(apt-get download failed: 404\): cannot tell/);
  });

  it('shows progress: the stage, its time, and the guest’s lines', async () => {
    const out: string[] = [];
    await probeKvm({ device, qemu: working, kernel, progress: createProgress({ label: 'accel', write: (s) => out.push(s), tty: false }) });
    expect(out.join('')).toMatch(/\[accel\] KVM probe: boot a Debian kernel under KVM …\n\[accel\] done: KVM probe: boot a Debian kernel under KVM \(\d/);
  });

  it('TCG, same probe: the panic line is what counts', async () => {
    const b = await bootProbeKernel({ kernel, accel: 'tcg', qemu: working, timeoutMs: 10_000 });
    expect(b.booted).toBe(true);
    expect(b.tail.at(-1)).toBe(PANIC);
  });

  it('is probed once per process for the same kernel source', async () => {
    const q = fakeQemu('qemu-counted', `echo '${PANIC}'`);
    const [a, b] = await Promise.all([kvmVerdict({ device, qemu: q, kernel, cacheKey: 'k1' }), kvmVerdict({ device, qemu: q, kernel, cacheKey: 'k1' })]);
    const c = await kvmVerdict({ device, qemu: q, kernel, cacheKey: 'k1' });
    expect(a).toBe(b);
    expect(c).toBe(a);
    expect(calls(q)).toHaveLength(1);
  });
});

// ---- fakemachine's prerequisites

/** A host as fakemachine sees it: a set of existing paths, tools on PATH and modules modinfo knows. */
function host(o: { release?: string; paths?: string[]; tools?: string[]; modules?: string[]; mergedUsr?: boolean }): HostView {
  const paths = new Set(o.paths ?? []);
  return {
    release: o.release ?? '6.1.0-56-amd64',
    mergedUsr: o.mergedUsr ?? false,
    exists: (p) => paths.has(p),
    list: (p) => {
      const names = [...paths].filter((x) => x.startsWith(p + '/')).map((x) => x.slice(p.length + 1).split('/')[0]!);
      return names.length ? [...new Set(names)].sort() : undefined;
    },
    which: (c) => (o.tools ?? []).includes(c),
    hasModule: (_r, m) => (o.modules ?? []).includes(m),
  };
}
const complete = (rel = '6.1.0-56-amd64') => ({
  release: rel,
  paths: [
    `/lib/modules/${rel}`,
    `/boot/vmlinuz-${rel}`,
    ...['builtin', 'alias', 'symbols'].map((f) => `/lib/modules/${rel}/modules.${f}`),
    '/lib/systemd/systemd-resolved',
  ],
  tools: ['qemu-system-x86_64', 'busybox'],
  modules: ['virtio_pci', 'virtio_console', '9pnet_virtio', '9p'],
});

describe('fakemachine’s prerequisites (fakemachine 0.0.4)', () => {
  it('a host with its kernel, modules, busybox and systemd-resolved: nothing missing', () => {
    expect(fakemachineMissing(host(complete()))).toEqual([]);
  });
  it('no /lib/modules at all (this build machine): names the running kernel’s module directory', () => {
    const h = { ...complete(), paths: ['/lib/systemd/systemd-resolved'], release: '6.18.44-fc-v669' };
    expect(fakemachineMissing(host(h))).toEqual([
      "/lib/modules/6.18.44-fc-v669 (the host kernel's modules; fakemachine boots the host kernel, and /lib/modules has no other kernel)",
    ]);
  });
  it('modules of another kernel: fakemachine takes the newest one, and then needs its image', () => {
    const c = complete('6.1.0-40-amd64');
    const h = host({
      ...c,
      release: '6.18.44-fc-v669',
      paths: [...c.paths.filter((p) => !p.startsWith('/boot/')), '/lib/modules/6.1.0-30-amd64/modules.alias', '/lib/modules/extramodules-x'],
    });
    expect(fakemachineRelease(h)).toBe('6.1.0-40-amd64');
    expect(fakemachineMissing(h)).toEqual(['/boot/vmlinuz-6.1.0-40-amd64 (the image of kernel 6.1.0-40-amd64)']);
    expect(
      fakemachineMissing(
        host({ ...c, release: '6.18.44-fc-v669', paths: [...c.paths, '/lib/modules/6.1.0-40-amd64/vmlinuz'].filter((p) => !p.startsWith('/boot/')) }),
      ),
    ).toEqual([]);
  });
  it('each missing piece is named', () => {
    const c = complete();
    const h = host({ ...c, tools: [], modules: ['virtio_pci'], paths: c.paths.filter((p) => !p.endsWith('systemd-resolved') && !p.endsWith('modules.alias')) });
    expect(fakemachineMissing(h)).toEqual([
      'qemu-system-x86_64 (qemu-system-x86)',
      'busybox (busybox or busybox-static)',
      '/lib/systemd/systemd-resolved (systemd-resolved; note it replaces /etc/resolv.conf)',
      '/lib/modules/6.1.0-56-amd64/modules.alias',
      'kernel modules virtio_console, 9pnet_virtio, 9p for 6.1.0-56-amd64',
    ]);
  });
  it('merged /usr: the modules are looked up under /usr/lib/modules', () => {
    const c = complete();
    expect(fakemachineMissing(host({ ...c, mergedUsr: true }))).toEqual(['/usr/lib/modules/6.1.0-56-amd64 (kernel modules)']);
  });
});

describe('the decision', () => {
  const ok = { usable: true, reason: 'a Debian kernel booted under KVM to its panic line in 1.1s' };
  const broken = { usable: false, reason: '/dev/kvm opens, but a KVM guest cannot boot Linux: no kernel panic line within 20.0s' };
  it('auto: KVM and fakemachine only when a KVM guest boots Linux and fakemachine has what it needs', () => {
    expect(decideAccel({ accel: 'auto', fakemachine: 'auto', kvm: ok, fakemachineMissing: [] })).toEqual({
      accel: 'kvm',
      accelReason: ok.reason,
      debos: { mode: 'fakemachine', backend: 'kvm', reason: expect.stringMatching(/^fakemachine under KVM/) as unknown as string },
    });
    const noMods = decideAccel({ accel: 'auto', fakemachine: 'auto', kvm: ok, fakemachineMissing: ['/lib/modules/6.18.44 (…)'] });
    expect(noMods.accel).toBe('kvm');
    expect(noMods.debos).toEqual({
      mode: 'host',
      reason: '--disable-fakemachine: a KVM guest boots Linux, but fakemachine needs what this host lacks: /lib/modules/6.18.44 (…)',
    });
    const b = decideAccel({ accel: 'auto', fakemachine: 'auto', kvm: broken });
    expect(b.accel).toBe('tcg');
    expect(b.accelReason).toBe(`KVM unusable: ${broken.reason}`);
    expect(b.debos).toEqual({ mode: 'host', reason: '--disable-fakemachine: fakemachine needs KVM, and a KVM guest cannot boot Linux here' });
  });
  it('flags override the probes', () => {
    expect(decideAccel({ accel: 'tcg', fakemachine: 'auto' })).toMatchObject({ accel: 'tcg', accelReason: '--accel tcg', debos: { mode: 'host' } });
    expect(decideAccel({ accel: 'kvm', fakemachine: 'off' })).toEqual({
      accel: 'kvm',
      accelReason: '--accel kvm',
      debos: { mode: 'host', reason: '--fakemachine off' },
    });
    expect(decideAccel({ accel: 'auto', fakemachine: 'off', kvm: ok }).debos.mode).toBe('host');
    expect(decideAccel({ accel: 'tcg', fakemachine: 'on', fakemachineMissing: [] }).debos).toMatchObject({ mode: 'fakemachine', backend: 'qemu' });
    expect(decideAccel({ accel: 'auto', fakemachine: 'on', kvm: ok, fakemachineMissing: [] }).debos).toMatchObject({ mode: 'fakemachine', backend: 'kvm' });
    expect(() => decideAccel({ accel: 'auto', fakemachine: 'on', kvm: ok, fakemachineMissing: ['busybox (…)'] })).toThrow(
      new AccelError('--fakemachine on: fakemachine cannot start here, missing busybox (…)'),
    );
  });
  it('chooseAccel probes only what the flags leave open, and simulates "KVM opens but cannot boot Linux"', async () => {
    const never = fakeQemu('qemu-never', 'exit 99');
    const forced = await chooseAccel({ accel: 'tcg', fakemachine: 'auto', forDebos: true, kernel, qemu: never, device });
    expect(forced.accel).toBe('tcg');
    expect(() => calls(never)).toThrow(); // QEMU never ran
    const d = await chooseAccel({ forDebos: true, kernel, qemu: hangsOnLinux, device, timeoutMs: 1500, host: host(complete()) });
    expect(d.accel).toBe('tcg');
    expect(d.debos.mode).toBe('host');
    expect(d.accelReason).toMatch(/KVM unusable: .* cannot boot Linux/);
    const w = await chooseAccel({ forDebos: true, kernel, qemu: working, device, host: host({ ...complete(), paths: [] }) });
    expect(w.accel).toBe('kvm');
    expect(w.debos.reason).toMatch(/fakemachine needs what this host lacks: .*\/lib\/modules\/6\.1\.0-56-amd64/);
  });
});

describe('the probe kernel package', () => {
  it('is what linux-image-amd64 depends on', () => {
    expect(kernelPackageOf('linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n')).toBe('linux-image-6.1.0-56-amd64');
    expect(kernelPackageOf('linux-image-amd64\n  Depends: <linux-image-6.1.0-56-amd64>\n')).toBeUndefined();
    expect(kernelPackageOf('')).toBeUndefined();
  });
});

// Which accelerator QEMU uses, and whether debos runs in fakemachine, decided
// by what actually works on this machine.
//
// /dev/kvm opening is no evidence: on some machines it opens and then
// `qemu -accel kvm -cpu host` aborts ("failed to set MSR 0x10a"); on others a
// 512-byte boot sector runs fine under KVM but a real Linux kernel hangs after
// GRUB, silently, forever. The only honest probe is the thing we need: boot a
// real Debian kernel (no initrd, `panic=-1`, `-no-reboot`, serial console)
// and wait for its "Kernel panic - not syncing" line. Under TCG it comes after
// ~5 s; a working KVM is faster; a broken one prints nothing.
//
// fakemachine (what debos runs in unless --disable-fakemachine) boots the
// host's own kernel under KVM with modules from the host; it needs a KVM that
// boots Linux AND those host files (see fakemachineMissing).
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { release as kernelRelease } from 'node:os';
import { join } from 'node:path';
import { formatDuration, silentProgress, type DebosMode, type Progress } from '@leakless/debos-ts';

export type Accel = 'kvm' | 'tcg';
export const ACCEL_FLAGS = ['auto', 'kvm', 'tcg'] as const;
export type AccelFlag = (typeof ACCEL_FLAGS)[number];
export const FAKEMACHINE_FLAGS = ['auto', 'on', 'off'] as const;
export type FakemachineFlag = (typeof FAKEMACHINE_FLAGS)[number];
/** fakemachine's backends (debos --fakemachine-backend): kvm, or plain QEMU (TCG). */
export type FakemachineBackend = 'kvm' | 'qemu';

/**
 * The CPU QEMU presents. Under KVM the host's own. Under TCG QEMU's `max`
 * without ERMS and FSRM: with ERMS the guest kernel zeroes pages with
 * `rep stosb`, which TCG emulates one byte per loop, and the Debian kernel
 * zeroes every page it allocates (init_on_alloc). Sampling the guest's
 * instruction pointer showed one vCPU in clear_page_erms for most of the
 * 33 s between the initramfs's exec of systemd and systemd's first line;
 * without ERMS the kernel takes `rep stosq` (8 bytes a loop) and the whole
 * boot to the self-test result fell from 79 s to 52 s (docs/design.md#boot-speed).
 * Only the emulated CPU changes, never the image: a real machine with ERMS
 * runs the same kernel and the same code paths the self-test checks.
 */
export function qemuCpu(accel: Accel): string {
  return accel === 'kvm' ? 'host' : 'max,-erms,-fsrm';
}

/** The line a kernel without a root filesystem ends with. */
export const PANIC_LINE = /Kernel panic - not syncing/;
/**
 * How long the probe kernel may take to reach its panic line. Measured on
 * the 2-core build machine: 5.0 s under TCG (linux-image-6.1.0-56-amd64,
 * panic at guest time 1.8 s); under KVM ~1 s. 20 s is four times the TCG
 * time, and still far below a stalled boot's 600 s.
 */
export const PROBE_TIMEOUT_MS = 20_000;

export interface KernelBoot {
  /** The panic line was seen. */
  readonly booted: boolean;
  readonly reason: string;
  readonly ms: number;
  /** The last lines QEMU and the guest printed. */
  readonly tail: readonly string[];
}

export function probeQemuArgs(kernel: string, accel: Accel): string[] {
  return [
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-nic',
    'none',
    '-accel',
    accel,
    '-cpu',
    qemuCpu(accel),
    '-m',
    '256',
    '-serial',
    'stdio',
    '-kernel',
    kernel,
    '-append',
    'console=ttyS0 panic=-1',
  ];
}

export interface KernelBootOptions {
  readonly kernel: string;
  readonly accel: Accel;
  readonly qemu?: string;
  readonly timeoutMs?: number;
  readonly progress?: Progress;
}

/** Boot a kernel with no initrd and report whether it reached its panic line. */
export function bootProbeKernel(o: KernelBootOptions): Promise<KernelBoot> {
  const qemu = o.qemu ?? 'qemu-system-x86_64';
  const timeoutMs = o.timeoutMs ?? PROBE_TIMEOUT_MS;
  const progress = o.progress ?? silentProgress();
  const started = Date.now();
  const tail: string[] = [];
  return new Promise((resolve) => {
    let done = false;
    let partial = '';
    const child = spawn(qemu, probeQemuArgs(o.kernel, o.accel), { stdio: ['ignore', 'pipe', 'pipe'] });
    const finish = (booted: boolean, reason: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      resolve({ booted, reason, ms: Date.now() - started, tail: tail.slice(-10) });
    };
    const onData = (d: Buffer) => {
      const lines = (partial + d.toString('latin1')).split(/\r?\n/);
      partial = lines.pop() ?? '';
      for (const raw of lines) {
        // eslint-disable-next-line no-control-regex
        const line = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').trim();
        if (!line) continue;
        tail.push(line);
        if (tail.length > 40) tail.shift();
        progress.line(line);
        if (PANIC_LINE.test(line))
          finish(true, `a Debian kernel booted under ${o.accel.toUpperCase()} to its panic line in ${formatDuration(Date.now() - started)}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(
      () => finish(false, `no kernel panic line within ${formatDuration(timeoutMs)}${tail.length ? '' : ' (the guest printed nothing)'}`),
      timeoutMs,
    );
    child.on('error', (e: NodeJS.ErrnoException) => finish(false, `${qemu}: ${e.code ?? e.message}`));
    child.on('close', (code, signal) => {
      if (partial) onData(Buffer.from('\n'));
      finish(false, `QEMU exited (${code ?? signal}) before the kernel's panic line`);
    });
  });
}

export interface KvmVerdict {
  readonly usable: boolean;
  readonly reason: string;
  readonly ms: number;
}

export interface KvmProbeOptions {
  readonly device?: string;
  readonly qemu?: string;
  /** The probe kernel (a path, or how to get one, showing its progress: see ensureProbeKernel). */
  readonly kernel: string | ((progress: Progress) => Promise<string>);
  readonly timeoutMs?: number;
  readonly progress?: Progress;
}

const lastLines = (t: readonly string[], n = 3) => (t.length ? `; last output: ${t.slice(-n).join(' | ')}` : '');

/** Can a KVM guest boot Linux here? "Cannot tell" counts as no: TCG always works. */
export async function probeKvm(o: KvmProbeOptions): Promise<KvmVerdict> {
  const started = Date.now();
  const device = o.device ?? '/dev/kvm';
  const qemu = o.qemu ?? 'qemu-system-x86_64';
  const progress = o.progress ?? silentProgress();
  const verdict = (usable: boolean, reason: string): KvmVerdict => {
    // the probe did its job either way: "unusable" is an answer, not a failure of the build
    progress.finish(true);
    return { usable, reason, ms: Date.now() - started };
  };
  try {
    const fh = await open(device, 'r+');
    await fh.close();
  } catch (e) {
    return verdict(false, `${device}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const v = spawnSync(qemu, ['--version'], { stdio: 'ignore', timeout: 20_000 });
  if (v.status !== 0)
    return verdict(
      false,
      `${qemu} is not usable (${v.error ? (v.error as NodeJS.ErrnoException).code : `exit ${v.status}`}): cannot tell, so KVM counts as unusable`,
    );
  let kernel: string;
  try {
    kernel = typeof o.kernel === 'string' ? o.kernel : await o.kernel(progress);
  } catch (e) {
    return verdict(false, `no kernel to probe KVM with (${(e as Error).message}): cannot tell, so KVM counts as unusable`);
  }
  progress.stage('KVM probe: boot a Debian kernel under KVM');
  const b = await bootProbeKernel({ kernel, accel: 'kvm', qemu, ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}), progress });
  return b.booted ? verdict(true, b.reason) : verdict(false, `${device} opens, but a KVM guest cannot boot Linux: ${b.reason}${lastLines(b.tail)}`);
}

const probes = new Map<string, Promise<KvmVerdict>>();

/** probeKvm once per process for the same device, QEMU and kernel source (the answer does not change while we run). */
export function kvmVerdict(o: KvmProbeOptions & { readonly cacheKey: string }): Promise<KvmVerdict> {
  const key = [o.device ?? '/dev/kvm', o.qemu ?? 'qemu-system-x86_64', o.cacheKey].join('\0');
  let p = probes.get(key);
  if (!p) {
    p = probeKvm(o);
    probes.set(key, p);
  }
  return p;
}

// ---- fakemachine's prerequisites (go-debos/fakemachine 0.0.4, as in bookworm's debos 1.1.1)

/** What fakemachine reads from the host; the real one is hostView(), tests pass their own. */
export interface HostView {
  /** uname -r */
  readonly release: string;
  /** /bin is a symlink (merged /usr): fakemachine then copies modules from /usr/lib/modules. */
  readonly mergedUsr: boolean;
  exists(path: string): boolean;
  /** Sorted names in a directory, undefined if it cannot be read. */
  list(path: string): readonly string[] | undefined;
  /** On PATH (exec.LookPath). */
  which(cmd: string): boolean;
  /** `modinfo -k release module` succeeds with a filename (a path, or "(builtin)"). */
  hasModule(release: string, module: string): boolean;
}

/** Modules fakemachine's qemu/kvm backends put into the guest's initrd (backend_qemu.go InitModules). */
export const FAKEMACHINE_MODULES = ['virtio_pci', 'virtio_console', '9pnet_virtio', '9p'] as const;

/**
 * The kernel release fakemachine boots: the running kernel's if its modules
 * are installed, else the last /lib/modules entry starting with a digit
 * (qemuBackend.KernelRelease).
 */
export function fakemachineRelease(h: HostView): string | undefined {
  if (h.exists(join('/lib/modules', h.release))) return h.release;
  const names = h.list('/lib/modules');
  return names ? [...names].reverse().find((n) => /^[0-9]/.test(n)) : undefined;
}

/** What fakemachine needs and this host lacks (empty: it can start). */
export function fakemachineMissing(h: HostView): string[] {
  const missing: string[] = [];
  if (!h.which('qemu-system-x86_64')) missing.push('qemu-system-x86_64 (qemu-system-x86)');
  if (!h.which('busybox')) missing.push('busybox (busybox or busybox-static)');
  // copied into the guest unconditionally (machine.go): without it fakemachine refuses to start
  if (!h.exists('/lib/systemd/systemd-resolved')) missing.push('/lib/systemd/systemd-resolved (systemd-resolved; note it replaces /etc/resolv.conf)');
  const release = fakemachineRelease(h);
  if (!release) {
    missing.push(`/lib/modules/${h.release} (the host kernel's modules; fakemachine boots the host kernel, and /lib/modules has no other kernel)`);
    return missing;
  }
  const moddir = join(h.mergedUsr ? '/usr/lib/modules' : '/lib/modules', release);
  if (!h.exists(moddir)) {
    missing.push(`${moddir} (kernel modules)`);
    return missing;
  }
  if (!h.exists(join(moddir, 'vmlinuz')) && !h.exists(`/boot/vmlinuz-${release}`)) missing.push(`/boot/vmlinuz-${release} (the image of kernel ${release})`);
  for (const f of ['modules.builtin', 'modules.alias', 'modules.symbols']) if (!h.exists(join(moddir, f))) missing.push(join(moddir, f));
  const mods = FAKEMACHINE_MODULES.filter((m) => !h.hasModule(release, m));
  if (mods.length) missing.push(`kernel modules ${mods.join(', ')} for ${release}`);
  return missing;
}

function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/sbin', '/usr/sbin'])) {
    try {
      accessSync(join(dir || '.', cmd), constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

/** This machine, as fakemachine sees it. */
export function hostView(): HostView {
  return {
    release: kernelRelease(),
    mergedUsr: (() => {
      try {
        return lstatSync('/bin').isSymbolicLink();
      } catch {
        return false;
      }
    })(),
    exists: (p) => existsSync(p),
    list: (p) => {
      try {
        return readdirSync(p).sort();
      } catch {
        return undefined;
      }
    },
    which: onPath,
    hasModule: (release, m) => {
      const r = spawnSync('modinfo', ['-k', release, '-F', 'filename', m], { encoding: 'utf8', timeout: 10_000 });
      return r.status === 0 && r.stdout.trim() !== '';
    },
  };
}

// ---- the decision

export interface DebosChoice {
  readonly mode: DebosMode;
  /** Passed as --fakemachine-backend, so debos fails instead of quietly falling back to the host. */
  readonly backend?: FakemachineBackend;
  readonly reason: string;
}

export interface AccelDecision {
  readonly accel: Accel;
  readonly accelReason: string;
  readonly debos: DebosChoice;
}

export class AccelError extends Error {
  override readonly name = 'AccelError';
}

export interface DecideInputs {
  readonly accel: AccelFlag;
  readonly fakemachine: FakemachineFlag;
  /** The probe's verdict; needed when accel is auto. */
  readonly kvm?: { readonly usable: boolean; readonly reason: string };
  /** fakemachineMissing(); needed when fakemachine is not off. */
  readonly fakemachineMissing?: readonly string[];
}

/** Pure: flags and probe results in, accelerator and debos mode out. */
export function decideAccel(i: DecideInputs): AccelDecision {
  let accel: Accel;
  let accelReason: string;
  if (i.accel !== 'auto') {
    accel = i.accel;
    accelReason = `--accel ${i.accel}`;
  } else {
    if (!i.kvm) throw new Error('decideAccel: --accel auto needs the KVM probe verdict');
    accel = i.kvm.usable ? 'kvm' : 'tcg';
    accelReason = i.kvm.usable ? i.kvm.reason : `KVM unusable: ${i.kvm.reason}`;
  }
  const missing = i.fakemachineMissing;
  let debos: DebosChoice;
  if (i.fakemachine === 'off') debos = { mode: 'host', reason: '--fakemachine off' };
  else if (i.fakemachine === 'on') {
    if (!missing) throw new Error('decideAccel: --fakemachine on needs fakemachine’s prerequisites checked');
    if (missing.length) throw new AccelError(`--fakemachine on: fakemachine cannot start here, missing ${missing.join('; ')}`);
    debos =
      accel === 'kvm'
        ? { mode: 'fakemachine', backend: 'kvm', reason: `--fakemachine on, under KVM (${accelReason})` }
        : { mode: 'fakemachine', backend: 'qemu', reason: `--fakemachine on, under TCG (${accelReason}; slow)` };
  } else if (accel !== 'kvm')
    debos = {
      mode: 'host',
      reason: `--disable-fakemachine: fakemachine needs KVM, ${i.accel === 'auto' ? 'and a KVM guest cannot boot Linux here' : 'and --accel tcg'}`,
    };
  else {
    if (!missing) throw new Error('decideAccel: --fakemachine auto needs fakemachine’s prerequisites checked');
    debos = missing.length
      ? { mode: 'host', reason: `--disable-fakemachine: a KVM guest boots Linux, but fakemachine needs what this host lacks: ${missing.join('; ')}` }
      : { mode: 'fakemachine', backend: 'kvm', reason: `fakemachine under KVM (${accelReason}; its host kernel and modules are present)` };
  }
  return { accel, accelReason, debos };
}

export interface ChooseOptions {
  readonly accel?: AccelFlag;
  readonly fakemachine?: FakemachineFlag;
  /** Whether debos will run (iso, bench): only then fakemachine's prerequisites matter. */
  readonly forDebos: boolean;
  /** The probe kernel: a path, or a fetcher (ensureProbeKernel) with the key its cache lives under. */
  readonly kernel: string | { readonly fetch: (progress: Progress) => Promise<string>; readonly cacheKey: string };
  readonly device?: string;
  readonly qemu?: string;
  readonly timeoutMs?: number;
  readonly host?: HostView;
  readonly progress?: Progress;
  readonly note?: (s: string) => void;
}

/** Probe what the flags leave open (only that), then decide. */
export async function chooseAccel(o: ChooseOptions): Promise<AccelDecision> {
  const accel = o.accel ?? 'auto';
  const fakemachine = o.fakemachine ?? 'auto';
  let kvm: KvmVerdict | undefined;
  if (accel === 'auto') {
    const k = o.kernel;
    kvm = await kvmVerdict({
      ...(o.device !== undefined ? { device: o.device } : {}),
      ...(o.qemu !== undefined ? { qemu: o.qemu } : {}),
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      ...(o.progress ? { progress: o.progress } : {}),
      kernel: typeof k === 'string' ? k : k.fetch,
      cacheKey: typeof k === 'string' ? k : k.cacheKey,
    });
    o.note?.(`KVM probe (${formatDuration(kvm.ms)}): ${kvm.usable ? 'usable' : 'unusable'}: ${kvm.reason}`);
  }
  const needPrereqs = o.forDebos && (fakemachine === 'on' || (fakemachine === 'auto' && (accel === 'kvm' || kvm?.usable === true)));
  const missing = needPrereqs ? fakemachineMissing(o.host ?? hostView()) : undefined;
  return decideAccel({ accel, fakemachine: o.forDebos ? fakemachine : 'off', ...(kvm ? { kvm } : {}), ...(missing ? { fakemachineMissing: missing } : {}) });
}

// Is KVM usable for real? On these machines /dev/kvm opens fine, so
// fakemachine's own check picks kvm, and then `qemu -enable-kvm -cpu host`
// aborts ("failed to set MSR 0x10a", build-toolchain §1.6). The only honest
// test is to run guest code: boot a 512-byte boot sector under KVM that writes
// to QEMU's isa-debug-exit port. QEMU then exits with (0x21 << 1) | 1 = 67.
import { open, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { DebosMode } from '@leakless/debos-ts';

export interface KvmVerdict {
  readonly usable: boolean;
  readonly reason: string;
}

const EXIT_BYTE = 0x21;
/** mov al, 0x21; out 0xf4, al; hlt; jmp $-1 — then padding and the 0x55AA signature. */
export function probeBootSector(): Buffer {
  const code = Buffer.from([0xb0, EXIT_BYTE, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]);
  const sector = Buffer.alloc(512);
  code.copy(sector);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

export const PROBE_EXIT_CODE = (EXIT_BYTE << 1) | 1;

export interface KvmProbeOptions {
  readonly device?: string;
  readonly qemu?: string;
  readonly timeoutMs?: number;
}

let cached: Promise<KvmVerdict> | undefined;

/** Probe once per process (the answer does not change while we run). */
export function kvmUsable(opts: KvmProbeOptions = {}): Promise<KvmVerdict> {
  if (Object.keys(opts).length) return probeKvm(opts);
  cached ??= probeKvm(opts);
  return cached;
}

export async function probeKvm(opts: KvmProbeOptions = {}): Promise<KvmVerdict> {
  const device = opts.device ?? '/dev/kvm';
  try {
    const fh = await open(device, 'r+');
    await fh.close();
  } catch (e) {
    return { usable: false, reason: `${device}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  const dir = await mkdtemp(join(tmpdir(), 'kvm-probe-'));
  try {
    const img = join(dir, 'probe.img');
    await writeFile(img, probeBootSector());
    const r = await execa(
      opts.qemu ?? 'qemu-system-x86_64',
      ['-accel', 'kvm', '-cpu', 'host', '-m', '32', '-display', 'none', '-nodefaults', '-no-reboot',
        '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x01', '-drive', `file=${img},format=raw,if=ide,snapshot=on`],
      { reject: false, timeout: opts.timeoutMs ?? 15_000, all: true },
    );
    if (r.exitCode === PROBE_EXIT_CODE) return { usable: true, reason: 'a KVM guest ran the probe boot sector' };
    if ((r as { code?: string }).code === 'ENOENT') return { usable: false, reason: 'qemu-system-x86_64 not installed: cannot tell, so KVM counts as unusable' };
    const why = r.timedOut ? 'timed out' : `exit ${r.exitCode ?? r.signal}`;
    const last = (r.all ?? '').trim().split('\n').filter(Boolean).pop() ?? '';
    return { usable: false, reason: `KVM opens but cannot run a guest (${why}${last ? `: ${last}` : ''})` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface DebosChoice {
  readonly mode: DebosMode;
  readonly reason: string;
}

/** fakemachine only when a KVM guest really runs; an explicit mode wins. */
export async function chooseDebosMode(requested?: DebosMode): Promise<DebosChoice> {
  if (requested) return { mode: requested, reason: `${requested} mode requested` };
  const v = await kvmUsable();
  return v.usable ? { mode: 'fakemachine', reason: v.reason } : { mode: 'host', reason: `--disable-fakemachine: ${v.reason}` };
}

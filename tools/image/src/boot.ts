// Boot the ISO in QEMU through its real boot path (BIOS:
// SeaBIOS → El Torito → GRUB; UEFI: OVMF → efi.img → GRUB) with NO network
// device at all, let the image run leakless-selftest, and read the result
// back over a virtio-serial port. The port is also the trigger: the image's
// leakless-selftest.service only runs when /dev/virtio-ports/leakless.selftest
// exists (or the leakless.selftest kernel argument is given), so a normal
// boot on real hardware never runs it.
import { copyFile, mkdir, mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { formatDuration, type Progress } from '@leakless/debos-ts';
import { SELFTEST_PORT } from './iso-plan.js';
import { judgeReport, parseResultLine, type SelftestReport } from '@leakless/selftest';

export type Firmware = 'bios' | 'uefi';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export interface QemuPlan {
  readonly firmware: Firmware;
  readonly iso: string;
  readonly accel: 'kvm' | 'tcg';
  readonly memoryMb: number;
  readonly cpus: number;
  readonly serialLog: string;
  readonly resultFile: string;
  /** UEFI: a per-run copy of the OVMF variable store. */
  readonly ovmfVars?: string;
}

/**
 * The QEMU command line. -nodefaults means no NIC, no monitor, no default
 * devices: the guest has exactly the devices listed here, and none of them is
 * a network device (never user-mode networking; docs/design.md#lab-rules).
 */
export function qemuArgs(p: QemuPlan): string[] {
  const args = ['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', '-nic', 'none'];
  args.push('-accel', p.accel, '-cpu', p.accel === 'kvm' ? 'host' : 'max');
  args.push('-m', String(p.memoryMb), '-smp', String(p.cpus));
  if (p.firmware === 'uefi') {
    if (!p.ovmfVars) throw new Error('UEFI boot needs a copy of the OVMF variable store');
    args.push('-machine', 'q35');
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`);
    args.push('-drive', `if=pflash,format=raw,unit=1,file=${p.ovmfVars}`);
  } else {
    args.push('-machine', 'pc', '-boot', 'order=d');
  }
  args.push('-drive', `file=${p.iso},media=cdrom,if=ide,readonly=on`);
  args.push('-serial', `file:${p.serialLog}`);
  args.push(
    '-device',
    'virtio-serial-pci',
    '-chardev',
    `file,id=lkresult,path=${p.resultFile}`,
    '-device',
    `virtserialport,chardev=lkresult,name=${SELFTEST_PORT}`,
  );
  return args;
}

export interface BootResult {
  readonly firmware: Firmware;
  readonly ok: boolean;
  /** From starting QEMU to the self-test result. */
  readonly ms: number;
  readonly report?: SelftestReport;
  /** Why it is not ok, when it is not. */
  readonly reason?: string;
  readonly serialTail: readonly string[];
  readonly logDir: string;
  /** The longest time the serial console stayed silent (from QEMU's start to the result). */
  readonly longestSilenceMs: number;
}

const tailOf = (text: string, n: number) =>
  text
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
    .slice(-n);

/**
 * A boot whose serial console stays silent this long is stopped: the guest
 * hangs (a KVM that opens but cannot run Linux prints GRUB's "Booting …" and
 * then nothing, for ever). Measured on the 2-core build machine under TCG
 * (serial output timestamped as it arrived, full boots to the self-test
 * result, kernel argument `quiet`): the longest silent gaps were 62.5 s (BIOS)
 * and 73.6 s (UEFI), both from live-boot's last initramfs line to the login
 * prompt, while systemd starts the system without printing; the next longest
 * were GRUB loading the kernel and initrd from the CD (21.6 s BIOS, 16.4 s
 * UEFI). The limit is 180 s, about 2.4 times the longest gap: a machine half
 * as fast still passes, and a hung guest is stopped after 3 minutes instead
 * of the 10-minute timeout.
 */
export const STALL_LIMIT_MS = 180_000;

export interface BootOptions {
  readonly iso: string;
  readonly firmware: Firmware;
  readonly accel: 'kvm' | 'tcg';
  readonly timeoutMs: number;
  /** Stop when the serial console is silent this long (default STALL_LIMIT_MS). */
  readonly stallMs?: number;
  /** The QEMU binary (default qemu-system-x86_64 on PATH). */
  readonly qemu?: string;
  readonly memoryMb?: number;
  readonly expectedAssertions?: number;
  readonly logDir?: string;
  readonly progress?: Progress;
}

export async function bootIso(o: BootOptions): Promise<BootResult> {
  const logDir = o.logDir ?? (await mkdtemp(join(tmpdir(), `leakless-boot-${o.firmware}-`)));
  await mkdir(logDir, { recursive: true });
  const serialLog = join(logDir, 'serial.log');
  const resultFile = join(logDir, 'result.txt');
  let ovmfVars: string | undefined;
  if (o.firmware === 'uefi') {
    ovmfVars = join(logDir, 'OVMF_VARS.fd');
    await copyFile(OVMF_VARS, ovmfVars);
  }
  const args = qemuArgs({
    firmware: o.firmware,
    iso: o.iso,
    accel: o.accel,
    memoryMb: o.memoryMb ?? 2048,
    cpus: 2,
    serialLog,
    resultFile,
    ...(ovmfVars ? { ovmfVars } : {}),
  });
  const progress = o.progress;
  const stallMs = o.stallMs ?? STALL_LIMIT_MS;
  progress?.stage(`${o.firmware}: boot to self-test result (${o.accel})`);
  const started = Date.now();
  const qemu = execa(o.qemu ?? 'qemu-system-x86_64', args, { reject: false, stdin: 'ignore', all: true, timeout: o.timeoutMs, forceKillAfterDelay: 5000 });
  let exited = false;
  void qemu.finally(() => {
    exited = true;
  });
  const read = (f: string) => readFile(f, 'utf8').catch(() => '');
  const size = (f: string) =>
    stat(f).then(
      (s) => s.size,
      () => 0,
    );
  let report: SelftestReport | undefined;
  let seen = -1;
  let lastOutput = started;
  let longestSilenceMs = 0;
  let stalled = false;
  while (!exited) {
    report = parseResultLine(await read(resultFile));
    if (report) break;
    // any byte on the serial console or the result port is a sign of life
    const now = Date.now();
    const bytes = (await size(serialLog)) + (await size(resultFile));
    if (bytes !== seen) {
      seen = bytes;
      lastOutput = now;
      const last = tailOf(await read(serialLog), 1)[0];
      if (last) progress?.line(last);
    }
    longestSilenceMs = Math.max(longestSilenceMs, now - lastOutput);
    if (now - lastOutput > stallMs) {
      stalled = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const ms = Date.now() - started;
  if (!exited) qemu.kill('SIGTERM');
  const q = await qemu;
  report ??= parseResultLine(await read(resultFile));
  const serialTail = tailOf(await read(serialLog), 40);
  let result: BootResult;
  if (report) {
    const j = judgeReport(report, o.expectedAssertions);
    result = { firmware: o.firmware, ok: j.ok, ms, report, ...(j.reason ? { reason: j.reason } : {}), serialTail, logDir, longestSilenceMs };
  } else {
    const lastLine = serialTail.at(-1);
    const how = stalled
      ? `stopped: the serial console was silent for ${formatDuration(Date.now() - lastOutput)} (stall limit ${formatDuration(stallMs)}) under ${o.accel.toUpperCase()}; the guest hangs${lastLine ? ` after "${lastLine}"` : ' before printing anything'}`
      : q.timedOut
        ? `no result within ${formatDuration(o.timeoutMs)}`
        : `QEMU exited (${q.exitCode ?? q.signal}) before the self-test reported${q.all ? `: ${tailOf(q.all, 3).join(' | ')}` : ''}`;
    result = { firmware: o.firmware, ok: false, ms, reason: how, serialTail, logDir, longestSilenceMs };
  }
  progress?.finish(result.ok);
  return result;
}

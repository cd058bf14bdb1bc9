// `leakless boot`: boot the ISO in QEMU through its real boot path (BIOS:
// SeaBIOS → El Torito → GRUB; UEFI: OVMF → efi.img → GRUB) with NO network
// device at all, let the image run leakless-selftest, and read the result
// back over a virtio-serial port. The port is also the trigger: the image's
// leakless-selftest.service only runs when /dev/virtio-ports/leakless.selftest
// exists (or the leakless.selftest kernel argument is given), so a normal
// boot on real hardware never runs it.
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { createProgress, formatDuration, kvmUsable, type Progress } from '@leakless/debos-ts';
import { parseArgs, UsageError } from './args.js';
import { table } from './table.js';
import { installDeps, type CommandIo } from './iso.js';
import { SELFTEST_PORT } from './iso-plan.js';
import { parseResultLine, type SelftestReport } from './selftest.js';
import { safeRemove } from './iso-mounts.js';

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
 * a network device (never user-mode networking; SPEC §5 rules of the lab).
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
  args.push('-device', 'virtio-serial-pci', '-chardev', `file,id=lkresult,path=${p.resultFile}`, '-device', `virtserialport,chardev=lkresult,name=${SELFTEST_PORT}`);
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
}

/** A report counts only if every assertion the image carries was evaluated and held. */
export function judgeReport(report: SelftestReport, expected: number | undefined): { ok: boolean; reason?: string } {
  const failed = report.results.filter((r) => !r.ok);
  if (report.results.length === 0) return { ok: false, reason: 'the self-test evaluated nothing' };
  if (expected !== undefined && report.results.length !== expected) {
    return { ok: false, reason: `the self-test evaluated ${report.results.length} assertions, the image carries ${expected}` };
  }
  if (failed.length) return { ok: false, reason: `${failed.length} assertion(s) failed: ${failed.map((f) => f.id).join(', ')}` };
  return { ok: true };
}

const tailOf = (text: string, n: number) =>
  text
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
    .slice(-n);

export interface BootOptions {
  readonly iso: string;
  readonly firmware: Firmware;
  readonly accel: 'kvm' | 'tcg';
  readonly timeoutMs: number;
  readonly memoryMb?: number;
  readonly expectedAssertions?: number;
  readonly logDir?: string;
  readonly progress?: Progress;
}

export async function bootIso(o: BootOptions): Promise<BootResult> {
  const logDir = o.logDir ?? (await mkdtemp(join(tmpdir(), `leakless-boot-${o.firmware}-`)));
  const serialLog = join(logDir, 'serial.log');
  const resultFile = join(logDir, 'result.txt');
  let ovmfVars: string | undefined;
  if (o.firmware === 'uefi') {
    ovmfVars = join(logDir, 'OVMF_VARS.fd');
    await copyFile(OVMF_VARS, ovmfVars);
  }
  const args = qemuArgs({ firmware: o.firmware, iso: o.iso, accel: o.accel, memoryMb: o.memoryMb ?? 2048, cpus: 2, serialLog, resultFile, ...(ovmfVars ? { ovmfVars } : {}) });
  const progress = o.progress;
  progress?.stage(`${o.firmware}: boot to self-test result`);
  const started = Date.now();
  const qemu = execa('qemu-system-x86_64', args, { reject: false, stdin: 'ignore', all: true, timeout: o.timeoutMs, forceKillAfterDelay: 5000 });
  let exited = false;
  void qemu.finally(() => {
    exited = true;
  });
  const read = (f: string) => readFile(f, 'utf8').catch(() => '');
  let report: SelftestReport | undefined;
  while (!exited) {
    report = parseResultLine(await read(resultFile));
    if (report) break;
    const last = tailOf(await read(serialLog), 1)[0];
    if (last) progress?.line(last);
    await new Promise((r) => setTimeout(r, 500));
  }
  const ms = Date.now() - started;
  if (!exited) qemu.kill('SIGTERM');
  const q = await qemu;
  report ??= parseResultLine(await read(resultFile));
  const serialTail = tailOf(await read(serialLog), 40);
  let result: BootResult;
  if (report) {
    const j = judgeReport(report, o.expectedAssertions);
    result = { firmware: o.firmware, ok: j.ok, ms, report, ...(j.reason ? { reason: j.reason } : {}), serialTail, logDir };
  } else {
    const how = q.timedOut ? `no result within ${formatDuration(o.timeoutMs)}` : `QEMU exited (${q.exitCode ?? q.signal}) before the self-test reported${q.all ? `: ${tailOf(q.all, 3).join(' | ')}` : ''}`;
    result = { firmware: o.firmware, ok: false, ms, reason: how, serialTail, logDir };
  }
  progress?.finish(result.ok);
  return result;
}

export const BOOT_HELP = `usage: leakless boot [--iso FILE] [--firmware bios|uefi|both] [--timeout SECONDS] [--accel auto|kvm|tcg]
                     [--memory MB] [--expect N] [--json]

Boots the ISO in QEMU with no network device (-nodefaults -nic none), through
the real firmware and GRUB, once per firmware. The image runs leakless-selftest
(every runtime assertion of every module) and writes the result to a
virtio-serial port; this command reads it back and prints it.

  --iso FILE          default dist/leakless-amd64.iso
  --firmware F        bios, uefi or both (default both)
  --timeout SECONDS   per boot (default 600)
  --accel A           auto (KVM only if it can really run a guest), kvm or tcg
  --memory MB         guest memory (default 2048)
  --expect N          the number of assertions the image carries; default from
                      the manifest next to the ISO (a short report fails)
  --json              print the results as JSON

exit codes: 0 every boot passed its self-test, 1 a boot or a check failed, 2 bad input`;

export async function bootCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { iso: 'string', firmware: 'string', timeout: 'string', accel: 'string', memory: 'string', expect: 'string', json: 'boolean', 'keep-logs': 'boolean' });
  if (positionals.length) throw new UsageError(`boot takes no arguments (got "${positionals[0]}")`);
  const iso = resolve((flags.iso as string | undefined) ?? 'dist/leakless-amd64.iso');
  if (!existsSync(iso)) throw new UsageError(`--iso: ${iso} does not exist (build it with leakless iso)`);
  const fw = (flags.firmware as string | undefined) ?? 'both';
  if (!['bios', 'uefi', 'both'].includes(fw)) throw new UsageError(`--firmware must be bios, uefi or both (got "${fw}")`);
  const firmwares: Firmware[] = fw === 'both' ? ['bios', 'uefi'] : [fw as Firmware];
  const timeout = Number((flags.timeout as string | undefined) ?? '600');
  if (!Number.isInteger(timeout) || timeout < 10) throw new UsageError('--timeout must be a whole number of seconds >= 10');
  const memory = Number((flags.memory as string | undefined) ?? '2048');
  if (!Number.isInteger(memory) || memory < 512) throw new UsageError('--memory must be a whole number of MB >= 512');
  const accelFlag = (flags.accel as string | undefined) ?? 'auto';
  if (!['auto', 'kvm', 'tcg'].includes(accelFlag)) throw new UsageError(`--accel must be auto, kvm or tcg (got "${accelFlag}")`);
  let expected: number | undefined;
  if (typeof flags.expect === 'string') {
    expected = Number(flags.expect);
    if (!Number.isInteger(expected) || expected < 1) throw new UsageError('--expect must be a positive whole number');
  } else {
    const manifest = iso.replace(/\.iso$/, '.manifest.json');
    if (existsSync(manifest)) expected = (JSON.parse(await readFile(manifest, 'utf8')) as { selftest?: { assertions?: number } }).selftest?.assertions;
  }

  const missing: string[] = [];
  if ((await execa('qemu-system-x86_64', ['--version'], { reject: false })).exitCode !== 0) missing.push('qemu-system-x86');
  if (firmwares.includes('uefi') && !existsSync(OVMF_CODE)) missing.push('ovmf');
  if (missing.length) {
    if (process.getuid?.() === 0 && (await installDeps('e2e', io))) missing.length = 0;
    else {
      io.err(`leakless boot: missing ${missing.join(', ')} (apt-get install --no-install-recommends ${missing.join(' ')})`);
      return 1;
    }
  }
  const accel = accelFlag === 'auto' ? ((await kvmUsable()).usable ? 'kvm' : 'tcg') : (accelFlag as 'kvm' | 'tcg');

  const results: BootResult[] = [];
  for (const f of firmwares) {
    const progress = createProgress({ label: 'boot' });
    results.push(await bootIso({ iso, firmware: f, accel, timeoutMs: timeout * 1000, memoryMb: memory, ...(expected !== undefined ? { expectedAssertions: expected } : {}), progress }));
  }
  const ok = results.every((r) => r.ok);
  if (flags.json) {
    io.out(JSON.stringify({ iso, accel, ok, boots: results }, null, 2));
  } else {
    io.out(table(['firmware', 'result', 'checks', 'boot to result', 'guest uptime at self-test start/end'], results.map((r) => [
      r.firmware,
      r.ok ? 'passed' : 'FAILED',
      r.report ? `${r.report.passed} passed, ${r.report.failed} failed` : '-',
      formatDuration(r.ms),
      r.report?.uptime ? `${r.report.uptime.start.toFixed(0)}s / ${r.report.uptime.end.toFixed(0)}s` : '-',
    ])));
    for (const r of results.filter((x) => !x.ok)) {
      io.out(`\n${r.firmware}: ${r.reason}`);
      for (const f of r.report?.results.filter((x) => !x.ok) ?? []) io.out(`  FAILED ${f.id}: ${f.detail}`);
      if (!r.report) io.out(`last serial lines (${r.logDir}/serial.log):\n${r.serialTail.map((l) => `  | ${l}`).join('\n')}`);
    }
    io.out(`\naccelerator: ${accel}; ${ok ? 'all boots passed' : 'FAILED'}`);
  }
  if (!flags['keep-logs']) for (const r of results.filter((x) => x.ok)) await safeRemove(r.logDir);
  return ok ? 0 : 1;
}

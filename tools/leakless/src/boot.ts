// `leakless boot`: flags, prerequisites and the report around @leakless/image's bootIso.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { createProgress, formatDuration } from '@leakless/debos-ts';
import {
  ACCEL_FLAGS,
  AccelError,
  bootIso,
  chooseAccel,
  OVMF_CODE,
  probeKernelSource,
  safeRemove,
  STALL_LIMIT_MS,
  type AccelFlag,
  type BootResult,
  type Firmware,
} from '@leakless/image';
import { parseArgs, UsageError } from './args.js';
import { table } from './table.js';
import { choiceFlag, installDeps, type CommandIo } from './iso.js';

export const BOOT_HELP = `usage: leakless boot [--iso FILE] [--firmware bios|uefi|both] [--timeout SECONDS] [--stall SECONDS]
                     [--accel auto|kvm|tcg] [--cache DIR] [--memory MB] [--expect N] [--json]

Boots the ISO in QEMU with no network device (-nodefaults -nic none), through
the real firmware and GRUB, once per firmware. The image runs leakless-selftest
(every runtime assertion of every module) and writes the result to a
virtio-serial port; this command reads it back and prints it.

  --iso FILE          default dist/leakless-amd64.iso
  --firmware F        bios, uefi or both (default both)
  --timeout SECONDS   per boot (default 600)
  --stall SECONDS     stop a boot whose serial console stays silent this long
                      (default ${STALL_LIMIT_MS / 1000}: a hung guest, e.g. a KVM that cannot run Linux)
  --accel A           auto (default: KVM only if a KVM guest boots a Debian kernel), kvm or tcg
  --cache DIR         where the probe's Debian kernel is cached; default $LEAKLESS_CACHE or dist/cache
  --memory MB         guest memory (default 2048)
  --expect N          the number of assertions the image carries; default from
                      the manifest next to the ISO (a short report fails)
  --json              print the results as JSON

exit codes: 0 every boot passed its self-test, 1 a boot or a check failed, 2 bad input`;

export async function bootCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { flags, positionals } = parseArgs(argv, {
    iso: 'string',
    firmware: 'string',
    timeout: 'string',
    stall: 'string',
    accel: 'string',
    cache: 'string',
    memory: 'string',
    expect: 'string',
    json: 'boolean',
    'keep-logs': 'boolean',
  });
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
  const stall = Number((flags.stall as string | undefined) ?? String(STALL_LIMIT_MS / 1000));
  if (!Number.isInteger(stall) || stall < 5) throw new UsageError('--stall must be a whole number of seconds >= 5');
  const accelFlag = choiceFlag<AccelFlag>(flags, 'accel', ACCEL_FLAGS) ?? 'auto';
  const cacheDir = resolve((flags.cache as string | undefined) ?? process.env.LEAKLESS_CACHE ?? join('dist', 'cache'));
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
  let decision: Awaited<ReturnType<typeof chooseAccel>>;
  try {
    decision = await chooseAccel({
      accel: accelFlag,
      forDebos: false,
      kernel: probeKernelSource(cacheDir, (s) => io.err(`[accel] ${s}`)),
      progress: createProgress({ label: 'accel' }),
      note: (s) => io.err(`[accel] ${s}`),
    });
  } catch (e) {
    if (e instanceof AccelError) {
      io.err(`leakless boot: ${e.message}`);
      return 1;
    }
    throw e;
  }
  const { accel, accelReason } = decision;
  if (accelFlag !== 'auto') io.err(`[boot] accelerator: ${accel} (${accelReason})`);

  const results: BootResult[] = [];
  for (const f of firmwares) {
    const progress = createProgress({ label: 'boot' });
    results.push(
      await bootIso({
        iso,
        firmware: f,
        accel,
        timeoutMs: timeout * 1000,
        stallMs: stall * 1000,
        memoryMb: memory,
        ...(expected !== undefined ? { expectedAssertions: expected } : {}),
        progress,
      }),
    );
  }
  const ok = results.every((r) => r.ok);
  if (flags.json) {
    io.out(JSON.stringify({ iso, accel, accelReason, ok, boots: results }, null, 2));
  } else {
    io.out(
      table(
        ['firmware', 'result', 'checks', 'boot to result', 'guest uptime at self-test start/end', 'longest serial silence'],
        results.map((r) => [
          r.firmware,
          r.ok ? 'passed' : 'FAILED',
          r.report ? `${r.report.passed} passed, ${r.report.failed} failed` : '-',
          formatDuration(r.ms),
          r.report?.uptime ? `${r.report.uptime.start.toFixed(0)}s / ${r.report.uptime.end.toFixed(0)}s` : '-',
          formatDuration(r.longestSilenceMs),
        ]),
      ),
    );
    for (const r of results.filter((x) => !x.ok)) {
      io.out(`\n${r.firmware}: ${r.reason}`);
      for (const f of r.report?.results.filter((x) => !x.ok) ?? []) io.out(`  FAILED ${f.id}: ${f.detail}`);
      if (!r.report) io.out(`last serial lines (${r.logDir}/serial.log):\n${r.serialTail.map((l) => `  | ${l}`).join('\n')}`);
    }
    io.out(`\naccelerator: ${accel} (${accelReason}); ${ok ? 'all boots passed' : 'FAILED'}`);
  }
  if (!flags['keep-logs']) for (const r of results.filter((x) => x.ok)) await safeRemove(r.logDir);
  return ok ? 0 : 1;
}

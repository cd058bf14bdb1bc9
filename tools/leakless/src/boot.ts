// `leakless boot`: flags, prerequisites and the report around @leakless/image's bootIso.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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
  expectedResults,
  isoAssertions,
  type Firmware,
} from '@leakless/image';
import { parseArgs, UsageError } from './args.js';
import { table } from './table.js';
import { choiceFlag, installDeps, type CommandIo } from './iso.js';

export const BOOT_HELP = `usage: leakless boot [--iso FILE] [--firmware bios|uefi|both] [--timeout SECONDS] [--stall SECONDS]
                     [--accel auto|kvm|tcg] [--cache DIR] [--memory MB] [--expect N] [--json]
       leakless boot --lab [--fail-closed] [--iso FILE] [--firmware bios|uefi] [--accel auto|kvm|tcg]
                     [--config FILE] [--cache DIR] [--expect N] [--json]

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
  --expect N          how many results a complete self-test reports; default: the
                      assertions the ISO carries (a short report fails), without
                      the active probes (scope network) unless --lab gives them
                      their destinations
  --json              print the results as JSON

--lab boots it on the network lab instead (root, from a checkout of the
repository: it needs e2e/src/bootlab and the dev dependencies): a NIC on a
tap inside the lab's LAN namespace (never user-mode networking), DHCP and DNS
from dnsmasq, a private Tor network, the connectivity-check host and the
htpdate pools on lab addresses. Test-only settings (the private authorities,
a test CA) reach the guest through QEMU's fw_cfg only
(docs/threat-model.md#test-settings-fw-cfg). One capture on the tap from
power-on to power-off, every frame classified; the guest makes a request as
the desktop user, one from the tbb namespace and a lookup through the
DNSPort, runs its self-test and powers off. Report: dist/lab/boot-capture.{md,json}.
  --fail-closed       also restart the firewall unit, pull the cable and kill tor, each
                      with senders as the desktop user and an unnamed uid
  --config FILE       policy file the image was built from; default image-config/default.yaml

exit codes: 0 every boot passed its self-test (--lab: and nothing leaked), 1 a boot or a check failed, 2 bad input`;

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
    lab: 'boolean',
    'fail-closed': 'boolean',
    config: 'string',
  });
  if (positionals.length) throw new UsageError(`boot takes no arguments (got "${positionals[0]}")`);
  if (!flags.lab && (flags['fail-closed'] || flags.config)) throw new UsageError(`--${flags.config ? 'config' : 'fail-closed'} needs --lab`);
  if (flags.lab && (flags.stall || flags.memory || flags.timeout))
    throw new UsageError('--lab sets its own time limits and memory (--stall, --timeout, --memory are for the plain boot)');
  const iso = resolve((flags.iso as string | undefined) ?? 'dist/leakless-amd64.iso');
  if (!existsSync(iso)) throw new UsageError(`--iso: ${iso} does not exist (build it with leakless iso)`);
  const fw = (flags.firmware as string | undefined) ?? (flags.lab ? 'bios' : 'both');
  if (!['bios', 'uefi', 'both'].includes(fw)) throw new UsageError(`--firmware must be bios, uefi or both (got "${fw}")`);
  if (flags.lab && fw === 'both') throw new UsageError('--firmware with --lab: bios or uefi (one networked boot)');
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
  }

  const missing: string[] = [];
  if ((await execa('qemu-system-x86_64', ['--version'], { reject: false })).exitCode !== 0) missing.push('qemu-system-x86');
  if (firmwares.includes('uefi') && !existsSync(OVMF_CODE)) missing.push('ovmf');
  if (expected === undefined && (await execa('xorriso', ['-version'], { reject: false })).exitCode !== 0) missing.push('xorriso');
  if (expected === undefined && (await execa('unsquashfs', ['-help'], { reject: false })).exitCode !== 0) missing.push('squashfs-tools');
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
  // a complete report has one result per assertion the image carries, for the scopes this boot can
  // evaluate: without a network the active probes are left out, a lab boot runs them all
  if (expected === undefined) {
    try {
      expected = expectedResults(await isoAssertions(iso), flags.lab === true);
    } catch (e) {
      io.err(`leakless boot: cannot tell how many results a complete self-test has: ${(e as Error).message} (--expect N)`);
      return 1;
    }
  }
  if (flags.lab) {
    const config = resolve((flags.config as string | undefined) ?? 'image-config/default.yaml');
    return labBoot(
      { iso, firmware: firmwares[0]!, accel, accelReason, config, failClosed: flags['fail-closed'] === true, json: flags.json === true, expected },
      io,
    );
  }

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

/** The lab side lives in the checkout (e2e/src/bootlab): the CLI finds it next to itself and loads it with Vite's module runner. */
const LAB_ENTRY = fileURLToPath(new URL('../../../e2e/src/bootlab/cli.ts', import.meta.url));

interface LabBootFlags {
  readonly iso: string;
  readonly firmware: Firmware;
  readonly accel: 'kvm' | 'tcg';
  readonly accelReason: string;
  readonly config: string;
  readonly failClosed: boolean;
  readonly json: boolean;
  readonly expected: number | undefined;
}

interface LabModule {
  runLabBoot(o: {
    iso: string;
    policyFile: string;
    firmware: Firmware;
    accel: 'kvm' | 'tcg';
    expectedAssertions?: number;
    failClosed: boolean;
    outDir: string;
    log: (line: string) => void;
  }): Promise<{
    ok: boolean;
    scenarios: readonly { name: string; ok: boolean; detail: readonly string[]; packets: number; flows: number; seconds: number }[];
    figures: Record<string, string>;
    markdown: string;
    json: string;
  }>;
}

async function labBoot(f: LabBootFlags, io: CommandIo): Promise<number> {
  if (process.getuid?.() !== 0) {
    io.err('leakless boot --lab: run as root (it makes network namespaces, a tap and captures)');
    return 1;
  }
  if (!existsSync(f.config)) throw new UsageError(`--config: ${f.config} does not exist`);
  if (!existsSync(LAB_ENTRY)) {
    io.err(`leakless boot --lab: the lab is not here (${LAB_ENTRY}); it runs from a checkout of the repository`);
    return 1;
  }
  let vite: typeof import('vite');
  try {
    vite = await import('vite');
  } catch {
    io.err('leakless boot --lab: needs the repository’s dev dependencies (npm ci): vite loads the lab');
    return 1;
  }
  const { module } = await vite.runnerImport<LabModule>(LAB_ENTRY, {
    configFile: false,
    logLevel: 'error',
    resolve: { conditions: ['source', ...vite.defaultServerConditions] },
    ssr: { resolve: { conditions: ['source', ...vite.defaultServerConditions], externalConditions: ['source'] } },
  });
  io.err(`[boot --lab] ${f.firmware} under ${f.accel} (${f.accelReason})`);
  const r = await module.runLabBoot({
    iso: f.iso,
    policyFile: f.config,
    firmware: f.firmware,
    accel: f.accel,
    ...(f.expected !== undefined ? { expectedAssertions: f.expected } : {}),
    failClosed: f.failClosed,
    outDir: resolve('dist', 'lab', 'boot'),
    log: (l) => io.err(`[boot --lab] ${l}`),
  });
  if (f.json) io.out(JSON.stringify({ iso: f.iso, accel: f.accel, accelReason: f.accelReason, ...r }, null, 2));
  else {
    io.out(
      table(
        ['scenario', 'result', 'packets', 'flows', 'time'],
        r.scenarios.map((s) => [s.name, s.ok ? 'passed' : 'FAILED', String(s.packets), String(s.flows), `${s.seconds.toFixed(0)}s`]),
      ),
    );
    for (const s of r.scenarios.filter((x) => !x.ok))
      io.out(
        `\n${s.name}:\n${s.detail
          .filter((d) => d.startsWith('PROBLEM'))
          .map((d) => `  ${d}`)
          .join('\n')}`,
      );
    io.out(
      `\n${Object.entries(r.figures)
        .map(([k, v]) => `${k}: ${v}`)
        .join('\n')}\nreport: ${r.markdown}`,
    );
  }
  return r.ok ? 0 : 1;
}

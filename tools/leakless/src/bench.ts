// `leakless bench`: flags, root and build tools around @leakless/image's runBench.
import { resolve } from 'node:path';
import { formatDuration } from '@leakless/debos-ts';
import { runBench } from '@leakless/image';
import { parseArgs, UsageError } from './args.js';
import { table } from './table.js';
import { BUILD_FLAGS, buildChoices, CLI_BIN, installDeps, loadAssembly, requireRoot, type CommandIo } from './iso.js';

export const BENCH_HELP = `usage: leakless bench [--config FILE] [--out DIR] [--live-build] [--accel auto|kvm|tcg]
                      [--fakemachine auto|on|off] [--json]

Measures and prints a report, also written to DIR/report.json:
  - emit of all modules in a cold process;
  - two cold ISO builds (base rebuilt): time per stage and both sha256s;
  - a rebuild after a config-only change (image.hostname), base from cache;
  - the ISO size; boot to self-test result under QEMU, BIOS and UEFI;
  - with --live-build: the same package set built by Debian's live-build.
Runs as root; takes 15-25 minutes on 2 cores without --live-build.

  --config FILE   policy file; default image-config/default.yaml
  --out DIR       where the bench builds go; default dist/bench
  --live-build    also build with live-build from the host's apt mirrors (installs it, adds ~7 minutes)
  --accel A       auto (default: KVM only if a KVM guest boots a Debian kernel), kvm or tcg
  --fakemachine F debos in fakemachine: auto (default), on or off
  --json          print the report as JSON`;

export async function benchCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { flags, positionals } = parseArgs(argv, {
    config: 'string',
    out: 'string',
    'live-build': 'boolean',
    ...BUILD_FLAGS,
  });
  if (positionals.length) throw new UsageError(`bench takes no arguments (got "${positionals[0]}")`);
  const { accel, fakemachine } = buildChoices(flags);
  const notRoot = requireRoot('leakless bench');
  if (notRoot) {
    io.err(`leakless: ${notRoot}`);
    return 2;
  }
  const assembly = await loadAssembly(flags.config as string | undefined, io);
  if (!assembly) return 2;
  if (!(await installDeps('e2e', io))) return 1;
  const report = await runBench(assembly, {
    out: resolve((flags.out as string | undefined) ?? 'dist/bench'),
    emitCommand: [process.execPath, CLI_BIN, 'emit'],
    liveBuild: Boolean(flags['live-build']),
    ...(accel ? { accel } : {}),
    ...(fakemachine ? { fakemachine } : {}),
    note: (s) => io.err(`[bench] ${s}`),
  });
  if (flags.json) io.out(JSON.stringify(report, null, 2));
  else {
    const s = report.coldBuild.spec;
    const {
      emit: { coldProcessMs: emitMs },
      coldBuild: a,
      secondColdBuild: b,
      configOnlyRebuild: c,
      boots,
      machine: { accel },
    } = report;
    const lb = report.liveBuild;
    io.out(
      table(
        ['measure', 'value'],
        [
          ['emit, all modules, cold process', formatDuration(emitMs)],
          ['cold build total', formatDuration(a.totalMs)],
          ...Object.entries(s).map(([k, v]) => [`  ${k}`, formatDuration(v)]),
          ['second cold build total', formatDuration(b.totalMs)],
          ['config-only rebuild (base cached)', `${formatDuration(c.totalMs)}${c.baseCached ? '' : ' (base was NOT cached)'}`],
          ['ISO size', `${(a.isoBytes / 1e6).toFixed(1)} MB (${a.isoBytes} bytes)`],
          ...boots.map((x) => [
            `boot to self-test result, ${x.firmware} (${accel})`,
            `${formatDuration(x.bootToResultMs)} ${x.ok ? 'passed' : `FAILED: ${x.reason}`}; longest serial silence ${formatDuration(x.longestSilenceMs)}`,
          ]),
          ['accelerator', `${accel}: ${report.machine.accelReason}`],
          ['debos mode', `${report.machine.debosMode}: ${report.machine.debosReason}`],
          ['sha256 build 1', a.sha256],
          ['sha256 build 2', b.sha256],
          ['reproducible', report.reproducible ? 'yes' : 'NO'],
          ...(lb ? [['live-build (same packages)', 'error' in lb ? lb.error : `${formatDuration(lb.ms)}, ${(lb.bytes / 1e6).toFixed(1)} MB`]] : []),
        ],
      ),
    );
    io.out('\nstages of the cold build:');
    io.out(
      table(
        ['layer', 'stage', 'time'],
        report.stages.map((x) => [x.group, x.name, formatDuration(x.ms)]),
      ),
    );
  }
  return report.reproducible && report.boots.every((x) => x.ok) ? 0 : 1;
}

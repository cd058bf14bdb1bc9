// `leakless bench` (SPEC §9): the numbers a release engineer quotes. Two cold
// builds (stage times, and whether both give the same sha256), a rebuild after
// a config-only change (the cached base is reused), the ISO size, BIOS and
// UEFI boot-to-self-test times, emit of all modules in a cold process, and
// optionally the same package set built with Debian's live-build.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { assemble, parsePolicy, type Assembly, type PolicyDocument } from '@leakless/policy';
import { formatDuration, kvmUsable, type StageTiming } from '@leakless/debos-ts';
import { parseArgs, UsageError } from './args.js';
import { allModules } from './modules.js';
import { table } from './table.js';
import { buildIso, type IsoBuildResult } from './iso-build.js';
import { installDeps, loadAssembly, requireRoot, type CommandIo } from './iso.js';
import { bootIso, type BootResult } from './boot.js';
import { planImage } from './iso-plan.js';
import { createProgress } from '@leakless/debos-ts';

export const BENCH_HELP = `usage: leakless bench [--config FILE] [--out DIR] [--live-build] [--json]

Measures (SPEC §9) and prints a report, also written to DIR/report.json:
  - emit of all modules in a cold process;
  - two cold ISO builds (base rebuilt): time per stage and both sha256s;
  - a rebuild after a config-only change (image.hostname), base from cache;
  - the ISO size; boot to self-test result under QEMU, BIOS and UEFI;
  - with --live-build: the same package set built by Debian's live-build.
Runs as root; takes 15-25 minutes on 2 cores without --live-build.

  --config FILE   policy file; default image-config/default.yaml
  --out DIR       where the bench builds go; default dist/bench
  --live-build    also build with live-build (installs it, adds ~7 minutes)
  --json          print the report as JSON`;

const here = dirname(fileURLToPath(import.meta.url));
const CLI = join(here, '..', 'bin', 'leakless.js');

interface BuildFigures {
  readonly totalMs: number;
  readonly baseCached: boolean;
  readonly stages: { group: string; name: string; ms: number }[];
  readonly sha256: string;
  readonly isoBytes: number;
}

function figures(r: IsoBuildResult): BuildFigures {
  const tag = (group: string, s: readonly StageTiming[]) => s.map((x) => ({ group, name: x.name, ms: x.ms }));
  return {
    totalMs: r.totalMs,
    baseCached: r.base.cached,
    stages: [...tag('base', r.base.stages), ...tag('image', r.image.stages), ...tag('verify', r.verify.stages)],
    sha256: r.manifest.iso.sha256,
    isoBytes: r.manifest.iso.bytes,
  };
}

/** SPEC §9's categories from the recipe stages. */
export function specStages(f: BuildFigures): Record<string, number> {
  const sum = (pred: (s: { group: string; name: string }) => boolean) => f.stages.filter(pred).reduce((a, s) => a + s.ms, 0);
  return {
    bootstrap: sum((s) => s.group === 'base' && (s.name === 'bootstrap' || s.name === 'users')),
    packages: sum((s) => s.group === 'base' && (s.name === 'packages' || s.name === 'cleanup' || s.name === 'export')),
    includes: sum((s) => s.group === 'image' && ['includes', 'image-files', 'units'].includes(s.name)),
    squashfs: sum((s) => s.name === 'squashfs' || s.name === 'squashfs-modules'),
    iso: sum((s) => s.group === 'image' && (s.name === 'stage' || s.name === 'iso')),
    verify: sum((s) => s.group === 'verify'),
  };
}

function withHostname(a: Assembly, hostname: string): Assembly {
  const doc = structuredClone(a.policy.document) as PolicyDocument;
  (doc.image as { hostname: string }).hostname = hostname;
  const r = parsePolicy(doc);
  if (!r.ok) throw new Error(`bench: the modified policy is invalid: ${JSON.stringify(r.issues[0])}`);
  return assemble(r.policy, allModules);
}

export async function liveBuild(a: Assembly, dir: string): Promise<{ ms: number; bytes: number } | { error: string }> {
  const r0 = await execa('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'live-build'], { reject: false, all: true, env: { DEBIAN_FRONTEND: 'noninteractive' } });
  if (r0.exitCode !== 0) return { error: `installing live-build failed: ${(r0.all ?? '').split('\n').slice(-3).join(' | ')}` };
  const plan = planImage(a);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'config', 'package-lists'), { recursive: true });
  const started = Date.now();
  const cfg = await execa(
    'lb',
    ['config', '--distribution', plan.suite, '--archive-areas', 'main', '--debootstrap-options', '--variant=minbase', '--apt-recommends', 'false', '--apt-indices', 'false',
      '--firmware-chroot', 'false', '--memtest', 'none', '--binary-images', 'iso-hybrid', '--bootloaders', 'grub-pc grub-efi', '--bootappend-live', 'boot=live quiet',
      '--chroot-squashfs-compression-type', 'zstd', '--cache', 'false',
      // live-build defaults to security.debian.org; the Debian mirrors serve the same suite
      '--mirror-bootstrap', 'http://deb.debian.org/debian/', '--mirror-chroot-security', 'http://deb.debian.org/debian-security/',
      '--mirror-binary-security', 'http://deb.debian.org/debian-security/'],
    { cwd: dir, reject: false, all: true, env: { SOURCE_DATE_EPOCH: String(plan.sourceDateEpoch) } },
  );
  if (cfg.exitCode !== 0) return { error: `lb config failed: ${(cfg.all ?? '').split('\n').slice(-3).join(' | ')}` };
  // live-build brings the kernel and live-boot itself
  const pkgs = plan.packages.filter((p) => !['linux-image-amd64', 'live-boot'].includes(p));
  await writeFile(join(dir, 'config', 'package-lists', 'leakless.list.chroot'), pkgs.join('\n') + '\n');
  const b = await execa('lb', ['build'], { cwd: dir, reject: false, all: true, env: { SOURCE_DATE_EPOCH: String(plan.sourceDateEpoch) } });
  await writeFile(join(dir, 'build.log'), b.all ?? '');
  if (b.exitCode !== 0) return { error: `lb build failed (log: ${join(dir, 'build.log')})` };
  const iso = (await execa('sh', ['-c', 'ls *.iso'], { cwd: dir, reject: false })).stdout.split('\n')[0];
  const bytes = iso ? (await execa('stat', ['-c', '%s', join(dir, iso)])).stdout : '0';
  return { ms: Date.now() - started, bytes: Number(bytes) };
}

export async function benchCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { config: 'string', out: 'string', 'live-build': 'boolean', json: 'boolean' });
  if (positionals.length) throw new UsageError(`bench takes no arguments (got "${positionals[0]}")`);
  const notRoot = requireRoot('leakless bench');
  if (notRoot) {
    io.err(`leakless: ${notRoot}`);
    return 2;
  }
  const assembly = await loadAssembly(flags.config as string | undefined, io);
  if (!assembly) return 2;
  if (!(await installDeps('e2e', io))) return 1;
  const out = resolve((flags.out as string | undefined) ?? 'dist/bench');
  const cacheDir = join(out, 'cache');
  const note = (s: string) => io.err(`[bench] ${s}`);
  const build = (outDir: string, a: Assembly, fresh: boolean) =>
    buildIso(a, { outDir, cacheDir, workRoot: join(out, 'work'), freshBase: fresh, note: (s) => note(s) });

  // emit of all modules in a cold process (node start, policy load, every emit, tarball)
  const emitDir = await mkdtemp(join(tmpdir(), 'leakless-bench-emit-'));
  const t0 = Date.now();
  const emit = await execa('node', [CLI, 'emit', '--out', join(emitDir, 'tree'), '--tar', join(emitDir, 'x.tar')], { reject: false });
  const emitMs = Date.now() - t0;
  await rm(emitDir, { recursive: true, force: true });
  if (emit.exitCode !== 0) note(`emit failed: ${emit.stderr}`);

  note('cold build 1/2');
  const a = figures(await build(join(out, 'a'), assembly, true));
  note('cold build 2/2');
  const b = figures(await build(join(out, 'b'), assembly, true));
  note('rebuild after a config-only change (image.hostname)');
  const c = figures(await build(join(out, 'c'), withHostname(assembly, `${assembly.policy.document.image.hostname}-bench`), false));

  const accel = (await kvmUsable()).usable ? 'kvm' : 'tcg';
  const expected = planImage(assembly).selftest.assertions.length;
  const boots: BootResult[] = [];
  for (const firmware of ['bios', 'uefi'] as const) {
    boots.push(await bootIso({ iso: join(out, 'a', 'leakless-amd64.iso'), firmware, accel, timeoutMs: 600_000, expectedAssertions: expected, progress: createProgress({ label: 'boot' }) }));
  }
  const lb = flags['live-build'] ? await liveBuild(assembly, join(out, 'live-build')) : undefined;

  const report = {
    machine: { cpus: (await readFile('/proc/cpuinfo', 'utf8')).split('\n').filter((l) => l.startsWith('processor')).length, accel },
    emit: { coldProcessMs: emitMs, ok: emit.exitCode === 0 },
    coldBuild: { ...a, spec: specStages(a) },
    secondColdBuild: { totalMs: b.totalMs, sha256: b.sha256 },
    reproducible: a.sha256 === b.sha256,
    configOnlyRebuild: { totalMs: c.totalMs, baseCached: c.baseCached, spec: specStages(c) },
    isoBytes: a.isoBytes,
    boots: boots.map((x) => ({ firmware: x.firmware, ok: x.ok, bootToResultMs: x.ms, guestUptime: x.report?.uptime, passed: x.report?.passed, failed: x.report?.failed, reason: x.reason })),
    ...(lb ? { liveBuild: lb } : {}),
  };
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  if (flags.json) io.out(JSON.stringify(report, null, 2));
  else {
    const s = report.coldBuild.spec;
    io.out(table(['measure', 'value'], [
      ['emit, all modules, cold process', formatDuration(emitMs)],
      ['cold build total', formatDuration(a.totalMs)],
      ...Object.entries(s).map(([k, v]) => [`  ${k}`, formatDuration(v)]),
      ['second cold build total', formatDuration(b.totalMs)],
      ['config-only rebuild (base cached)', `${formatDuration(c.totalMs)}${c.baseCached ? '' : ' (base was NOT cached)'}`],
      ['ISO size', `${(a.isoBytes / 1e6).toFixed(1)} MB (${a.isoBytes} bytes)`],
      ...boots.map((x) => [`boot to self-test result, ${x.firmware} (${accel})`, `${formatDuration(x.ms)} ${x.ok ? 'passed' : `FAILED: ${x.reason}`}`]),
      ['sha256 build 1', a.sha256],
      ['sha256 build 2', b.sha256],
      ['reproducible', report.reproducible ? 'yes' : 'NO'],
      ...(lb ? [['live-build (same packages)', 'error' in lb ? lb.error : `${formatDuration(lb.ms)}, ${(lb.bytes / 1e6).toFixed(1)} MB`]] : []),
    ]));
    io.out('\nstages of the cold build:');
    io.out(table(['layer', 'stage', 'time'], a.stages.map((x) => [x.group, x.name, formatDuration(x.ms)])));
  }
  return report.reproducible && boots.every((x) => x.ok) ? 0 : 1;
}

// The benchmarks (docs/design.md#benchmarks): the numbers a release engineer quotes. Two cold
// builds (stage times, and whether both give the same sha256), a rebuild after
// a config-only change (the cached base is reused), the ISO size, BIOS and
// UEFI boot-to-self-test times, emit of all modules in a cold process, and
// optionally the same package set built with Debian's live-build.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { assemble, parsePolicy, type Assembly, type PolicyDocument } from '@leakless/policy';
import type { StageTiming } from '@leakless/debos-ts';
import { allModules } from '@leakless/crosscheck';
import type { AccelFlag, FakemachineFlag } from './accel.js';
import { mirrorFor, parseSources, resolveSources, SourcesError, type AptSources } from './sources.js';
import { buildIso, type IsoBuildResult } from './iso-build.js';
import { bootIso, type BootResult } from './boot.js';
import { planImage } from './iso-plan.js';
import { expectedResults } from './iso-assertions.js';
import { createProgress } from '@leakless/debos-ts';

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

/** The benchmark's stage categories (docs/design.md#benchmarks) from the recipe stages. */
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

// a name below the policy's: the image.hostname rule admits only names NetworkManager never sends (docs/threat-model.md#dhcp-hostname)
function withHostname(a: Assembly, hostname: string): Assembly {
  const doc = structuredClone(a.policy.document) as PolicyDocument;
  (doc.image as { hostname: string }).hostname = hostname;
  const r = parsePolicy(doc);
  if (!r.ok) throw new Error(`bench: the modified policy is invalid: ${JSON.stringify(r.issues[0])}`);
  return assemble(r.policy, allModules);
}

/**
 * `lb config` arguments for the same package set, every mirror live-build
 * knows (bootstrap, chroot, binary, debian-installer, their "parent" twins
 * and both security mirrors) taken from the host's apt sources. live-build's
 * built-in defaults (deb.debian.org, security.debian.org) are never left in:
 * on a machine that reaches Debian only through its configured mirror they
 * fail (security.debian.org answers 400 there), and elsewhere they would be
 * a package source nobody chose. Suites the host does not carry
 * (-security, -updates) are switched off rather than fetched from elsewhere.
 */
export function liveBuildConfig(suite: string, sources: AptSources): string[] {
  const entries = parseSources(sources);
  const main = mirrorFor(entries, suite);
  if (!main) throw new SourcesError(`live-build: the apt sources (${sources.name}) name no mirror for ${suite}`);
  const security = mirrorFor(entries, `${suite}-security`);
  const updates = mirrorFor(entries, `${suite}-updates`);
  const sec = security ?? main;
  return [
    'config',
    '--distribution',
    suite,
    '--archive-areas',
    'main',
    '--debootstrap-options',
    '--variant=minbase',
    '--apt-recommends',
    'false',
    '--apt-indices',
    'false',
    '--firmware-chroot',
    'false',
    '--memtest',
    'none',
    '--binary-images',
    'iso-hybrid',
    '--bootloaders',
    'grub-pc grub-efi',
    '--bootappend-live',
    'boot=live quiet',
    '--chroot-squashfs-compression-type',
    'zstd',
    '--cache',
    'false',
    // live-build fetches -updates from the chroot mirror: on only when the host's main mirror carries it
    '--security',
    security ? 'true' : 'false',
    '--updates',
    updates === main ? 'true' : 'false',
    '--mirror-bootstrap',
    main,
    '--parent-mirror-bootstrap',
    main,
    '--mirror-chroot',
    main,
    '--parent-mirror-chroot',
    main,
    '--mirror-binary',
    main,
    '--parent-mirror-binary',
    main,
    '--mirror-debian-installer',
    main,
    '--parent-mirror-debian-installer',
    main,
    '--mirror-chroot-security',
    sec,
    '--parent-mirror-chroot-security',
    sec,
    '--mirror-binary-security',
    sec,
    '--parent-mirror-binary-security',
    sec,
  ];
}

const lastLines = (s: string | undefined) =>
  (s ?? '')
    .split('\n')
    .filter((l) => l.trim())
    .slice(-3)
    .join(' | ');

export async function liveBuild(a: Assembly, dir: string, sources: AptSources): Promise<{ ms: number; bytes: number } | { error: string }> {
  const plan = planImage(a);
  let args: string[];
  try {
    args = liveBuildConfig(plan.suite, sources);
  } catch (e) {
    return { error: (e as Error).message };
  }
  const r0 = await execa('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'live-build'], {
    reject: false,
    all: true,
    env: { DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r0.exitCode !== 0) return { error: `installing live-build failed: ${lastLines(r0.all)}` };
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'config', 'package-lists'), { recursive: true });
  const started = Date.now();
  const cfg = await execa('lb', args, { cwd: dir, reject: false, all: true, env: { SOURCE_DATE_EPOCH: String(plan.sourceDateEpoch) } });
  if (cfg.exitCode !== 0) return { error: `lb config failed: ${lastLines(cfg.all)}` };
  // live-build brings the kernel and live-boot itself
  const pkgs = plan.packages.filter((p) => !['linux-image-amd64', 'live-boot'].includes(p));
  await writeFile(join(dir, 'config', 'package-lists', 'leakless.list.chroot'), pkgs.join('\n') + '\n');
  const b = await execa('lb', ['build'], { cwd: dir, reject: false, all: true, env: { SOURCE_DATE_EPOCH: String(plan.sourceDateEpoch) } });
  await writeFile(join(dir, 'build.log'), b.all ?? '');
  if (b.exitCode !== 0) return { error: `lb build failed: ${lastLines(b.all)} (log: ${join(dir, 'build.log')})` };
  const iso = (await execa('sh', ['-c', 'ls *.iso'], { cwd: dir, reject: false })).stdout.split('\n')[0];
  const bytes = iso ? (await execa('stat', ['-c', '%s', join(dir, iso)])).stdout : '0';
  return { ms: Date.now() - started, bytes: Number(bytes) };
}

/**
 * How many results a bench boot must report: the bench boots have no network
 * (bootIso), so the self-test leaves out the active probes (scope network),
 * counted as `leakless boot` counts them. Every assertion of the image was
 * asked for before, so each bench boot was judged failed (132 results for 138
 * assertions) however it went.
 */
export function benchExpectedResults(assembly: Assembly): number {
  return expectedResults(planImage(assembly).selftest, false);
}

export interface BenchOptions {
  /** Where the bench builds go. */
  readonly out: string;
  /** A command line that emits every module in a cold process into `--out DIR --tar FILE` (the CLI). */
  readonly emitCommand: readonly string[];
  readonly liveBuild: boolean;
  readonly accel?: AccelFlag;
  readonly fakemachine?: FakemachineFlag;
  readonly note: (s: string) => void;
}

export type BenchReport = Awaited<ReturnType<typeof runBench>>;

/** Every benchmark measurement (docs/design.md#benchmarks); also written to OUT/report.json. */
export async function runBench(assembly: Assembly, o: BenchOptions) {
  const { out, note } = o;
  const cacheDir = join(out, 'cache');
  const build = (outDir: string, a: Assembly, fresh: boolean) =>
    buildIso(a, {
      outDir,
      cacheDir,
      workRoot: join(out, 'work'),
      freshBase: fresh,
      note: (s) => note(s),
      ...(o.accel ? { accel: o.accel } : {}),
      ...(o.fakemachine ? { fakemachine: o.fakemachine } : {}),
    });

  // emit of all modules in a cold process (node start, policy load, every emit, tarball)
  const emitDir = await mkdtemp(join(tmpdir(), 'leakless-bench-emit-'));
  const t0 = Date.now();
  const [emitBin, ...emitArgs] = o.emitCommand;
  const emit = await execa(emitBin!, [...emitArgs, '--out', join(emitDir, 'tree'), '--tar', join(emitDir, 'x.tar')], { reject: false });
  const emitMs = Date.now() - t0;
  await rm(emitDir, { recursive: true, force: true });
  if (emit.exitCode !== 0) note(`emit failed: ${emit.stderr}`);

  note('cold build 1/2');
  const first = await build(join(out, 'a'), assembly, true);
  const a = figures(first);
  note('cold build 2/2');
  const b = figures(await build(join(out, 'b'), assembly, true));
  note('rebuild after a config-only change (image.hostname)');
  const c = figures(await build(join(out, 'c'), withHostname(assembly, `bench.${assembly.policy.document.image.hostname}`), false));

  // the builds decided it (probed once per process)
  const { accel, accelReason, debos } = first.accel;
  const expected = benchExpectedResults(assembly);
  const boots: BootResult[] = [];
  for (const firmware of ['bios', 'uefi'] as const) {
    boots.push(
      await bootIso({
        iso: join(out, 'a', 'leakless-amd64.iso'),
        firmware,
        accel,
        timeoutMs: 600_000,
        expectedAssertions: expected,
        progress: createProgress({ label: 'boot' }),
      }),
    );
  }
  const lb = o.liveBuild ? await liveBuild(assembly, join(out, 'live-build'), await resolveSources(undefined, planImage(assembly).suite)) : undefined;

  const report = {
    machine: {
      cpus: (await readFile('/proc/cpuinfo', 'utf8')).split('\n').filter((l) => l.startsWith('processor')).length,
      accel,
      accelReason,
      debosMode: debos.mode,
      debosReason: debos.reason,
    },
    emit: { coldProcessMs: emitMs, ok: emit.exitCode === 0 },
    coldBuild: { ...a, spec: specStages(a) },
    secondColdBuild: { totalMs: b.totalMs, sha256: b.sha256 },
    reproducible: a.sha256 === b.sha256,
    configOnlyRebuild: { totalMs: c.totalMs, baseCached: c.baseCached, spec: specStages(c) },
    isoBytes: a.isoBytes,
    boots: boots.map((x) => ({
      firmware: x.firmware,
      ok: x.ok,
      bootToResultMs: x.ms,
      longestSilenceMs: x.longestSilenceMs,
      guestUptime: x.report?.uptime,
      passed: x.report?.passed,
      failed: x.report?.failed,
      reason: x.reason,
    })),
    ...(lb ? { liveBuild: lb } : {}),
  };
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  return { ...report, stages: a.stages };
}

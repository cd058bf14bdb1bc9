// The ISO end to end (npm run e2e): `leakless iso` builds the image from the
// default policy with a cold base, `leakless boot` boots it under BIOS and
// UEFI (QEMU, no network) and the image's self-test passes (and says whether
// Secure Boot was on); the base goes through a turbo remote cache, where one
// byte of it is then changed; a second builder that differs in everything
// that must not matter refuses that entry, rebuilds cold and gets the same
// sha256 (diffoscope's report kept when not); a third builder with an empty
// local cache gets the base from the remote cache; an image with one planted fault (a sysctl
// changed after emit) is caught by the rootfs verification and fails its
// self-test in the booted system.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { join } from 'node:path';
import { assemble, readPolicyFile, type Tree } from '@leakless/policy';
import { allModules } from '@leakless/crosscheck';
import { buildIso, expectedResults, ISO_NAME, isoAssertions, planImage, STALL_LIMIT_MS } from '@leakless/image';
import { needRoot, needTool, skipUnless, type Missing } from '@leakless/testing';

import { cache, cli, installHint, leakless, manifestOf, printFigures, repo, sharedIso, work } from './shared.js';
import { startCacheServer, type CacheServer } from './cache-server.js';
import { diffoscope } from './diffoscope.js';

const needFile = (path: string, what: string): Missing => (existsSync(path) ? undefined : `${what} (${path}) is missing`);
const skip = skipUnless(
  'the ISO suite',
  needRoot('it mounts, chroots, runs debos and loop-mounts images'),
  needTool('debos', ['--help'], installHint),
  needTool('mmdebstrap', ['--version'], installHint),
  needTool('mksquashfs', ['-version'], installHint),
  needTool('xorriso', ['-version'], installHint),
  needTool('qemu-system-x86_64', ['--version'], installHint),
  needFile('/usr/share/OVMF/OVMF_CODE_4M.fd', 'OVMF'),
  needFile(join(repo, 'tools', 'leakless', 'dist', 'main.js'), 'a build of tools/leakless (npx tsc -b tsconfig.build.json)'),
);

interface BootJson {
  ok: boolean;
  accel: string;
  accelReason: string;
  boots: {
    firmware: string;
    ok: boolean;
    ms: number;
    longestSilenceMs: number;
    reason?: string;
    serialTail: string[];
    report?: { uptime?: { start: number; end: number }; secureBoot?: string; results: { id: string; ok: boolean; detail: string }[] };
  }[];
}
const figures: Record<string, string> = {};

async function boot(iso: string, firmware: 'bios' | 'uefi', extra: string[] = []): Promise<{ exitCode: number | undefined; json: BootJson }> {
  const r = await leakless(['boot', '--iso', iso, '--firmware', firmware, '--json', '--timeout', '600', '--cache', cache, ...extra]);
  return { exitCode: r.exitCode, json: JSON.parse(r.stdout) as BootJson };
}

/**
 * `leakless iso` as a builder of its own: the remote cache of this run,
 * optionally another host name (UTS namespace), umask and environment.
 */
async function builder(
  args: readonly string[],
  o: { hostname?: string; umask?: string; env?: Record<string, string> } = {},
): Promise<{ exitCode: number | undefined; report: Record<string, any> }> {
  if (!server) throw new Error('the cache server is not running');
  const argv = [process.execPath, cli, 'iso', ...args, '--remote-cache', server.url, '--remote-cache-netns', server.netns, '--no-install', '--json'];
  const script = `${o.hostname ? `hostname ${o.hostname} && ` : ''}${o.umask ? `umask ${o.umask} && ` : ''}exec "$@"`;
  const r = await execa('unshare', ['--uts', 'sh', '-c', script, 'sh', ...argv], {
    cwd: repo,
    reject: false,
    stderr: 'inherit',
    env: { ...server.env, ...o.env },
  });
  return { exitCode: r.exitCode, report: JSON.parse(r.stdout || '{}') as Record<string, any> };
}
let server: CacheServer | undefined;

describe.skipIf(skip).sequential('the live ISO', () => {
  const a = join(work, 'a');
  const b = join(work, 'b');
  afterAll(async () => {
    await server?.stop();
  });

  it('leakless iso builds it cold (base rebuilt) and verifies the built root filesystem', async () => {
    const shared = await sharedIso();
    expect(shared.dir).toBe(a);
    figures['cold build'] = `${(shared.buildMs / 1000).toFixed(0)} s`;
    const report = shared.report as {
      ok: boolean;
      accel: { accel: string; accelReason: string; debos: { mode: string; reason: string } };
      base: { cached: boolean };
      verify: { results: { id: string; ok: boolean; detail: string }[] };
    };
    figures['accelerator and debos mode (auto)'] =
      `${report.accel.accel} (${report.accel.accelReason}); debos ${report.accel.debos.mode} (${report.accel.debos.reason})`;
    expect(report.ok).toBe(true);
    expect(report.base.cached).toBe(false);
    expect(report.verify.results.filter((x) => !x.ok)).toEqual([]);
    for (const id of ['image.users', 'image.files', 'image.units-enabled', 'image.unit-ordering', 'image.no-host-leftovers', 'image.selftest']) {
      expect(report.verify.results.find((x) => x.id === id)?.ok, id).toBe(true);
    }
    const m = manifestOf(a);
    expect(m.bootPlatforms).toEqual(['BIOS', 'UEFI']);
    expect(m.iso.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.packages.length).toBeGreaterThan(100);
    figures['ISO size'] = `${(m.iso.bytes / 1e6).toFixed(1)} MB`;
    figures['sha256 build 1'] = m.iso.sha256;
  });

  for (const firmware of ['bios', 'uefi'] as const) {
    it(`boots under ${firmware.toUpperCase()} with no network and every runtime assertion holds`, async () => {
      const iso = join(a, 'leakless-amd64.iso');
      const { exitCode, json } = await boot(iso, firmware);
      const run = json.boots[0]!;
      const up = run.report?.uptime;
      figures[`boot to result ${firmware}`] =
        `${(run.ms / 1000).toFixed(0)} s under ${json.accel}${up ? ` (guest uptime ${up.start.toFixed(0)} s at self-test start, ${up.end.toFixed(0)} s at its end)` : ''}; longest serial silence ${(run.longestSilenceMs / 1000).toFixed(1)} s (stall limit ${STALL_LIMIT_MS / 1000} s)`;
      const failed = run.report?.results.filter((x) => !x.ok).map((x) => `${x.id}: ${x.detail}`) ?? [run.reason];
      expect(failed).toEqual([]);
      // a complete report of a boot without a network: every assertion but the active probes (scope network), as leakless boot counts them
      const carried = await isoAssertions(iso);
      expect(run.report!.results.length).toBe(expectedResults(carried, false));
      expect(manifestOf(a).selftest.assertions - run.report!.results.length, 'only the active probes are left out').toBe(
        expectedResults(carried, true) - expectedResults(carried, false),
      );
      // the same image reports how it was booted: no UEFI under SeaBIOS, Secure Boot off under plain OVMF
      expect(run.report!.secureBoot).toBe(firmware === 'bios' ? 'not-uefi' : 'disabled');
      expect(exitCode).toBe(0);
      // a passing boot never came near the stall limit
      expect(run.longestSilenceMs).toBeLessThan(STALL_LIMIT_MS);
    });
  }

  it('anti-test: a real boot whose serial console stays silent longer than the stall limit is stopped, with the reason', async () => {
    // GRUB loading the kernel and initrd from the CD is silent for 16-22 s under TCG: a 8 s limit must stop it there
    const t = Date.now();
    const { exitCode, json } = await boot(join(a, 'leakless-amd64.iso'), 'bios', ['--accel', 'tcg', '--stall', '8']);
    figures['stalled boot stopped after'] = `${((Date.now() - t) / 1000).toFixed(0)} s (stall limit 8 s)`;
    expect(exitCode).toBe(1);
    const run = json.boots[0]!;
    expect(run.reason).toMatch(/^stopped: the serial console was silent for \d+\.\ds \(stall limit 8\.0s\) under TCG; the guest hangs after "/);
    expect(run.ms).toBeLessThan(60_000);
  });

  it('the base goes to a turbo remote cache (turborepo-remote-cache in a loopback-only namespace); then a byte of it is changed there', async () => {
    server = await startCacheServer(join(work, 'cache-server'));
    const r = await builder(['--out', join(work, 'published'), '--cache', cache, '--work', join(work, 'work')]);
    expect(r.exitCode).toBe(0);
    expect(r.report.base.cached).toBe(true);
    expect(r.report.base.remote).toBe('pushed');
    // the tamper: one byte in the middle of the stored artifact (its tag, kept beside it, is left alone)
    const p = server.artifactPath(manifestOf(a).base.key);
    const bytes = readFileSync(p);
    bytes[bytes.length >> 1]! ^= 0xff;
    writeFileSync(p, bytes);
  });

  it('a second builder that differs in all that must not matter (path, umask, TZ, locale, host name, package order) refuses the tampered remote base, rebuilds it cold and gets the same ISO, bit for bit', async () => {
    // an empty local cache on another path: the only base on offer is the tampered remote one
    const elsewhere = join('/var/tmp', `leakless-builder-b-${process.pid}`);
    rmSync(elsewhere, { recursive: true, force: true });
    mkdirSync(elsewhere, { recursive: true });
    const r = await builder(['--out', b, '--cache', join(elsewhere, 'cache'), '--work', join(elsewhere, 'work'), '--package-order', 'reversed'], {
      hostname: 'builder-b-elsewhere',
      umask: '027',
      env: { TZ: 'America/St_Johns', LANG: 'fr_CA.UTF-8', LC_ALL: '', LANGUAGE: 'fr' },
    });
    expect(r.exitCode).toBe(0);
    expect(r.report.base.cached).toBe(false);
    expect(r.report.base.remote).toMatch(/^rejected: its bytes do not match the artifact tag .*; rebuilt and pushed$/);
    const [ma, mb] = [manifestOf(a), manifestOf(b)];
    figures['sha256 build 2 (varied builder)'] = mb.iso.sha256;
    if (mb.iso.sha256 !== ma.iso.sha256) await diffoscope(join(a, ISO_NAME), join(b, ISO_NAME), join(work, 'diffoscope-builders.txt'));
    expect(mb.base.key).toBe(ma.base.key);
    expect(mb.kernel.sha256).toBe(ma.kernel.sha256);
    expect(mb.initrd.sha256).toBe(ma.initrd.sha256);
    expect(mb.squashfs).toEqual(ma.squashfs);
    expect(mb.tarballs).toEqual(ma.tarballs);
    expect(mb.iso.sha256).toBe(ma.iso.sha256);
    rmSync(elsewhere, { recursive: true, force: true });
  });

  it('a third builder with an empty local cache gets the (rebuilt) base from the remote cache and makes the same ISO', async () => {
    const c = join(work, 'c');
    const t = Date.now();
    const r = await builder(['--out', c, '--cache', join(work, 'cache-c'), '--work', join(work, 'work')]);
    figures['cache-hit build on a builder with an empty local cache'] = `${((Date.now() - t) / 1000).toFixed(0)} s`;
    expect(r.exitCode).toBe(0);
    expect(r.report.base.cached).toBe(true);
    expect(r.report.base.remote).toBe('hit');
    expect(manifestOf(c).iso.sha256).toBe(manifestOf(a).iso.sha256);
    rmSync(join(work, 'cache-c'), { recursive: true, force: true });
  });

  it('anti-test: a sysctl changed after emit is caught by the rootfs verification and fails the self-test in the booted image', async () => {
    const loaded = await readPolicyFile(join(repo, 'image-config', 'default.yaml'));
    if (!loaded.ok) throw new Error('default policy invalid');
    const assembly = assemble(loaded.policy, allModules);
    const plan = planImage(assembly);
    // a sysctl assertion whose key is set by a "key = value" line in an emitted file
    let planted: { id: string; key: string; file: string } | undefined;
    for (const x of plan.selftest.assertions) {
      if (x.check.kind !== 'sysctl') continue;
      const key = x.check.key;
      const file = assembly.tree.files.find((f) => f.content.split('\n').some((l) => l.startsWith(`${key} = `)));
      if (file) {
        planted = { id: x.id, key, file: file.path };
        break;
      }
    }
    expect(planted, 'the image carries no sysctl assertion to break').toBeDefined();
    const { key, file, id } = planted!;
    const tamper = (tree: Tree): Tree => ({
      ...tree,
      files: tree.files.map((f) =>
        f.path !== file
          ? f
          : {
              ...f,
              content: f.content
                .split('\n')
                .map((l) => (l.startsWith(`${key} = `) ? `${key} = ${l.endsWith(' 0') ? '1' : '0'}` : l))
                .join('\n'),
            },
      ),
    });
    const t = Date.now();
    const r = await buildIso(assembly, {
      outDir: join(work, 'broken'),
      cacheDir: cache,
      workRoot: join(work, 'work'),
      verify: 'report',
      transformTree: tamper,
    });
    figures['module-only rebuild (anti-test image)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`;
    // the base was reused: a module-only change rebuilds in seconds
    expect(r.base.cached).toBe(true);
    expect(r.totalMs).toBeLessThan(120_000);
    expect(r.ok).toBe(false);
    expect(r.verify.results.filter((x) => !x.ok).map((x) => x.module)).toContain('sysctl');

    const { exitCode, json } = await boot(r.iso, 'bios');
    expect(exitCode).toBe(1);
    const results = json.boots[0]!.report?.results ?? [];
    expect(results.find((x) => x.id === id)?.ok, `${id} must fail in the booted image`).toBe(false);
  });

  it('reports the figures', () => {
    printFigures('ISO e2e figures', figures);
    expect(Object.keys(figures).length).toBeGreaterThan(0);
  });
});

// Release engineering end to end, on the run's shared cold-built ISO (no
// cold build of its own but the rebuild): its SBOM validates against
// CycloneDX's schema; SHA512SUMS signed with a throw-away key verifies and
// a flipped byte does not; it boots through Debian's signed shim, GRUB and
// kernel under OVMF with Microsoft's keys enrolled and the self-test sees
// Secure Boot on, while an image with an unsigned GRUB is refused by shim
// (anti-test). The saved-repository rebuild is e2e/iso/rebuild.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { assemble, readPolicyFile } from '@leakless/policy';
import { allModules } from '@leakless/crosscheck';
import { bootIso, buildIso, expectedResults, isoAssertions, ISO_NAME, SBOM_NAME, SHIM_VERIFICATION_FAILED, signRelease, validateSbom } from '@leakless/image';
import { needRoot, needTool, skipUnless, type Missing } from '@leakless/testing';
import { cache, installHint, leakless, printFigures, repo, sharedIso, work } from './shared.js';

const needFile = (path: string, what: string): Missing => (existsSync(path) ? undefined : `${what} (${path}) is missing`);
const skip = skipUnless(
  'the release suite',
  needRoot('it builds, mounts, makes namespaces and chroots'),
  needTool('debos', ['--help'], installHint),
  needTool('mmdebstrap', ['--version'], installHint),
  needTool('gpg', ['--version'], installHint),
  needTool('gpgv', ['--version'], installHint),
  needTool('qemu-system-x86_64', ['--version'], installHint),
  needFile('/usr/share/OVMF/OVMF_CODE_4M.secboot.fd', 'OVMF with Secure Boot'),
  needFile('/usr/share/OVMF/OVMF_VARS_4M.ms.fd', "OVMF's variable store with Microsoft's keys"),
  needFile('/usr/lib/shim/shimx64.efi.signed', "Debian's signed shim (shim-signed)"),
  needFile(join(repo, 'tools', 'leakless', 'dist', 'main.js'), 'a build of tools/leakless (npx tsc -b tsconfig.build.json)'),
);

const figures: Record<string, string> = {};
const rel = join(work, 'release');
const s = (ms: number) => `${(ms / 1000).toFixed(0)} s`;

describe.skipIf(skip).sequential('release engineering', () => {
  // the suite's own time (the CI budget: the whole e2e run under 60 min on 2 cores), after the shared cold build
  let suiteStart = 0;
  beforeAll(async () => {
    await sharedIso();
    suiteStart = Date.now();
  });
  afterAll(() => {
    figures['suite time (after the shared cold build)'] = s(Date.now() - suiteStart);
    printFigures('release figures', figures);
  });

  it('the SBOM (CycloneDX 1.6) validates against its schema and lists every installed Debian package', async () => {
    const shared = await sharedIso();
    const sbom = readFileSync(join(shared.dir, SBOM_NAME), 'utf8');
    expect(await validateSbom(sbom)).toBeUndefined();
    const doc = JSON.parse(sbom) as {
      components: { name: string; purl?: string; components?: unknown[] }[];
      metadata: { component: { hashes: { content: string }[] } };
    };
    const binaries = doc.components.filter((c) => c.purl?.startsWith('pkg:deb/') && !c.purl.includes('arch=source'));
    expect(binaries.length).toBe(shared.manifest.packages.length);
    expect(shared.manifest.sbom.packages).toBe(binaries.length);
    expect(doc.components.some((c) => c.purl?.includes('arch=source'))).toBe(true);
    expect(doc.metadata.component.hashes[0]!.content).toBe(shared.manifest.iso.sha256);
    const content = doc.components.find((c) => c.name === 'leakless-content');
    expect(content?.components?.length).toBeGreaterThan(10);
    figures.SBOM = `${binaries.length} binary packages, ${doc.components.length - binaries.length - 1} source packages, ${content!.components!.length} leakless files`;
  });

  it('SHA512SUMS signed with a throw-away key: leakless verify passes; a flipped byte and a forged sum fail', async () => {
    const shared = await sharedIso();
    rmSync(rel, { recursive: true, force: true });
    const home = join(rel, 'gnupg');
    const out = join(rel, 'signed');
    mkdirSync(home, { recursive: true, mode: 0o700 });
    mkdirSync(out, { recursive: true });
    await execa('gpg', ['--batch', '--no-tty', '--passphrase', '', '--quick-gen-key', 'leakless e2e release <release@example.org>', 'ed25519', 'sign', '1d'], {
      env: { GNUPGHOME: home },
    });
    writeFileSync(join(rel, 'release.asc'), (await execa('gpg', ['--batch', '--armor', '--export'], { env: { GNUPGHOME: home } })).stdout);
    const names = [ISO_NAME, 'leakless-amd64.manifest.json', SBOM_NAME];
    for (const n of names) copyFileSync(join(shared.dir, n), join(out, n));
    await signRelease(out, names, { key: 'release@example.org', gnupgHome: home });
    const verify = (dir: string) => leakless(['verify', join(dir, ISO_NAME), '--keyring', join(rel, 'release.asc'), '--json']);
    const good = await verify(out);
    expect(good.exitCode, good.stdout).toBe(0);

    const iso = join(out, ISO_NAME);
    const fd = readFileSync(iso);
    const at = fd.length >> 1;
    fd[at]! ^= 1;
    writeFileSync(iso, fd);
    const flipped = await verify(out);
    expect(flipped.exitCode).toBe(1);
    expect((JSON.parse(flipped.stdout) as { checks: { what: string; ok: boolean }[] }).checks.find((c) => c.what === ISO_NAME)?.ok).toBe(false);
    fd[at]! ^= 1;
    writeFileSync(iso, fd);
    const sums = readFileSync(join(out, 'SHA512SUMS'), 'utf8');
    writeFileSync(
      join(out, 'SHA512SUMS'),
      sums.replace(/^[0-9a-f]/, (c) => (c === '0' ? '1' : '0')),
    );
    const forged = await verify(out);
    expect(forged.exitCode).toBe(1);
    expect((JSON.parse(forged.stdout) as { checks: { what: string; ok: boolean }[] }).checks[0]).toMatchObject({ what: 'SHA512SUMS.sign', ok: false });
    expect((await leakless(['verify', iso])).exitCode).toBe(2);
  });

  it("boots under OVMF with Microsoft's keys enrolled: shim, GRUB and kernel verified, the self-test passes and reports Secure Boot enabled", async () => {
    const shared = await sharedIso();
    const sb = shared.manifest.secureBoot as { shim: { signed: boolean; sbatLevel: { previous: string } }; grub: { signed: boolean } };
    expect(sb.shim.signed && sb.grub.signed).toBe(true);
    expect(sb.shim.sbatLevel.previous).toMatch(/^sbat,1,\d{10}\n/);
    const r = await bootIso({
      iso: shared.iso,
      firmware: 'uefi',
      secureBoot: true,
      accel: shared.report.accel.accel,
      timeoutMs: 600_000,
      // a complete report of a boot without a network: every assertion but the active probes (scope network)
      expectedAssertions: expectedResults(await isoAssertions(shared.iso), false),
      logDir: join(rel, 'boot-secureboot'),
    });
    figures['Secure Boot boot to self-test result'] = `${s(r.ms)} under ${shared.report.accel.accel}`;
    expect(r.reason).toBeUndefined();
    expect(r.report?.secureBoot).toBe('enabled');
    expect(r.report?.results.filter((x) => !x.ok)).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it("anti-test: an image with an unsigned GRUB behind shim is refused under Secure Boot, by shim's own line and not a timeout", async () => {
    const shared = await sharedIso();
    const loaded = await readPolicyFile(join(repo, 'image-config', 'default.yaml'));
    if (!loaded.ok) throw new Error('default policy invalid');
    const b = await buildIso(assemble(loaded.policy, allModules), {
      outDir: join(rel, 'unsigned'),
      cacheDir: cache,
      workRoot: join(work, 'work'),
      uefiGrub: 'unsigned',
    });
    expect(b.base.cached).toBe(true);
    expect(b.manifest.secureBoot.grub.signed).toBe(false);
    const t = Date.now();
    const r = await bootIso({
      iso: b.iso,
      firmware: 'uefi',
      secureBoot: true,
      accel: shared.report.accel.accel,
      timeoutMs: 600_000,
      logDir: join(rel, 'boot-unsigned'),
    });
    figures['unsigned GRUB refused after'] = s(Date.now() - t);
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(SHIM_VERIFICATION_FAILED);
    expect(r.report).toBeUndefined();
    expect(r.ms).toBeLessThan(120_000);
  });
});

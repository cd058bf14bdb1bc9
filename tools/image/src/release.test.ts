// Release artifacts without a build: the Secure Boot record's PE reader on
// Debian's shim and GRUB, the SBOM against CycloneDX's schema, SHA512SUMS
// and its signature with a throw-away key, the build tools' closure, and
// the rebuild namespace's route check.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { needTool, skipUnless } from '@leakless/testing';
import { parseSbatLevel, PeError, readPe } from './secureboot.js';
import { debPurl, dep5Licenses, makeSbom, parseDpkgStatus, sbomPackageCount, serialNumber, validateSbom } from './sbom.js';
import { parseSums, signRelease, verifyRelease } from './release-sign.js';
import { parseInstalled, toolClosure } from './saved-repo.js';
import { routesOut } from './build-env.js';
import { toolVersions, withBuildEnv } from './iso-build.js';
import { secureBootState } from '@leakless/selftest';
import { parseSimulation } from './resolve.js';

const dir = mkdtempSync(join(tmpdir(), 'lk-release-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SHIM = '/usr/lib/shim/shimx64.efi.signed';
const GRUB = '/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed';
const hint = 'tools/leakless/install-deps.sh e2e installs it';

describe('the Secure Boot record', () => {
  it.skipIf(skipUnless("reading Debian's shim and GRUB", existsSync(SHIM) && existsSync(GRUB) ? undefined : `${SHIM} or ${GRUB} is missing (${hint})`))(
    "reads the SBAT and SBAT level of Debian's signed shim and GRUB, and sees their signatures",
    () => {
      const shim = readPe(readFileSync(SHIM));
      expect(shim.signed).toBe(true);
      expect(shim.sections.get('.sbat')!.toString()).toMatch(/^sbat,1,/);
      const level = parseSbatLevel(shim.sections.get('.sbatlevel')!);
      expect(level.previous).toMatch(/^sbat,1,\d{10}\n/);
      expect(level.latest).toMatch(/^sbat,1,\d{10}\n/);
      const grub = readPe(readFileSync(GRUB));
      expect(grub.signed).toBe(true);
      expect(grub.sections.get('.sbat')!.toString()).toContain('grub.debian');
    },
  );
  it('the self-test reads Secure Boot from the SecureBoot EFI variable (4 attribute bytes, then 1 = enforced)', () => {
    expect(secureBootState(Uint8Array.from([6, 0, 0, 0, 1]), true)).toBe('enabled');
    expect(secureBootState(Uint8Array.from([6, 0, 0, 0, 0]), true)).toBe('disabled');
    expect(secureBootState(undefined, true)).toBe('disabled');
    expect(secureBootState(Uint8Array.from([6, 0, 0, 0, 1]), false)).toBe('not-uefi');
  });
  it('refuses what is not a PE32+ image', () => {
    expect(() => readPe(Buffer.from('not a PE file, just some bytes that are long enough to have a header.....'))).toThrow(PeError);
    const mz = Buffer.alloc(0x100);
    mz.write('MZ');
    mz.writeUInt32LE(0x80, 0x3c);
    expect(() => readPe(mz)).toThrow(/no PE signature/);
  });
  it('an unsigned image reads as unsigned (certificate table empty)', () => {
    const b = Buffer.alloc(0x200);
    b.write('MZ');
    b.writeUInt32LE(0x40, 0x3c);
    b.write('PE\0\0', 0x40, 'latin1');
    b.writeUInt16LE(0, 0x46); // no sections
    b.writeUInt16LE(240, 0x54); // optional header size
    b.writeUInt16LE(0x20b, 0x58);
    b.writeUInt32LE(16, 0x58 + 108);
    expect(readPe(b)).toEqual({ sections: new Map(), signed: false });
    b.writeUInt32LE(1024, 0x58 + 112 + 4 * 8 + 4);
    expect(readPe(b).signed).toBe(true);
  });
});

const STATUS = `Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u13

Package: tor
Status: install ok installed
Architecture: amd64
Version: 0.4.8.16-1~deb12u1

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12 (12.2.0-14+deb12u1)
Version: 12.2.0-14+deb12u1
`;

describe('the SBOM', () => {
  const packages = parseDpkgStatus(STATUS).map((p) => ({ ...p, licenses: p.name === 'tor' ? ['BSD-3-clause'] : [] }));
  const inputs = {
    packages,
    files: [{ path: '/usr/lib/leakless/x.conf', content: 'x\n', clause: 'firewall.rules' }],
    policy: 'default',
    release: '0.1.0',
    suite: 'bookworm',
    sourceDateEpoch: 1763769600,
    iso: { name: 'leakless-amd64.iso', sha256: 'a'.repeat(64) },
  };
  it('reads installed binary packages and their source package and version from dpkg status', () => {
    expect(parseDpkgStatus(STATUS)).toEqual([
      { name: 'libc6', version: '2.36-9+deb12u13', arch: 'amd64', source: 'glibc', sourceVersion: '2.36-9+deb12u13' },
      { name: 'libgcc-s1', version: '12.2.0-14+deb12u1', arch: 'amd64', source: 'gcc-12', sourceVersion: '12.2.0-14+deb12u1' },
      { name: 'tor', version: '0.4.8.16-1~deb12u1', arch: 'amd64', source: 'tor', sourceVersion: '0.4.8.16-1~deb12u1' },
    ]);
  });
  it('takes licences from machine-readable copyright files only', () => {
    expect(
      dep5Licenses(
        'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+\n\nLicense: GPL-2+\n text\n\nFiles: a\nLicense: MIT\n',
      ),
    ).toEqual(['GPL-2+', 'MIT']);
    expect(dep5Licenses('This package was debianized by someone.\nLicense: GPL\n')).toEqual([]);
  });
  it('purls encode epochs and plus signs', () => {
    expect(debPurl('libc6', '1:2.36+x', { distro: 'debian-12', arch: 'amd64' })).toBe('pkg:deb/debian/libc6@1%3A2.36%2Bx?arch=amd64&distro=debian-12');
  });
  it('validates against the CycloneDX 1.6 schema, is deterministic and counts binary packages', async () => {
    const a = makeSbom(inputs);
    expect(await validateSbom(a)).toBeUndefined();
    expect(makeSbom(inputs)).toBe(a);
    expect(sbomPackageCount(a)).toBe(3);
    const doc = JSON.parse(a);
    expect(doc.serialNumber).toBe(serialNumber('a'.repeat(64)));
    expect(doc.metadata.timestamp).toBe('2025-11-22T00:00:00.000Z');
    expect(doc.components.map((c: { name: string }) => c.name)).toEqual(expect.arrayContaining(['glibc', 'gcc-12', 'libc6', 'tor', 'leakless-content']));
  });
  it('anti-test: a document that breaks the schema is reported', async () => {
    const bad = JSON.parse(makeSbom(inputs));
    bad.components[0].type = 'not-a-type';
    expect(await validateSbom(JSON.stringify(bad))).toMatch(/type|enum/);
  });
});

describe.skipIf(skipUnless('release signing', needTool('gpg', ['--version'], hint), needTool('gpgv', ['--version'], hint)))(
  'SHA512SUMS and its signature',
  () => {
    it('signs with a throw-away key; verify passes, a flipped byte and another key fail', async () => {
      const home = join(dir, 'gnupg');
      const other = join(dir, 'gnupg-other');
      const rel = join(dir, 'rel');
      for (const d of [home, other, rel]) await execa('mkdir', ['-p', '-m', '700', d]);
      const gen = (h: string, uid: string) =>
        execa('gpg', ['--batch', '--no-tty', '--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'sign', '1d'], { env: { GNUPGHOME: h } });
      await gen(home, 'leakless release test <release@example.org>');
      await gen(other, 'someone else <other@example.org>');
      const exportKey = async (h: string, file: string) =>
        writeFileSync(file, (await execa('gpg', ['--batch', '--armor', '--export'], { env: { GNUPGHOME: h } })).stdout);
      await exportKey(home, join(dir, 'release.asc'));
      await exportKey(other, join(dir, 'other.asc'));
      writeFileSync(join(rel, 'leakless-amd64.iso'), Buffer.alloc(4096, 7));
      writeFileSync(join(rel, 'leakless-amd64.manifest.json'), '{}\n');
      await signRelease(rel, ['leakless-amd64.iso', 'leakless-amd64.manifest.json'], { key: 'release@example.org', gnupgHome: home });
      expect(parseSums(readFileSync(join(rel, 'SHA512SUMS'), 'utf8')).map((x) => x.name)).toEqual(['leakless-amd64.iso', 'leakless-amd64.manifest.json']);
      const good = await verifyRelease(join(rel, 'leakless-amd64.iso'), join(dir, 'release.asc'));
      expect(good.checks.filter((c) => !c.ok)).toEqual([]);
      expect(good.ok).toBe(true);
      // sha512sum agrees with the file's format
      expect((await execa('sha512sum', ['-c', 'SHA512SUMS'], { cwd: rel, reject: false })).exitCode).toBe(0);

      expect((await verifyRelease(join(rel, 'leakless-amd64.iso'), join(dir, 'other.asc'))).ok).toBe(false);
      const iso = readFileSync(join(rel, 'leakless-amd64.iso'));
      iso[1234]! ^= 1;
      writeFileSync(join(rel, 'leakless-amd64.iso'), iso);
      const flipped = await verifyRelease(join(rel, 'leakless-amd64.iso'), join(dir, 'release.asc'));
      expect(flipped.ok).toBe(false);
      expect(flipped.checks.find((c) => c.what === 'leakless-amd64.iso')?.ok).toBe(false);
      iso[1234]! ^= 1;
      writeFileSync(join(rel, 'leakless-amd64.iso'), iso);
      const sums = readFileSync(join(rel, 'SHA512SUMS'), 'utf8');
      writeFileSync(
        join(rel, 'SHA512SUMS'),
        sums.replace(/^./, (c) => (c === '0' ? '1' : '0')),
      );
      const forged = await verifyRelease(join(rel, 'leakless-amd64.iso'), join(dir, 'release.asc'));
      expect(forged.checks[0]).toMatchObject({ what: 'SHA512SUMS.sign', ok: false });
    }, 60_000);
  },
);

describe.skipIf(skipUnless('the tool-version probe', needTool('mmdebstrap', ['--version'], hint)))('what a builder does not pin', () => {
  it('a builder\'s locale does not reach the tool versions (and so the base key): seen as perl\'s "Setting locale failed"', async () => {
    const saved = { LANG: process.env.LANG, LC_ALL: process.env.LC_ALL, LANGUAGE: process.env.LANGUAGE };
    Object.assign(process.env, { LANG: 'fr_CA.UTF-8', LC_ALL: 'fr_CA.UTF-8', LANGUAGE: 'fr' });
    try {
      // unpinned, perl complains first (the locale is not installed here): the probe that changed the key
      const raw = await execa('mmdebstrap', ['--version'], { all: true, reject: false });
      expect(raw.all?.split('\n')[0]).toMatch(/locale/i);
      const pinned = await withBuildEnv(() => toolVersions());
      expect(pinned.base.mmdebstrap).toMatch(/^mmdebstrap \d/);
      expect(process.env.LANG).toBe('fr_CA.UTF-8');
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });
});

describe('the build environment', () => {
  const row = (name: string, o: { ess?: boolean; prio?: string; provides?: string; pre?: string; deps?: string; status?: string } = {}) =>
    [name, '1.0', 'amd64', o.ess ? 'yes' : '', o.prio ?? 'optional', o.status ?? 'install ok installed', o.provides ?? '', o.pre ?? '', o.deps ?? ''].join(
      '\t',
    );
  const installed = parseInstalled(
    [
      row('dpkg', { ess: true, prio: 'required', deps: 'tar (>= 1.28)' }),
      row('tar', { ess: true, prio: 'required' }),
      row('debos', { deps: 'libc6 (>= 2.34), busybox | busybox-static, systemd-container' }),
      row('libc6', { prio: 'optional' }),
      row('busybox-static', { provides: 'busybox' }),
      row('systemd-container', { pre: 'libc6' }),
      row('xorriso', { deps: 'libburn4' }),
      row('libburn4'),
      row('unrelated'),
      row('removed', { status: 'deinstall ok config-files' }),
    ].join('\n'),
  );
  it('is the tools, the essential and required set and their dependency closure, alternatives by what is installed', () => {
    expect(toolClosure(installed, ['debos']).map((p) => p.name)).toEqual(['busybox-static', 'debos', 'dpkg', 'libc6', 'systemd-container', 'tar']);
  });
  it('names a tool that is not installed', () => {
    expect(() => toolClosure(installed, ['removed'])).toThrow(/removed is not installed/);
  });
  it('the resolved package set is what apt would install, with versions', () => {
    const sim = [
      'NOTE: This is only a simulation!',
      'Inst libc6 (2.36-9+deb12u13 Debian:12.12/stable, Debian-Security:12/stable-security [amd64])',
      'Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u2 Debian:12.12/stable [all])',
      'Conf libc6 (2.36-9+deb12u13 Debian:12.12/stable [amd64])',
    ].join('\n');
    expect(parseSimulation(sim)).toEqual([
      { name: 'libc6', version: '2.36-9+deb12u13', arch: 'amd64' },
      { name: 'tzdata', version: '2025b-0+deb12u2', arch: 'all' },
    ]);
  });
  it('a rebuild namespace may have loopback routes only', () => {
    expect(routesOut('local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1\n::1 dev lo proto kernel metric 256 pref medium\n')).toEqual([]);
    expect(routesOut('default via 192.0.2.1 dev eth0\nlocal 127.0.0.1 dev lo table local\n')).toEqual(['default via 192.0.2.1 dev eth0']);
  });
});

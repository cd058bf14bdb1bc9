import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { needTool, skipUnless } from '@leakless/testing';
import { AptRepoError, canonicalDebName, makeAptRepo, packagesOf, rfc2822Date, releaseFile, sourcesLine } from './index.js';

describe('pure parts', () => {
  it('writes the Date as apt does, from the epoch', () => {
    expect(rfc2822Date(1700000000)).toBe('Tue, 14 Nov 2023 22:13:20 +0000');
  });
  it('names files NAME_VERSION_ARCH.deb without the epoch', () => {
    expect(canonicalDebName('leakless', '1:0.1.0-1', 'all')).toBe('leakless_0.1.0-1_all.deb');
  });
  it('lists each index with its size and digests', () => {
    const r = releaseFile({ origin: 'o', label: 'l', suite: 's', codename: 'c', description: 'd', architectures: ['all'], sourceDateEpoch: 0 }, [
      { name: 'Packages', content: Buffer.from('') },
    ]);
    expect(r).toContain('\nSHA256:\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855        0 Packages\n');
    expect(r).toContain('Date: Thu, 01 Jan 1970 00:00:00 +0000\n');
  });
  it('refuses a field that would break the Release file', () => {
    expect(() =>
      releaseFile({ origin: 'a\nSHA256:', label: 'l', suite: 's', codename: 'c', description: 'd', architectures: [], sourceDateEpoch: 0 }, []),
    ).toThrow(/origin/);
  });
  it('gives the one-line source a local repository needs', () => {
    expect(sourcesLine('/srv/repo')).toBe('deb [trusted=yes] file:/srv/repo ./');
  });
});

const skip = skipUnless(
  'apt-repo with real packages',
  needTool('dpkg-deb', ['--version']),
  needTool('dpkg-scanpackages', ['--version']),
  needTool('apt-get', ['--version']),
);

describe.skipIf(skip)('a repository of real packages', () => {
  const work = mkdtempSync(join(tmpdir(), 'lk-apt-repo-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const deb = (name: string, version: string, mtime: number): string => {
    const root = join(work, `src-${name}-${mtime}`);
    mkdirSync(join(root, 'DEBIAN'), { recursive: true });
    mkdirSync(join(root, 'usr/share/doc', name), { recursive: true });
    writeFileSync(join(root, 'usr/share/doc', name, 'note'), `${name}\n`);
    writeFileSync(
      join(root, 'DEBIAN/control'),
      `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: test ${name}\n test package\n`,
    );
    const out = join(work, `${name}-${mtime}.deb`);
    execFileSync('dpkg-deb', ['--root-owner-group', '--build', root, out], { stdio: 'ignore', env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } });
    utimesSync(out, mtime, mtime);
    return out;
  };

  it('same packages and epoch give the same bytes, whatever their order and mtimes', async () => {
    const a1 = deb('lk-alpha', '1.0', 1000);
    const b1 = deb('lk-beta', '2:1.0-1', 1000);
    const a2 = deb('lk-alpha', '1.0', 2000);
    const b2 = deb('lk-beta', '2:1.0-1', 2000);
    const r1 = await makeAptRepo({ dir: join(work, 'r1'), debs: [a1, b1], sourceDateEpoch: 1700000000 });
    const r2 = await makeAptRepo({ dir: join(work, 'r2'), debs: [b2, a2], sourceDateEpoch: 1700000000 });
    for (const f of ['Release', 'Packages', 'Packages.gz', 'lk-alpha_1.0_all.deb', 'lk-beta_1.0-1_all.deb']) {
      expect(readFileSync(join(r1.dir, f)).equals(readFileSync(join(r2.dir, f))), f).toBe(true);
    }
    expect(r1.packages.map((p) => `${p.name} ${p.version} ${p.filename}`)).toEqual([
      'lk-alpha 1.0 ./lk-alpha_1.0_all.deb',
      'lk-beta 2:1.0-1 ./lk-beta_1.0-1_all.deb',
    ]);
    expect(packagesOf(readFileSync(join(r1.dir, 'Packages'), 'utf8'))).toEqual(r1.packages);
  });

  it("the archive's Priority and Section replace the control file's (mmdebstrap picks the required set by them)", async () => {
    const a = deb('lk-gamma', '1.0', 1000);
    const plain = await makeAptRepo({ dir: join(work, 'o1'), debs: [a], sourceDateEpoch: 1700000000 });
    const over = await makeAptRepo({
      dir: join(work, 'o2'),
      debs: [a],
      sourceDateEpoch: 1700000000,
      overrides: new Map([['lk-gamma', { priority: 'required', section: 'admin' }]]),
    });
    expect(readFileSync(join(plain.dir, 'Packages'), 'utf8')).not.toMatch(/^Priority: required$/m);
    const stanza = readFileSync(join(over.dir, 'Packages'), 'utf8');
    expect(stanza).toMatch(/^Priority: required$/m);
    expect(stanza).toMatch(/^Section: admin$/m);
    expect(readdirSync(work).filter((f) => f.endsWith('.override'))).toEqual([]);
  });

  it('apt reads it: the packages are installable candidates from the file: source', async () => {
    const r = await makeAptRepo({ dir: join(work, 'served'), debs: [deb('lk-gamma', '0.3', 1)], sourceDateEpoch: 1700000000 });
    const state = join(work, 'apt');
    for (const d of ['lists/partial', 'cache/archives/partial', 'etc']) mkdirSync(join(state, d), { recursive: true });
    writeFileSync(join(state, 'etc/sources.list'), `${r.sourcesLine}\n`);
    writeFileSync(join(state, 'status'), '');
    const opts = [
      `-oDir::Etc::SourceList=${join(state, 'etc/sources.list')}`,
      '-oDir::Etc::SourceParts=/nonexistent',
      `-oDir::State::Lists=${join(state, 'lists')}`,
      `-oDir::State::status=${join(state, 'status')}`,
      `-oDir::Cache=${join(state, 'cache')}`,
      '-oDebug::NoLocking=1',
      '-oAPT::Sandbox::User=root',
    ];
    execFileSync('apt-get', [...opts, 'update'], { stdio: 'pipe' });
    const policy = execFileSync('apt-cache', [...opts, 'policy', 'lk-gamma'], { encoding: 'utf8' });
    expect(policy).toMatch(/Candidate: 0\.3/);
    expect(policy).toContain(`file:${r.dir} ./ Packages`);
  });

  it('the same package version twice is bad input and writes nothing', async () => {
    const a = deb('lk-delta', '1', 5);
    const b = deb('lk-delta', '1', 6);
    const dir = join(work, 'dup');
    await expect(makeAptRepo({ dir, debs: [a, b], sourceDateEpoch: 0 })).rejects.toThrow(AptRepoError);
    await expect(makeAptRepo({ dir, debs: [a, b], sourceDateEpoch: 0 })).rejects.toThrow(/debs: lk-delta 1 \(all\) is given twice/);
    expect(existsSync(dir)).toBe(false);
  });

  it('a file that is not a package is bad input naming the file', async () => {
    const bogus = join(work, 'bogus.deb');
    writeFileSync(bogus, 'not an ar archive');
    await expect(makeAptRepo({ dir: join(work, 'bogus'), debs: [bogus], sourceDateEpoch: 0 })).rejects.toThrow(/debs: .*bogus\.deb is not a Debian package/);
    expect(existsSync(join(work, 'bogus'))).toBe(false);
  });
});

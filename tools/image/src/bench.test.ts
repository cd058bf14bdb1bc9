import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allModules } from '@leakless/crosscheck';
import { assemble } from '@leakless/policy';
import { defaultPolicy } from '@leakless/policy/testing';
import { benchExpectedResults, liveBuildConfig } from './bench.js';
import { planImage } from './iso-plan.js';
import { resolveSources, SourcesError } from './sources.js';

const dir = mkdtempSync(join(tmpdir(), 'lk-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every option value of an lb config line that is a URL. */
const urls = (args: readonly string[]) => args.filter((a) => /^[a-z]+:\/\//.test(a));
const opt = (args: readonly string[], name: string) => args[args.indexOf(name) + 1];
const MIRROR_OPTIONS = ['bootstrap', 'chroot', 'binary', 'debian-installer', 'chroot-security', 'binary-security'].flatMap((m) => [
  `--mirror-${m}`,
  `--parent-mirror-${m}`,
]);

describe('live-build config (bench --live-build)', () => {
  it('a host that names only one local mirror: every mirror option points at it, suites it lacks are off', async () => {
    const f = join(dir, 'debian.sources');
    writeFileSync(
      f,
      'Types: deb\nURIs: http://10.20.30.40:3142/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n',
    );
    const args = liveBuildConfig('bookworm', await resolveSources(f, 'bookworm'));
    for (const o of MIRROR_OPTIONS) expect(opt(args, o), o).toBe('http://10.20.30.40:3142/debian/');
    expect(new Set(urls(args))).toEqual(new Set(['http://10.20.30.40:3142/debian/']));
    expect(args.join(' ')).not.toMatch(/deb\.debian\.org|security\.debian\.org/);
    expect(opt(args, '--security')).toBe('false');
    expect(opt(args, '--updates')).toBe('true');
    expect(args.slice(0, 3)).toEqual(['config', '--distribution', 'bookworm']);
  });

  it('the host’s security mirror, when it has one, is the security mirror', async () => {
    const f = join(dir, 'sources.list');
    writeFileSync(f, 'deb http://mirror.lan/debian bookworm main\ndeb http://mirror.lan/debian-security bookworm-security main\n');
    const args = liveBuildConfig('bookworm', await resolveSources(f, 'bookworm'));
    for (const o of ['--mirror-chroot-security', '--parent-mirror-chroot-security', '--mirror-binary-security', '--parent-mirror-binary-security'])
      expect(opt(args, o), o).toBe('http://mirror.lan/debian-security/');
    expect(opt(args, '--mirror-chroot')).toBe('http://mirror.lan/debian/');
    expect(opt(args, '--security')).toBe('true');
    expect(opt(args, '--updates')).toBe('false');
    expect(new Set(urls(args))).toEqual(new Set(['http://mirror.lan/debian/', 'http://mirror.lan/debian-security/']));
  });

  it('sources without the suite: an error naming the file, not a silent default', () => {
    expect(() => liveBuildConfig('bookworm', { name: 'debian.sources', content: 'Types: deb\nURIs: http://m/debian\nSuites: trixie\n' })).toThrow(SourcesError);
    expect(() => liveBuildConfig('bookworm', { name: 'debian.list', content: '' })).toThrow(/name no mirror for bookworm/);
  });
});

describe('the bench boots', () => {
  it('expect every assertion but the active probes: they boot without a network', () => {
    const assembly = assemble(defaultPolicy(), allModules);
    const all = planImage(assembly).selftest.assertions;
    const network = all.filter((a) => a.scope === 'network').length;
    expect(network).toBeGreaterThan(0);
    expect(benchExpectedResults(assembly)).toBe(all.length - network);
  });
});

import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mirrorFor, parseSources, resolveSources, SourcesError } from './sources.js';

const dir = mkdtempSync(join(tmpdir(), 'lk-sources-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('resolveSources', () => {
  it('a mirror URL becomes a one-line source for the suite', async () => {
    expect(await resolveSources('http://mirror.example/debian', 'bookworm')).toEqual({
      name: 'mirror.list',
      content: 'deb http://mirror.example/debian bookworm main\n',
    });
    await expect(resolveSources('http://a b', 'bookworm')).rejects.toThrow(SourcesError);
  });
  it('a sources file is pasted as it is (deb822 or one-line)', async () => {
    const f = join(dir, 'x.sources');
    writeFileSync(f, 'Types: deb\n');
    expect(await resolveSources(f, 'bookworm')).toEqual({ name: 'debian.sources', content: 'Types: deb\n' });
    await expect(resolveSources(join(dir, 'missing'), 'bookworm')).rejects.toThrow(/neither an http/);
  });
  it('by default: the first host sources file that exists', async () => {
    const list = join(dir, 'sources.list');
    writeFileSync(list, 'deb http://10.1.2.3/debian bookworm main\n');
    expect(await resolveSources(undefined, 'bookworm', [join(dir, 'none.sources'), list])).toEqual({
      name: 'debian.list',
      content: 'deb http://10.1.2.3/debian bookworm main\n',
    });
  });
});

describe('parseSources', () => {
  it('deb822: deb stanzas only, enabled ones, continuation lines and comments', () => {
    const content = [
      'Types: deb deb-src',
      '# a comment',
      'URIs: http://a.example/debian',
      'Suites: bookworm',
      '  bookworm-updates',
      'Components: main contrib',
      '',
      'Types: deb-src',
      'URIs: http://src.example/debian',
      'Suites: bookworm',
      '',
      'Types: deb',
      'URIs: http://off.example/debian',
      'Suites: bookworm-backports',
      'Enabled: no',
      '',
      'Types: deb',
      'URIs: http://a.example/debian-security/',
      'Suites: bookworm-security',
      'Components: main',
    ].join('\n');
    expect(parseSources({ name: 'debian.sources', content })).toEqual([
      { uris: ['http://a.example/debian'], suites: ['bookworm', 'bookworm-updates'], components: ['main', 'contrib'] },
      { uris: ['http://a.example/debian-security/'], suites: ['bookworm-security'], components: ['main'] },
    ]);
  });
  it('one-line: options in brackets, comments, deb-src skipped', () => {
    const content =
      '# x\ndeb [signed-by=/k.gpg arch=amd64] http://m.example/debian bookworm main\ndeb-src http://m.example/debian bookworm main\ndeb http://m.example/debian-security bookworm-security main # sec\n';
    const e = parseSources({ name: 'debian.list', content });
    expect(e).toEqual([
      { uris: ['http://m.example/debian'], suites: ['bookworm'], components: ['main'] },
      { uris: ['http://m.example/debian-security'], suites: ['bookworm-security'], components: ['main'] },
    ]);
    expect(mirrorFor(e, 'bookworm')).toBe('http://m.example/debian/');
    expect(mirrorFor(e, 'bookworm-security')).toBe('http://m.example/debian-security/');
    expect(mirrorFor(e, 'bookworm-updates')).toBeUndefined();
  });
});

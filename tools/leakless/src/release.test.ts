// leakless rebuild / verify / iso's release flags: bad input is one line
// naming the field, exit 2, nothing written (no build, no root needed).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from './main.js';
import { capture } from './test/io.js';
import { remoteCacheOf } from './iso.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lk-release-cli-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('leakless rebuild', () => {
  /** `leakless rebuild` of a manifest with this content. */
  const rebuildWith = (manifest: string): string[] => {
    writeFileSync(join(dir, 'm.json'), manifest);
    return ['rebuild', join(dir, 'm.json')];
  };
  const cases: [string, () => string[], RegExp][] = [
    ['no manifest', () => ['rebuild'], /takes one argument, the manifest/],
    ['a manifest that does not exist', () => ['rebuild', join(dir, 'nope.json')], /^leakless: MANIFEST: .* does not exist$/],
    ['a manifest that is not JSON', () => rebuildWith('x'), /MANIFEST: .* is not JSON/],
    ['a manifest without an ISO sha256', () => rebuildWith('{}'), /records no ISO sha256/],
    ['a manifest without a git revision', () => rebuildWith(JSON.stringify({ iso: { sha256: 'a'.repeat(64) } })), /records no git revision/],
    [
      'no saved repository next to the manifest',
      () => rebuildWith(JSON.stringify({ iso: { sha256: 'a'.repeat(64) }, source: { revision: 'r', dirty: false, config: { path: 'x', sha256: 'y' } } })),
      /^leakless: --repo: .* is not a saved repository/,
    ],
    ['an unknown option', () => ['rebuild', 'm.json', '--fresh'], /unknown option --fresh/],
  ];
  for (const [what, argv, msg] of cases) {
    it(`${what}: exit 2, one line, nothing written`, async () => {
      const c = capture();
      const before = readdirSync(dir);
      expect(await main(argv(), c.io)).toBe(2);
      expect(c.err).toHaveLength(1);
      expect(c.err[0]).toMatch(msg);
      expect(c.out).toEqual([]);
      expect(readdirSync(dir).filter((f) => !before.includes(f) && f !== 'm.json')).toEqual([]);
    });
  }
});

describe('leakless verify', () => {
  it('needs the ISO and the release key; a missing SHA512SUMS is bad input', async () => {
    for (const [argv, msg] of [
      [['verify'], /takes one argument, the ISO/],
      [['verify', join(dir, 'x.iso')], /--keyring: the release public key is required/],
      [['verify', join(dir, 'x.iso'), '--keyring', join(dir, 'k.asc')], /ISO: .* does not exist/],
    ] as const) {
      const c = capture();
      expect(await main([...argv], c.io)).toBe(2);
      expect(c.err).toEqual([expect.stringMatching(msg)]);
    }
    mkdirSync(join(dir, 'rel'));
    writeFileSync(join(dir, 'rel', 'x.iso'), 'iso');
    const c = capture();
    expect(await main(['verify', join(dir, 'rel', 'x.iso'), '--keyring', join(dir, 'k.asc')], c.io)).toBe(2);
    expect(c.err).toEqual([expect.stringMatching(/^leakless: SHA512SUMS: .* does not exist$/)]);
  });
});

describe('leakless iso --remote-cache', () => {
  it('takes its secrets from the environment and names what is missing', () => {
    expect(remoteCacheOf({})).toBeUndefined();
    expect(() => remoteCacheOf({ 'remote-cache': 'ftp://x' }, {})).toThrow(/--remote-cache: not an http\(s\) URL/);
    expect(() => remoteCacheOf({ 'remote-cache': 'http://127.0.0.1:3000' }, {})).toThrow(/^LEAKLESS_REMOTE_CACHE_TOKEN:/);
    expect(() => remoteCacheOf({ 'remote-cache': 'http://127.0.0.1:3000' }, { LEAKLESS_REMOTE_CACHE_TOKEN: 't' })).toThrow(/^LEAKLESS_REMOTE_CACHE_KEY:/);
    expect(() => remoteCacheOf({ 'remote-cache-netns': 'ns' }, {})).toThrow(/only with --remote-cache/);
    expect(
      remoteCacheOf(
        { 'remote-cache': 'http://127.0.0.1:3000', 'remote-cache-netns': 'ns' },
        { LEAKLESS_REMOTE_CACHE_TOKEN: 't', LEAKLESS_REMOTE_CACHE_KEY: 'k' },
      ),
    ).toEqual({ url: 'http://127.0.0.1:3000', token: 't', signatureKey: 'k', team: 'leakless', netns: 'ns' });
  });
  it('--package-order takes sorted or reversed only', async () => {
    const c = capture();
    expect(await main(['iso', '--package-order', 'random'], c.io)).toBe(2);
    expect(c.err).toEqual(['leakless: --package-order must be sorted or reversed (got "random")']);
  });
});

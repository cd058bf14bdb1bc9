import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { needTool, skipUnless } from '@leakless/testing';
import type { SelftestDocument } from '@leakless/selftest';
import { expectedResults, isoAssertions } from './iso-assertions.js';
import { RUNTIME_ASSERTIONS_PATH } from './iso-plan.js';
import { MODULE_LAYER } from './iso-recipes.js';

const doc: SelftestDocument = {
  version: 1,
  policy: 'default',
  release: '0.1.0',
  assertions: [
    { module: 'sysctl', id: 'a', statement: 's', check: { kind: 'sysctl', key: 'k', expected: '1' }, scope: 'system' },
    { module: 'netns', id: 'b', statement: 's', check: { kind: 'ip-routes', expected: [] }, scope: 'netns', netns: 'tbb' },
    {
      module: 'firewall',
      id: 'c',
      statement: 's',
      check: { kind: 'refused-probe', to: 'internet', protocol: 'tcp', port: 80, control: { uid: 106, gid: 112 }, attacker: { uid: 1000, gid: 1000 } },
      scope: 'network',
    },
  ],
};

describe('what a complete self-test reports', () => {
  it('without a network, every assertion but the active probes; on the lab network, all of them', () => {
    expect(expectedResults(doc, false)).toBe(2);
    expect(expectedResults(doc, true)).toBe(3);
  });

  const skip = skipUnless(
    'reading assertions from an ISO',
    needTool('xorriso', ['-version']),
    needTool('mksquashfs', ['-version']),
    needTool('unsquashfs', ['-help']),
  );
  it.skipIf(skip)('reads them from the ISO’s module layer, and says so when the ISO has none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lk-isoa-'));
    try {
      const root = join(dir, 'root');
      const file = join(root, RUNTIME_ASSERTIONS_PATH);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, JSON.stringify(doc));
      mkdirSync(join(dir, 'st', 'live'), { recursive: true });
      execFileSync('mksquashfs', [root, join(dir, 'st', 'live', MODULE_LAYER), '-noappend', '-quiet']);
      execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-o', join(dir, 'x.iso'), join(dir, 'st')], { stdio: 'ignore' });
      expect(await isoAssertions(join(dir, 'x.iso'))).toEqual(doc);
      rmSync(join(dir, 'st', 'live', MODULE_LAYER));
      execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-o', join(dir, 'y.iso'), join(dir, 'st')], { stdio: 'ignore' });
      await expect(isoAssertions(join(dir, 'y.iso'))).rejects.toThrow(/could not extract/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

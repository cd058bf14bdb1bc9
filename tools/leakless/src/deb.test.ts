import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { defaultProfilePath } from '@leakless/policy';
import { defaultPolicyInput } from '@leakless/policy/testing';
import { needTool, skipUnless } from '@leakless/testing';
import { main } from './main.js';
import { capture } from './test/io.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lk-deb-cli-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('leakless deb: bad input exits 2, names the field and writes nothing', () => {
  it('an unknown module', async () => {
    const c = capture();
    const out = join(dir, 'debs');
    expect(await main(['deb', '--config', defaultProfilePath(), '--module', 'nope', '--out', out], c.io)).toBe(2);
    expect(c.err).toEqual([expect.stringMatching(/^leakless: --module: unknown module "nope" \(known: .*sysctl/)]);
    expect(existsSync(out)).toBe(false);
  });

  it('a release version dpkg would refuse', async () => {
    const input = defaultPolicyInput() as { release: { version: string } };
    input.release.version = 'v0.1_beta';
    const config = join(dir, 'policy.yaml');
    writeFileSync(config, stringify(input));
    const c = capture();
    const out = join(dir, 'debs');
    expect(await main(['deb', '--config', config, '--out', out], c.io)).toBe(2);
    expect(c.err).toEqual([expect.stringMatching(/^leakless: .*policy\.yaml: release\.version: "v0\.1_beta" is not a Debian version/)]);
    expect(existsSync(out)).toBe(false);
  });

  it('an unknown option', async () => {
    const c = capture();
    expect(await main(['deb', '--version', '1'], c.io)).toBe(2);
    expect(c.err).toEqual(['leakless: unknown option --version']);
  });
});

const skip = skipUnless('leakless deb', needTool('dpkg-deb', ['--version']));

describe.skipIf(skip)('leakless deb', () => {
  it('writes one package per module, leakless-users and the metapackage', async () => {
    const c = capture();
    const out = join(dir, 'debs');
    expect(await main(['deb', '--config', defaultProfilePath(), '--module', 'sysctl', '--out', out, '--json'], c.io)).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['leakless-sysctl_0.1.0_all.deb', 'leakless-users_0.1.0_all.deb', 'leakless_0.1.0_all.deb']);
    const summary = JSON.parse(c.out.join('\n')) as { packages: { package: string; depends: string[] }[] };
    expect(summary.packages.find((p) => p.package === 'leakless')!.depends).toEqual(['leakless-users (= 0.1.0)', 'leakless-sysctl (= 0.1.0)']);
  });
});

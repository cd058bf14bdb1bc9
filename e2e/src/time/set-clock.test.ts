// The shipped set-clock helper as a process. It runs inside a user namespace
// (root there, no CAP_SYS_TIME on the host), so even a helper that wrongly
// accepted its input could not move this machine's clock; the test also
// checks that the clock did not jump.

import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as htpdate from '@leakless/htpdate';
import { CONFIG_FILE, EXIT, TOOL_PATHS } from '@leakless/htpdate';
import { readPolicyFile } from '@leakless/policy';
import { needRoot, needTool, skipUnless } from '@leakless/testing';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLabDir, writeLabFile } from '../lab/index.js';

const skip = skipUnless('the set-clock helper (e2e/src/time)', needRoot(), needTool('unshare'), needTool('setpriv'), needTool('node'));
let dir: string;
let tool: string;
let conf: string;

const inUserns = (args: readonly string[]) =>
  execa('unshare', ['--user', '--map-root-user', '--', tool, '--config', conf, ...args], { reject: false, timeout: 30_000, env: { PATH: '/usr/bin:/bin' } });

describe.skipIf(skip)('set-clock (the root clock-setting helper)', () => {
  beforeAll(async () => {
    const r = await readPolicyFile(fileURLToPath(new URL('../../../image-config/default.yaml', import.meta.url)));
    if (!r.ok) throw new Error('default policy invalid');
    const e = htpdate.emit(r.policy);
    // where the unprivileged uid of the refusal test can read it, wherever the checkout is
    dir = makeLabDir('lk-setclock-');
    tool = writeLabFile(dir, 'set-clock', e.files.find((f) => f.path === TOOL_PATHS['set-clock'])!.content, 0o755);
    conf = writeLabFile(dir, 'time.conf', e.files.find((f) => f.path === CONFIG_FILE)!.content);
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    [[]],
    [['2030-01-01T00:00:00Z']],
    [['2030-01-01T00:00:00+01:00']],
    [['2030-01-01 00:00:00']],
    [['@1893456000']],
    [['2030-02-30T00:00:00+00:00']],
    [['2030-01-01T00:00:00+00:00', '--keep-tor']],
    [['--keep-tor']],
    [['2030-01-01T00:00:00+00:00\n']],
    [['2020-01-01T00:00:00+00:00']], // before the release
    [['9999-12-31T23:59:59+00:00']], // after the release's ceiling (time.maxYearsAfterRelease)
  ])('refuses %j with exit 8', async (args) => {
    const r = await inUserns(args);
    expect(r.exitCode, String(r.stderr)).toBe(EXIT['invalid-config']);
    expect(String(r.stderr)).toMatch(/refused|usage/);
  });

  it('refuses to run as a non-root user', async () => {
    const r = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', tool, '--config', conf, '2030-01-01T00:00:00+00:00'], {
      reject: false,
    });
    expect(r.exitCode).toBe(EXIT['invalid-config']);
    expect(String(r.stderr)).toMatch(/must run as root/);
  });

  it('a well-formed time reaches date, which cannot set the clock here: exit 9, the clock did not move', async () => {
    const before = Date.now();
    const r = await inUserns(['--keep-tor', '2030-01-01T00:00:00+00:00']);
    expect(r.exitCode, String(r.stderr)).toBe(EXIT['clock-not-set']);
    expect(String(r.stderr)).toMatch(/date --set failed/);
    expect(Math.abs(Date.now() - before)).toBeLessThan(30_000);
  });
});

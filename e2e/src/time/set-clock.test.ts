// The shipped set-clock helper as a process. It runs inside a user namespace
// (root there, no CAP_SYS_TIME on the host), so even a helper that wrongly
// accepted its input could not move this machine's clock; the test also
// checks that the clock did not jump.
import * as htpdate from '@leakless/htpdate';
import { CONFIG_FILE, EXIT, TOOL_PATHS } from '@leakless/htpdate';
import { readPolicyFile } from '@leakless/policy';
import { execa } from 'execa';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireLab } from './lab.js';

const ok = await requireLab(['unshare', 'setpriv', 'node']);
let dir: string;
let tool: string;
let conf: string;

const inUserns = (args: readonly string[]) =>
  execa('unshare', ['--user', '--map-root-user', '--', tool, '--config', conf, ...args], { reject: false, timeout: 30_000, env: { PATH: '/usr/bin:/bin' } });

describe.skipIf(!ok)('set-clock (the root clock-setting helper)', () => {
  beforeAll(async () => {
    const r = await readPolicyFile(fileURLToPath(new URL('../../../image-config/default.yaml', import.meta.url)));
    if (!r.ok) throw new Error('default policy invalid');
    const e = htpdate.emit(r.policy);
    dir = mkdtempSync(join(tmpdir(), 'lk-setclock-'));
    chmodSync(dir, 0o755);
    tool = join(dir, 'set-clock');
    writeFileSync(tool, e.files.find((f) => f.path === TOOL_PATHS['set-clock'])!.content, { mode: 0o755 });
    conf = join(dir, 'time.conf');
    writeFileSync(conf, e.files.find((f) => f.path === CONFIG_FILE)!.content, { mode: 0o644 });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
  ])('refuses %j with exit 8', async (args) => {
    const r = await inUserns(args);
    expect(r.exitCode, String(r.stderr)).toBe(EXIT['invalid-config']);
    expect(String(r.stderr)).toMatch(/refused|usage/);
  });

  it('refuses to run as a non-root user', async () => {
    const r = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', tool, '--config', conf, '2030-01-01T00:00:00+00:00'], { reject: false });
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

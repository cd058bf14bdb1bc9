// The task runners' caches must never turn a host-dependent result into a
// pass: a test run's outcome depends on the uid (root-only lab tests skip
// otherwise), on CI (a missing prerequisite fails under CI=true) and on the
// installed tools. Nx keys its test cache on them (tools/host-fingerprint.mjs);
// turbo, which cannot hash a command's output, does not cache tests at all.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));
// A fresh Nx cache for this run: an entry left by an earlier run (with CI=true)
// must not make the CI=true case below a hit for the wrong reason.
const cache = mkdtempSync(join(tmpdir(), 'lk-nx-cache-'));
afterAll(() => rmSync(cache, { recursive: true, force: true }));
const env = (ci: string | undefined) => {
  const e: Record<string, string> = {
    ...process.env,
    NX_DAEMON: 'false',
    NX_NO_CLOUD: 'true',
    NX_TUI: 'false',
    NX_CACHE_DIRECTORY: cache,
    TURBO_TELEMETRY_DISABLED: '1',
  } as Record<string, string>;
  if (ci === undefined) delete e.CI;
  else e.CI = ci;
  return e;
};

async function nxTest(ci: string | undefined): Promise<string> {
  const r = await execa('npx', ['nx', 'run', '@leakless/testing:test', '--outputStyle=static'], {
    cwd: root,
    env: env(ci),
    extendEnv: false,
    reject: false,
    all: true,
  });
  expect(r.exitCode, r.all).toBe(0);
  return r.all ?? '';
}
const fromCache = (out: string) => /read the output from the cache|\[local cache\]|existing outputs match the cache/.test(out);

describe('task-runner caches', () => {
  it('Nx replays a test run only for the same CI setting (and uid and tools)', { timeout: 180_000 }, async () => {
    await nxTest(undefined);
    expect(fromCache(await nxTest(undefined)), 'the same host and CI setting: a cache hit').toBe(true);
    expect(fromCache(await nxTest('true')), 'CI=true must not replay a run made without it').toBe(false);
  });

  it('turbo never caches a test run', { timeout: 180_000 }, async () => {
    const run = () =>
      execa('npx', ['turbo', 'run', 'test', '--filter=@leakless/testing', '--output-logs=new-only'], {
        cwd: root,
        env: env(undefined),
        extendEnv: false,
        reject: false,
        all: true,
      });
    const first = await run();
    expect(first.exitCode, first.all).toBe(0);
    const second = await run();
    expect(second.exitCode, second.all).toBe(0);
    expect(second.all).not.toMatch(/cache hit|FULL TURBO/);
  });
});

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTree, memoryTree, PATHS } from '@leakless/policy';
import { defaultPolicy } from '@leakless/policy/testing';
import { describe, expect, it } from 'vitest';
import { bundleAll, bundleFile, SHEBANG, TOOLS, writeBundles, type Bundle, type ToolName } from './bundle.js';
import { bundledTool, emit } from './index.js';
import { DEFAULT_CONFIG } from './runtime/config.js';
import { CONFIG_FILE, TOOL_PATHS } from './settings.js';

const tools = Object.keys(TOOLS) as ToolName[];

describe('the built bundles', async () => {
  const fresh: Bundle[] = await bundleAll();

  it.each(tools)('%s in dist/tools is exactly what esbuild builds from the sources now (run `npm run build`)', (tool) => {
    const b = fresh.find((x) => x.tool === tool)!;
    expect(readFileSync(bundleFile(b.tool), 'utf8') === b.code, `packages/htpdate/dist/tools/${tool}.cjs is stale: run npm run build`).toBe(true);
    expect(bundledTool(b.tool)).toBe(b.code);
  });

  it('a tool that was not built is an error naming the build command, not an empty file', () => {
    expect(() => bundledTool('htpdate', '/nonexistent-leakless/')).toThrow(
      /htpdate tool is not built \(\/nonexistent-leakless\/htpdate\.cjs is missing\); run `npm run build`/,
    );
  });

  it('builds the same bytes twice', async () => {
    const again = await bundleAll();
    expect(again.map((b) => b.code)).toEqual(fresh.map((b) => b.code));
  });

  it('bundle only the runtime sources and load only Node built-ins (Debian nodejs, no node_modules in the image)', () => {
    for (const b of fresh) {
      expect(
        b.inputs.every((i) => i.startsWith('src/runtime/') || i.startsWith('src/cli/')),
        b.inputs.join(),
      ).toBe(true);
      const requires = [...b.code.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]!);
      expect(requires.length).toBeGreaterThan(0);
      expect(requires.filter((r) => !r.startsWith('node:'))).toEqual([]);
      expect(b.code.startsWith(`${SHEBANG}\n`)).toBe(true);
    }
  });

  it.each(tools)('%s runs under node and exits 8 (bad configuration) without arguments', (tool) => {
    const r = spawnSync(process.execPath, [bundleFile(tool)], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect(r.status).toBe(8);
    expect(r.stderr).toMatch(/invalid-config/);
  });

  it('parse as Node 18 code (the bookworm nodejs): no syntax newer than the target', () => {
    for (const b of fresh) execFileSync(process.execPath, ['--check', bundleFile(b.tool)]);
    // esbuild's target check is the real guard; spot-check two Node 20+ only spellings
    for (const b of fresh) expect(b.code).not.toMatch(/\bArray\.fromAsync\b|\.toSorted\(/);
  });
});

// A checkout or build under umask 002 (git archive, many CI runners) or 077
// gives files other modes than 0755: the image's modes come from the
// emission, never from a file on disk.
describe('modes come from the emission', () => {
  it('the emitted tools are 0755 and pass their static check whatever the mode of the built files', async () => {
    const p = defaultPolicy();
    const want = emit(p).files.filter((f) => (Object.values(TOOL_PATHS) as string[]).includes(f.path));
    expect(want.map((f) => f.mode)).toEqual(tools.map(() => 0o755));
    const before = tools.map((t) => statSync(bundleFile(t)).mode & 0o777);
    try {
      for (const mode of [0o775, 0o700, 0o644]) {
        for (const t of tools) chmodSync(bundleFile(t), mode);
        const e = emit(p);
        expect(e.files.filter((f) => want.some((w) => w.path === f.path))).toEqual(want);
        const check = e.staticAssertions.find((a) => a.id === 'htpdate.tools-bundled')!;
        expect(await check.check({ tree: memoryTree(buildTree([e])), policy: p, run: async () => ({ exitCode: 127, stdout: '', stderr: '' }) })).toMatchObject({
          ok: true,
        });
      }
    } finally {
      for (const [i, t] of tools.entries()) chmodSync(bundleFile(t), before[i]!);
    }
  });

  it('the build writes the bundles 0755 whatever the umask', async () => {
    const dir = `${mkdtempSync(join(tmpdir(), 'lk-htpdate-bundle-'))}/`;
    const old = process.umask(0o077);
    try {
      await writeBundles(dir);
      for (const t of tools) expect((statSync(bundleFile(t, dir)).mode & 0o777).toString(8)).toBe('755');
    } finally {
      process.umask(old);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the tools’ default configuration file', () => {
  it('is the one the module emits, under the shared leakless directory', () => {
    expect(DEFAULT_CONFIG).toBe(CONFIG_FILE);
    expect(CONFIG_FILE).toBe(`${PATHS.lib}/time.conf`);
  });

  // set-clock once spelled the file itself: after a move it would have read a path nothing writes.
  it.each(tools)('is the only configuration file %s can read by default (no other time.conf path in the bundle)', (tool) => {
    const paths = [...new Set([...bundledTool(tool).matchAll(/["'`](\/[^"'`\s]*time\.conf)["'`]/g)].map((m) => m[1]))];
    expect(paths).toEqual([CONFIG_FILE]);
  });
});

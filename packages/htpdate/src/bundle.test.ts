import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bundleAll, bundleFile, SHEBANG, TOOLS, type Bundle } from './bundle.js';
import { bundledTool } from './index.js';

describe('the committed bundles', async () => {
  const fresh: Bundle[] = await bundleAll();

  it.each(Object.keys(TOOLS))('%s is exactly what esbuild builds from the sources now (run `npm run bundle -w packages/htpdate`)', (tool) => {
    const b = fresh.find((x) => x.tool === tool)!;
    expect(readFileSync(bundleFile(b.tool), 'utf8') === b.code, `packages/htpdate/bundle/${tool}.cjs is stale`).toBe(true);
    expect(bundledTool(b.tool)).toBe(b.code);
    expect(statSync(bundleFile(b.tool)).mode & 0o777).toBe(0o755);
  });

  it('builds the same bytes twice', async () => {
    const again = await bundleAll();
    expect(again.map((b) => b.code)).toEqual(fresh.map((b) => b.code));
  });

  it('bundle only the runtime sources and load only Node built-ins (Debian nodejs, no node_modules in the image)', () => {
    for (const b of fresh) {
      expect(b.inputs.every((i) => i.startsWith('src/runtime/') || i.startsWith('src/cli/')), b.inputs.join()).toBe(true);
      const requires = [...b.code.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]!);
      expect(requires.length).toBeGreaterThan(0);
      expect(requires.filter((r) => !r.startsWith('node:'))).toEqual([]);
      expect(b.code.startsWith(`${SHEBANG}\n`)).toBe(true);
    }
  });

  it.each(Object.keys(TOOLS))('%s runs under node and exits 8 (bad configuration) without arguments', (tool) => {
    const r = spawnSync(process.execPath, [bundleFile(tool as keyof typeof TOOLS)], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect(r.status).toBe(8);
    expect(r.stderr).toMatch(/invalid-config/);
  });

  it('parse as Node 18 code (the bookworm nodejs): no syntax newer than the target', () => {
    for (const b of fresh) execFileSync(process.execPath, ['--check', bundleFile(b.tool)]);
    // esbuild's target check is the real guard; spot-check two Node 20+ only spellings
    for (const b of fresh) expect(b.code).not.toMatch(/\bArray\.fromAsync\b|\.toSorted\(/);
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, repoFiles } from './repo-files.js';

// GPL-3.0-or-later: the licence of Tails, whose design leakless follows.
const LICENSE_ID = 'GPL-3.0-or-later';

describe('licence', () => {
  it('LICENSE is the full text of the GNU GPL version 3', () => {
    const text = readFileSync(join(REPO_ROOT, 'LICENSE'), 'utf8');
    expect(text).toMatch(/^\s*GNU GENERAL PUBLIC LICENSE\s+Version 3, 29 June 2007/);
    expect(text).toContain('TERMS AND CONDITIONS');
    expect(text).toContain('END OF TERMS AND CONDITIONS');
    expect(text.length).toBeGreaterThan(30_000);
  });

  it(`every package.json of the workspace says "license": "${LICENSE_ID}"`, () => {
    const root = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
    // the root and every package the workspaces globs name (packages/*, tools/*, e2e)
    const inWorkspace = root.workspaces.map((g) => new RegExp(`^${g.replace(/\*/g, '[^/]+')}/package\\.json$`));
    const manifests = repoFiles().filter((p) => p === 'package.json' || inWorkspace.some((re) => re.test(p)));
    expect(manifests).toContain('tools/repo/package.json');
    expect(manifests.length).toBeGreaterThan(10);
    const wrong = manifests
      .map((p) => ({ p, license: (JSON.parse(readFileSync(join(REPO_ROOT, p), 'utf8')) as { license?: unknown }).license }))
      .filter((m) => m.license !== LICENSE_ID)
      .map((m) => `${m.p}: ${JSON.stringify(m.license)}`);
    expect(wrong).toEqual([]);
  });
});

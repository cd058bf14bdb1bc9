// The npm packages as a downstream project gets them: every published
// workspace package packs (npm pack), carries its LICENSE (the repository's,
// byte for byte), README (with an example) and CHANGELOG (with its version),
// and installs into a scratch project outside the repository, offline, from
// the packed tarballs and the npm cache. There, with the types the tarballs
// ship, TypeScript compiles every README example and a program that emits
// each module from the default profile shipped in @leakless/policy, and the
// program runs and emits what the repository emits.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allModules } from '@leakless/crosscheck';
import { readDefaultPolicy } from '@leakless/policy';
import { REPO_ROOT } from './repo-files.js';

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  license?: string;
}

/** The workspace packages a downstream project can install (not private). */
function published(): { dir: string; manifest: Manifest }[] {
  return ['packages', 'tools']
    .flatMap((top) =>
      readdirSync(join(REPO_ROOT, top), { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => join(top, d.name)),
    )
    .filter((dir) => {
      try {
        readFileSync(join(REPO_ROOT, dir, 'package.json'));
        return true;
      } catch {
        return false;
      }
    })
    .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as Manifest }))
    .filter((p) => !p.manifest.private)
    .sort((a, b) => (a.manifest.name < b.manifest.name ? -1 : 1));
}

/** The modules a downstream distro takes one at a time (every emit-ing package but crosscheck). */
const MODULE_PACKAGES = allModules.filter((m) => m.name !== 'crosscheck').map((m) => `@leakless/${m.name}`);

const run = (cmd: string, args: readonly string[], cwd: string) =>
  execFileSync(cmd, [...args], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, npm_config_update_notifier: 'false' },
  });

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  dev?: boolean;
  devOptional?: boolean;
  link?: boolean;
  [k: string]: unknown;
}

/**
 * A lockfile for the scratch project: the tarballs, and for every package
 * they need, the repository's own lock entry (same version and integrity, so
 * npm ci takes it from the cache). Resolved the way Node resolves: the
 * nearest node_modules up from the package that needs it.
 */
function scratchLock(pkgs: readonly { dir: string; manifest: Manifest }[], tgz: Map<string, string>, integrity: Map<string, string>): object {
  const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const byName = new Map(pkgs.map((p) => [p.manifest.name, p]));
  const out: Record<string, LockEntry> = {
    '': { name: 'lk-scratch', dependencies: Object.fromEntries([...tgz].map(([n, f]) => [n, `file:${f}`])) },
  };
  const queue: { repoKey: string; scratchKey: string; deps: Record<string, string> }[] = [];
  for (const [name, file] of tgz) {
    const p = byName.get(name)!;
    const m = JSON.parse(readFileSync(join(REPO_ROOT, p.dir, 'package.json'), 'utf8')) as Manifest & { dependencies?: Record<string, string> };
    out[`node_modules/${name}`] = {
      version: m.version,
      resolved: `file:${file}`,
      integrity: integrity.get(name)!,
      license: m.license,
      dependencies: m.dependencies ?? {},
    };
    queue.push({ repoKey: p.dir, scratchKey: `node_modules/${name}`, deps: m.dependencies ?? {} });
  }
  const find = (from: string, dep: string): string | undefined => {
    for (let base = from; ; ) {
      const k = `${base}/node_modules/${dep}`;
      if (lock.packages[k]) return k;
      const i = base.lastIndexOf('/node_modules/');
      if (i < 0) break;
      base = base.slice(0, i);
    }
    return lock.packages[`node_modules/${dep}`] ? `node_modules/${dep}` : undefined;
  };
  while (queue.length) {
    const { repoKey, scratchKey, deps } = queue.shift()!;
    for (const dep of Object.keys(deps)) {
      if (dep.startsWith('@leakless/')) continue;
      const found = find(repoKey, dep);
      if (!found) continue; // an optional dependency of another platform
      const target = found.startsWith('node_modules/') ? found : `${scratchKey}/${found.slice(repoKey.length + 1)}`;
      if (out[target]) continue;
      const { dev: _d, devOptional: _o, ...entry } = lock.packages[found]!;
      out[target] = entry;
      queue.push({ repoKey: found, scratchKey: target, deps: { ...entry.dependencies, ...entry.optionalDependencies } });
    }
  }
  return { name: 'lk-scratch', lockfileVersion: 3, requires: true, packages: out };
}

/** The first fenced block of a language in a Markdown text. */
function firstBlock(md: string, lang: string): string | undefined {
  return new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(md)?.[1];
}

describe('npm packages', () => {
  const packages = published();
  const work = mkdtempSync(join(tmpdir(), 'lk-npm-pack-'));
  const tarballs = join(work, 'tarballs');
  const scratch = join(work, 'scratch');
  const files = new Map<string, string[]>();
  const tgz = new Map<string, string>();
  const integrity = new Map<string, string>();
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  beforeAll(() => {
    mkdirSync(tarballs, { recursive: true });
    const missing = packages.filter((p) => {
      try {
        readFileSync(join(REPO_ROOT, p.dir, 'dist', 'index.js'));
        return false;
      } catch {
        return true;
      }
    });
    if (missing.length) throw new Error(`not built: ${missing.map((p) => p.dir).join(', ')} (npm run build)`);
    const out = run(
      'npm',
      ['pack', '--ignore-scripts', '--json', '--pack-destination', tarballs, ...packages.flatMap((p) => ['-w', p.manifest.name])],
      REPO_ROOT,
    );
    for (const r of JSON.parse(out) as { name: string; filename: string; integrity: string; files: { path: string }[] }[]) {
      integrity.set(r.name, r.integrity);
      files.set(
        r.name,
        r.files.map((f) => f.path),
      );
      tgz.set(r.name, join(tarballs, r.filename));
    }
  }, 120_000);

  it('every published package packs', () => {
    expect([...tgz.keys()].sort()).toEqual(packages.map((p) => p.manifest.name));
    expect(packages.map((p) => p.manifest.name)).toEqual(
      expect.arrayContaining(['@leakless/policy', '@leakless/deb', '@leakless/apt-repo', ...MODULE_PACKAGES]),
    );
  });

  it('each tarball has the licence text, a README with an example, its changelog, built code and types, and no tests', () => {
    const license = readFileSync(join(REPO_ROOT, 'LICENSE'), 'utf8');
    const problems: string[] = [];
    for (const { dir, manifest } of packages) {
      const list = files.get(manifest.name) ?? [];
      for (const f of ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json', 'dist/index.js', 'dist/index.d.ts'])
        if (!list.includes(f)) problems.push(`${manifest.name}: no ${f}`);
      if (list.some((f) => /\.test\.[jt]s$/.test(f))) problems.push(`${manifest.name}: ships tests`);
      const inTar = (f: string) => run('tar', ['-xzOf', tgz.get(manifest.name)!, `package/${f}`], REPO_ROOT);
      if (list.includes('LICENSE') && inTar('LICENSE') !== license) problems.push(`${manifest.name}: LICENSE differs from the repository's (${dir}/LICENSE)`);
      if (manifest.license !== 'GPL-3.0-or-later') problems.push(`${manifest.name}: license ${manifest.license}`);
      if (list.includes('CHANGELOG.md') && !inTar('CHANGELOG.md').includes(`## ${manifest.version}`))
        problems.push(`${manifest.name}: CHANGELOG.md has no "## ${manifest.version}"`);
      if (list.includes('README.md')) {
        const readme = inTar('README.md');
        if (!firstBlock(readme, 'ts') && !firstBlock(readme, 'sh')) problems.push(`${manifest.name}: README.md has no example`);
        if (!readme.includes('GPL-3.0-or-later')) problems.push(`${manifest.name}: README.md does not name the licence`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('installs offline into a project outside the repository; the README examples and a program emitting every module compile with the shipped types and run', async () => {
    mkdirSync(join(scratch, 'src'), { recursive: true });
    mkdirSync(join(scratch, 'examples'), { recursive: true });
    // every @leakless package from its tarball, their dependencies from the npm cache (by the repository's lockfile:
    // the cache holds package tarballs, not registry metadata, so a semver range cannot be resolved offline)
    const deps = Object.fromEntries([...tgz].map(([name, file]) => [name, `file:${file}`]));
    writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'lk-scratch', private: true, type: 'module', dependencies: deps }, null, 2));
    writeFileSync(join(scratch, 'package-lock.json'), JSON.stringify(scratchLock(packages, tgz, integrity), null, 2));
    run('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], scratch);
    const imports = MODULE_PACKAGES.map((p, i) => `import { emit as emit${i}, name as name${i} } from '${p}';`).join('\n');
    writeFileSync(
      join(scratch, 'src', 'emit-all.ts'),
      `${imports}
import { readDefaultPolicy, type Emission } from '@leakless/policy';

const r = await readDefaultPolicy();
if (!r.ok) throw new Error(r.issues.map((i) => i.message).join('; '));
const emitted: Record<string, Emission> = { ${MODULE_PACKAGES.map((_, i) => `[name${i}]: emit${i}(r.policy)`).join(', ')} };
console.log(JSON.stringify(Object.fromEntries(Object.entries(emitted).map(([k, e]) => [k, e.files.map((f) => f.path)]))));
`,
    );
    for (const { manifest } of packages) {
      const example = firstBlock(run('tar', ['-xzOf', tgz.get(manifest.name)!, 'package/README.md'], REPO_ROOT), 'ts');
      if (example) writeFileSync(join(scratch, 'examples', `${manifest.name.replace('@leakless/', '')}.ts`), `${example}\nexport {};\n`);
    }
    writeFileSync(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({
        // the compiler and Node's types are the repository's (a downstream project brings its own); every
        // other declaration resolves inside the scratch project, from what the tarballs ship
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2023'],
          types: ['node'],
          typeRoots: [join(REPO_ROOT, 'node_modules', '@types')],
          strict: true,
          outDir: 'dist',
          skipLibCheck: false,
        },
        include: ['src', 'examples'],
      }),
    );
    // not installed from the repository: the packages resolve inside the scratch project
    const resolved = run('node', ['-p', "require.resolve('@leakless/policy/package.json')"], scratch).trim();
    expect(resolved.startsWith(scratch)).toBe(true);
    try {
      run(join(REPO_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', '.'], scratch);
    } catch (e) {
      throw new Error(`tsc in the scratch project: ${(e as { stdout?: string }).stdout ?? (e as Error).message}`);
    }
    const out = JSON.parse(run('node', [join(scratch, 'dist', 'src', 'emit-all.js')], scratch)) as Record<string, string[]>;
    const r = await readDefaultPolicy();
    if (!r.ok) throw new Error('default policy invalid');
    const here = Object.fromEntries(allModules.filter((m) => m.name !== 'crosscheck').map((m) => [m.name, m.emit(r.policy).files.map((f) => f.path)]));
    expect(out).toEqual(here);
  }, 300_000);
});

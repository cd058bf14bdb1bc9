import { describe, expect, it, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { defaultProfilePath } from '@leakless/policy';
import { defaultPolicyInput, invalidCases } from '@leakless/policy/testing';
import { main } from './main.js';
import { capture } from './test/io.js';

const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
const DEFAULT_CONFIG = defaultProfilePath();

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lk-cli-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function snapshotDir(d: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const e of readdirSync(join(d, rel), { withFileTypes: true })) {
      const r = join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else out[r] = readFileSync(join(d, r), 'utf8');
    }
  };
  walk('');
  return out;
}

describe('leakless emit', () => {
  it('writes the tree and a bit-identical tarball on every run', async () => {
    const a = capture();
    const args = (n: number) => ['emit', '--config', DEFAULT_CONFIG, '--out', join(dir, `tree${n}`), '--tar', join(dir, `t${n}.tar`)];
    expect(await main(args(1), a.io)).toBe(0);
    expect(await main(args(2), capture().io)).toBe(0);
    expect(readFileSync(join(dir, 't1.tar')).equals(readFileSync(join(dir, 't2.tar')))).toBe(true);
    expect(snapshotDir(join(dir, 'tree1'))).toEqual(snapshotDir(join(dir, 'tree2')));
    expect(a.out.join('\n')).toMatch(/sha256 [0-9a-f]{64}/);
  });

  it('prints a machine-readable summary with --json', async () => {
    const c = capture();
    expect(await main(['emit', '--config', DEFAULT_CONFIG, '--out', join(dir, 't'), '--tar', join(dir, 't.tar'), '--json'], c.io)).toBe(0);
    const s = JSON.parse(c.out.join('\n'));
    expect(s.policy).toBe('default');
    expect(s.tarball.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(s.modules.map((m: { name: string }) => m.name)).toContain('sysctl');
  });

  it('emits a single module for a downstream distro with --module', async () => {
    const c = capture();
    expect(await main(['emit', '--config', DEFAULT_CONFIG, '--module', 'sysctl', '--out', join(dir, 't'), '--tar', join(dir, 't.tar'), '--json'], c.io)).toBe(
      0,
    );
    expect(JSON.parse(c.out.join('\n')).modules.map((m: { name: string }) => m.name)).toEqual(['sysctl']);
    expect(readdirSync(join(dir, 't')).sort()).toEqual(['usr']);
    expect(readdirSync(join(dir, 't', 'usr', 'lib')).sort()).toEqual(['modprobe.d', 'sysctl.d']);
  });

  it('reads a downstream JSON config', async () => {
    const p = defaultPolicyInput();
    p.name = 'downstream';
    p.tor.socksPorts[0].port = 9150;
    writeFileSync(join(dir, 'other.json'), JSON.stringify(p));
    const c = capture();
    expect(await main(['emit', '--config', join(dir, 'other.json'), '--out', join(dir, 't'), '--tar', join(dir, 't.tar'), '--json'], c.io)).toBe(0);
    expect(JSON.parse(c.out.join('\n')).policy).toBe('downstream');
  });

  describe('bad input: exit 2, the field path and a one-line reason, nothing written', () => {
    const cases = [
      ...invalidCases.map((c) => ({
        name: c.name,
        path: c.path,
        file: 'bad.yaml',
        text: () => {
          const p = defaultPolicyInput();
          c.mutate(p);
          return stringify(p);
        },
      })),
      { name: 'YAML syntax error', path: 'bad.yaml', file: 'bad.yaml', text: () => 'version: 1\n  name: [unclosed\n' },
      { name: 'duplicate YAML key', path: 'bad.yaml', file: 'bad.yaml', text: () => 'version: 1\nversion: 1\n' },
      { name: 'JSON syntax error', path: 'bad.json', file: 'bad.json', text: () => '{"version": 1,' },
    ];
    expect(cases.length).toBeGreaterThanOrEqual(12);

    it.each(cases)('$name', async ({ path, file, text }) => {
      // a previous good emit that must survive untouched
      const tree = join(dir, 'tree');
      const tar = join(dir, 'out.tar');
      expect(await main(['emit', '--config', DEFAULT_CONFIG, '--out', tree, '--tar', tar], capture().io)).toBe(0);
      const before = { tree: snapshotDir(tree), tar: readFileSync(tar) };
      writeFileSync(join(dir, file), text());
      const c = capture();
      expect(await main(['emit', '--config', join(dir, file), '--out', tree, '--tar', tar], c.io)).toBe(2);
      expect(c.out).toEqual([]);
      expect(c.err.length).toBeGreaterThan(0);
      for (const line of c.err) expect(line).not.toMatch(/\n/);
      expect(c.err.some((l) => l.includes(`: ${path}: `) || l.includes(`${path}: `))).toBe(true);
      expect(snapshotDir(tree)).toEqual(before.tree);
      expect(readFileSync(tar).equals(before.tar)).toBe(true);
      expect(readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]); // no staging leftovers
    });
  });

  it('a bad config never creates outputs that did not exist', async () => {
    const p = defaultPolicyInput();
    p.users[2].uid = 1000;
    writeFileSync(join(dir, 'bad.yaml'), stringify(p));
    expect(await main(['emit', '--config', join(dir, 'bad.yaml'), '--out', join(dir, 't'), '--tar', join(dir, 't.tar')], capture().io)).toBe(2);
    expect(existsSync(join(dir, 't'))).toBe(false);
    expect(existsSync(join(dir, 't.tar'))).toBe(false);
  });

  it('rejects unknown options, commands and modules with exit 2', async () => {
    for (const argv of [['emit', '--nope'], ['frobnicate'], ['emit', '--out'], ['emit', '--module', 'nope', '--config', DEFAULT_CONFIG], ['emit', 'extra']]) {
      const c = capture();
      expect(await main(argv, c.io), argv.join(' ')).toBe(2);
      expect(c.err.join('\n')).toMatch(/^leakless: /);
    }
  });

  it('the build commands refuse a bad --accel or --fakemachine in one line naming it, before anything runs', async () => {
    for (const [argv, msg] of [
      [['iso', '--accel', 'fast'], /^leakless: --accel must be auto, kvm or tcg \(got "fast"\)$/],
      [['bench', '--fakemachine', 'maybe'], /^leakless: --fakemachine must be auto, on or off \(got "maybe"\)$/],
      [['bench', '--json', 'x'], /^leakless: bench takes no arguments \(got "x"\)$/],
    ] as const) {
      const c = capture();
      expect(await main([...argv], c.io), argv.join(' ')).toBe(2);
      expect(c.err).toEqual([expect.stringMatching(msg)]);
      expect(c.out).toEqual([]);
    }
  });

  it('has --help on every command', async () => {
    for (const argv of [['--help'], ['emit', '--help'], ['check', '--help'], ['help', 'emit']]) {
      const c = capture();
      expect(await main(argv, c.io), argv.join(' ')).toBe(0);
      expect(c.out.join('\n')).toMatch(/^usage: leakless/);
    }
  });
});

describe('leakless check', () => {
  it('passes on a fresh emit and prints the table', async () => {
    await main(['emit', '--config', DEFAULT_CONFIG, '--out', join(dir, 't'), '--tar', join(dir, 't.tar')], capture().io);
    const c = capture();
    expect(await main(['check', '--config', DEFAULT_CONFIG, '--tree', join(dir, 't')], c.io)).toBe(0);
    expect(c.out.join('\n')).toMatch(/sysctl\.pmtud .* ok/);
    expect(c.out.join('\n')).toMatch(/tree\.matches-policy .* ok/);
  });

  it('fails (exit 1) on a tampered tree and names the assertion', async () => {
    await main(['emit', '--config', DEFAULT_CONFIG, '--out', join(dir, 't'), '--tar', join(dir, 't.tar')], capture().io);
    const f = join(dir, 't/usr/lib/sysctl.d/zz-leakless-pmtud.conf');
    writeFileSync(f, readFileSync(f, 'utf8').replace('= 1', '= 0'));
    writeFileSync(join(dir, 't/etc/extra.conf'), 'x\n');
    const c = capture();
    expect(await main(['check', '--config', DEFAULT_CONFIG, '--tree', join(dir, 't'), '--json'], c.io)).toBe(1);
    const r = JSON.parse(c.out.join('\n'));
    const failed = r.results.filter((x: { ok: boolean }) => !x.ok).map((x: { id: string }) => x.id);
    expect(failed).toEqual(expect.arrayContaining(['sysctl.pmtud', 'sysctl.values', 'tree.matches-policy']));
  });

  it('drift: the committed chroot-includes/ is exactly what the default policy emits', async () => {
    // Content and executable bit only: git keeps no other mode bits, so a clone
    // has 0644 where the tarball (what the image gets) has 0600. The mode-aware
    // static assertions run on a fresh emit above.
    const c = capture();
    await main(['check', '--config', DEFAULT_CONFIG, '--tree', join(ROOT, 'chroot-includes'), '--json'], c.io);
    const r = JSON.parse(c.out.join('\n'));
    expect(r.results.find((x: { id: string }) => x.id === 'tree.matches-policy')).toMatchObject({ ok: true });
  });
});

describe('the installed binary', () => {
  it('runs from a copy of the repo root with the default config (npx leakless emit)', async () => {
    cpSync(join(ROOT, 'image-config'), join(dir, 'image-config'), { recursive: true });
    const r = await execa('node', [join(ROOT, 'tools/leakless/bin/leakless.js'), 'emit'], { cwd: dir, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(existsSync(join(dir, 'chroot-includes/usr/lib/sysctl.d/zz-leakless-pmtud.conf'))).toBe(true);
    expect(existsSync(join(dir, 'dist/chroot-includes.tar'))).toBe(true);
  });
});

import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assemble, emission, memoryTree, readDefaultPolicy, type Policy } from '@leakless/policy';
import { allModules } from '@leakless/crosscheck';
import { needTool, skipUnless } from '@leakless/testing';
import { USERS_SH } from '@leakless/image';
import {
  buildDebs,
  controlFile,
  debianVersionProblem,
  DebInputError,
  DIVERTED,
  inputProblems,
  installedAssertions,
  maskedUnitsOf,
  planDebs,
  accountsTsv,
  usersOf,
  type DebInput,
} from './index.js';

async function defaultInput(): Promise<DebInput & { policy: Policy }> {
  const r = await readDefaultPolicy();
  if (!r.ok) throw new Error('default policy invalid');
  const emissions = allModules.map((m) => m.emit(r.policy));
  return {
    policy: r.policy,
    emissions,
    users: usersOf(assemble(r.policy, allModules)),
    usersTsv: accountsTsv(assemble(r.policy, allModules)),
    version: r.policy.document.release.version,
    sourceDateEpoch: r.policy.sourceDateEpoch,
    policyName: r.policy.name,
  };
}

describe('Debian versions', () => {
  it.each(['0.1.0', '1:2.3-1', '2.0~rc1+git5', '1.0-1-2'])('accepts %s', (v) => expect(debianVersionProblem(v)).toBeUndefined());
  it.each([
    ['v0.1', /start with a digit/],
    ['0.1_beta', /only letters, digits/],
    ['0.1 beta', /only letters, digits/],
    ['a:1', /start with a digit/],
    ['1.0-', /revision .* is empty/],
    ['', /start with a digit|empty/],
  ])('refuses %j', (v, why) => expect(debianVersionProblem(v)).toMatch(why));
});

describe('the plan of the default policy', async () => {
  const inp = await defaultInput();
  const plan = planDebs(inp);
  const byName = new Map(plan.packages.map((p) => [p.name, p]));

  it('has leakless-users, one package per module that installs something, and the metapackage', () => {
    const modules = inp.emissions
      .filter((e) => e.files.length || e.units.length || e.users.length || maskedUnitsOf(e).length)
      .map((e) => `leakless-${e.module}`);
    expect(plan.packages.map((p) => p.name)).toEqual(['leakless-users', ...modules, 'leakless']);
    expect(byName.get('leakless')!.depends).toEqual(['leakless-users (= 0.1.0)', ...modules.map((m) => `${m} (= 0.1.0)`)]);
    for (const m of modules) expect(byName.get(m)!.preDepends).toEqual(['leakless-users (= 0.1.0)']);
  });

  it('ships every emitted file at its path, except the diverted ones, which go to a vendor copy', () => {
    for (const e of inp.emissions) {
      const p = byName.get(`leakless-${e.module}`);
      for (const f of e.files) {
        const shipped = p?.files.find((x) => x.path === (DIVERTED[f.path] ? `/usr/share/leakless${f.path}` : f.path));
        expect(shipped?.content.toString(), f.path).toBe(f.content);
        if (!DIVERTED[f.path]) expect(shipped?.mode, f.path).toBe(f.mode);
      }
    }
  });

  it('diverts the torrc of tor and makes every other /etc file a conffile', () => {
    const tor = byName.get('leakless-tor-config')!;
    expect(tor.diversions.map((d) => d.path)).toContain('/etc/tor/torrc');
    expect(tor.scripts.postinst).toContain(
      "dpkg-divert --quiet --package leakless-tor-config --add --rename --divert '/etc/tor/torrc.leakless-orig' '/etc/tor/torrc'",
    );
    expect(tor.scripts.postrm).toContain(
      "dpkg-divert --quiet --package leakless-tor-config --remove --rename --divert '/etc/tor/torrc.leakless-orig' '/etc/tor/torrc'",
    );
    for (const p of plan.packages) {
      for (const f of p.files) if (f.path.startsWith('/etc/')) expect(p.conffiles, f.path).toContain(f.path);
      for (const d of p.diversions) expect(p.files.some((f) => f.path === d.path)).toBe(false);
    }
  });

  it('creates every policy and module account in leakless-users, with its fixed ids', () => {
    const pre = byName.get('leakless-users')!.scripts.preinst!;
    for (const u of inp.users) expect(pre).toContain(`\n${u.name}\t${u.uid}\t${u.gid}\t${u.home}\t${u.shell}\t`);
    expect(pre).toContain('debian-tor\t106\t112\t/var/lib/tor\t/bin/false\tno-home\t');
    expect(pre).toContain(USERS_SH);
  });

  it('enables the units it ships with debhelper’s snippet and purges them, masks what the emission masks', () => {
    for (const e of inp.emissions) {
      const p = byName.get(`leakless-${e.module}`);
      for (const u of maskedUnitsOf(e)) {
        expect(p!.scripts.postinst).toContain(`mask_unit '${u}'`);
        expect(p!.scripts.postrm).toContain(`/etc/systemd/system/${u}`);
      }
    }
    const fw = byName.get('leakless-firewall')!;
    expect(fw.scripts.postinst).toContain("deb-systemd-helper enable 'leakless-firewall.service'");
    expect(fw.scripts.postrm).toContain("deb-systemd-helper purge 'leakless-firewall.service'");
  });

  it('writes a control file dpkg accepts: fields, folded description', () => {
    const c = controlFile(byName.get('leakless-tor-config')!, plan.maintainer);
    expect(c).toMatch(/^Package: leakless-tor-config\nVersion: 0\.1\.0\nArchitecture: all\n/);
    expect(c).toMatch(/\nDepends: apt-transport-tor, tor, torsocks\n/);
    for (const l of c.split('\n').filter((x) => x.startsWith(' '))) expect(l.length).toBeLessThanOrEqual(80);
  });
});

describe('bad input', async () => {
  const inp = await defaultInput();
  it('a path two modules claim names both packages', () => {
    const clash = [
      emission('alpha', { files: [{ path: '/usr/lib/leakless/x', content: 'a', mode: 0o644, clause: 't' }] }),
      emission('beta', { files: [{ path: '/usr/lib/leakless/x', content: 'b', mode: 0o644, clause: 't' }] }),
    ];
    expect(() => planDebs({ ...inp, emissions: clash })).toThrow(DebInputError);
    expect(inputProblems({ ...inp, emissions: clash }).map((p) => p.message)).toEqual([
      'files: /usr/lib/leakless/x is claimed by both leakless-alpha and leakless-beta',
    ]);
  });
  it('a file one module ships where another has a directory', () => {
    const clash = [
      emission('alpha', { files: [{ path: '/usr/lib/leakless/d', content: 'a', mode: 0o644, clause: 't' }] }),
      emission('beta', { files: [{ path: '/usr/lib/leakless/d/f', content: 'b', mode: 0o644, clause: 't' }] }),
    ];
    expect(inputProblems({ ...inp, emissions: clash }).map((p) => p.field)).toEqual(['files']);
  });
  it('a version dpkg would refuse names release.version', () => {
    expect(() => planDebs({ ...inp, version: 'v1' })).toThrow(/^release\.version: "v1" is not a Debian version/);
  });
});

const skip = skipUnless('building .deb files', needTool('dpkg-deb', ['--version']));

describe.skipIf(skip)('built packages', async () => {
  const inp = await defaultInput();
  const work = mkdtempSync(join(tmpdir(), 'lk-deb-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('two builds give identical bytes', async () => {
    const a = await buildDebs(planDebs(inp), join(work, 'a'));
    const b = await buildDebs(planDebs(inp), join(work, 'b'));
    expect(a.debs.map((d) => d.sha256)).toEqual(b.debs.map((d) => d.sha256));
    for (const d of a.debs) expect(readFileSync(d.file).equals(readFileSync(d.file.replace('/a/', '/b/')))).toBe(true);
  });

  it('dpkg reads back names, modes, owners, conffiles and scripts', async () => {
    const r = await buildDebs(planDebs(inp), join(work, 'c'));
    const tor = r.debs.find((d) => d.name === 'leakless-tor-config')!;
    expect(tor.file).toMatch(/leakless-tor-config_0\.1\.0_all\.deb$/);
    const contents = execFileSync('dpkg-deb', ['--contents', tor.file], { encoding: 'utf8' });
    expect(contents).toMatch(/-rw-r--r-- root\/root .* \.\/usr\/share\/leakless\/etc\/tor\/torrc\n/);
    expect(contents).not.toMatch(/ \.\/etc\/tor\/torrc\n/);
    const info = execFileSync('dpkg-deb', ['--info', tor.file], { encoding: 'utf8' });
    expect(info).toContain('Pre-Depends: leakless-users (= 0.1.0)');
    expect(execFileSync('dpkg-deb', ['--info', tor.file, 'conffiles'], { encoding: 'utf8' })).toContain('/etc/apt/apt.conf.d/');
    for (const d of r.debs) {
      // every maintainer script parses as POSIX sh
      for (const s of ['preinst', 'postinst', 'prerm', 'postrm']) {
        let text: string;
        try {
          text = execFileSync('dpkg-deb', ['--info', d.file, s], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
        } catch {
          continue;
        }
        execFileSync('sh', ['-n'], { input: text });
      }
    }
  });
});

describe('installed-root assertions', async () => {
  const r = await readDefaultPolicy();
  if (!r.ok) throw new Error('default policy invalid');
  const assembly = assemble(r.policy, allModules);
  const users = usersOf(assembly);
  const root = mkdtempSync(join(tmpdir(), 'lk-installed-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const byId = (id: string) => installedAssertions(assembly, root).find((a) => a.id === id)!;
  const ctx = { tree: memoryTree(assembly.tree), policy: r.policy, run: async () => ({ exitCode: 1, stdout: '', stderr: '' }) };
  const writeRoot = (uidOf: (u: (typeof users)[number]) => number) => {
    for (const f of assembly.tree.files) {
      mkdirSync(join(root, dirname(f.path)), { recursive: true });
      writeFileSync(join(root, f.path), f.content);
      chmodSync(join(root, f.path), f.mode);
    }
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc/passwd'), users.map((u) => `${u.name}:x:${uidOf(u)}:${u.gid}::${u.home}:${u.shell}\n`).join(''));
    writeFileSync(join(root, 'etc/group'), users.map((u) => `${u.name}:x:${u.gid}:\n`).join(''));
  };

  it('pass on a root that has every file and account', async () => {
    writeRoot((u) => u.uid);
    expect(await byId('installed.files').check(ctx)).toMatchObject({ ok: true });
    expect(await byId('installed.users').check(ctx)).toMatchObject({ ok: true });
  });
  it('name a missing file, a changed mode and a renumbered account', async () => {
    writeRoot((u) => (u.name === 'debian-tor' ? 100 : u.uid));
    rmSync(join(root, '/etc/tor/torrc'));
    chmodSync(join(root, assembly.tree.files.find((f) => f.mode === 0o755)!.path), 0o644);
    const files = await byId('installed.files').check(ctx);
    expect(files.ok).toBe(false);
    expect(files.detail).toMatch(/\/etc\/tor\/torrc missing/);
    expect(files.detail).toMatch(/mode 644, emitted 755/);
    expect((await byId('installed.users').check(ctx)).detail).toMatch(/debian-tor is 100:112, the policy says 106:112/);
  });
  it('units: a unit systemctl does not report enabled fails', async () => {
    const res = await byId('installed.units').check(ctx);
    expect(res.ok).toBe(false);
    expect(res.detail).toMatch(/leakless-firewall\.service: exit 1 \(want enabled\)/);
  });
});

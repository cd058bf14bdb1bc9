// The Debian packages end to end (npm run e2e): `leakless deb` builds them
// twice (same bytes), lintian finds no error in any, a local apt repository
// (@leakless/apt-repo) serves them to a clean bookworm chroot (mmdebstrap,
// from the host's mirror), one apt transaction installs `leakless`, and
// `leakless check --installed` passes on that root filesystem (every static
// assertion, the fixed uids, the units). The diverted torrc is leakless',
// reinstalling tor leaves it in place, and purging every leakless package
// gives a system equal to one that never had them (piuparts-style: a
// reference chroot with the same dependencies, file list and /etc digests
// compared). Figures (sizes, build, install and purge times, lintian) go to
// dist/e2e-deb/report.json.
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeAptRepo } from '@leakless/apt-repo';
import { DIVERTED, ESSENTIAL } from '@leakless/deb';
import { resolveSources } from '@leakless/image';
import { needRoot, needTool, skipUnless } from '@leakless/testing';
import { cache, cli, installHint, repo, sharedIso } from './shared.js';

const work = join(repo, 'dist', 'e2e-deb');

const skip = skipUnless(
  'the Debian packages suite',
  needRoot('it bootstraps chroots and installs packages in them'),
  needTool('mmdebstrap', ['--version'], installHint),
  needTool('lintian', ['--version'], installHint),
  needTool('dpkg-deb', ['--version'], installHint),
  needTool('dpkg-scanpackages', ['--version'], installHint),
  needTool('systemctl', ['--version'], installHint),
);

/**
 * What a reference system and a purged one may differ in without anything
 * of leakless being left: logs, apt's and dpkg's own records (a purged
 * package leaves nothing in dpkg's status but its history), the random
 * machine id, and the backups useradd writes.
 */
const IGNORED = [
  /^var\/log\//,
  /^var\/cache\/apt\//,
  /^var\/lib\/apt\//,
  /^var\/lib\/dpkg\//,
  /^var\/cache\/debconf\//,
  /^etc\/(passwd|group|shadow|gshadow|subuid|subgid)-$/,
];
/** Account files: the same accounts, in whatever order the transactions created them. */
const LINE_SETS = new Set(['etc/passwd', 'etc/group', 'etc/shadow', 'etc/gshadow']);
/** Random at every install (dbus, systemd): compared by existence only. */
const RANDOM = new Set(['etc/machine-id', 'var/lib/dbus/machine-id']);

/**
 * Accepted lintian warnings, each with why. Anything else (and any error)
 * fails the test.
 */
const ACCEPTED_WARNINGS: Record<string, string> = {
  'empty-binary-package': 'leakless-users is its preinst (the fixed-uid accounts) and its docs; like a metapackage, it ships no payload',
  'non-standard-file-perm': 'the NetworkManager profile is 0600: NetworkManager refuses a keyfile others can read',
  'obsolete-command-in-modprobe.d-file': '`install MODULE /bin/false` is how Tails and Whonix stop an explicit modprobe; `blacklist` only stops autoloading',
  'unusual-interpreter': 'the rulesets start with #!/usr/sbin/nft -f to say how they are loaded; they are read by nft -f, never executed',
  'script-not-executable': 'the same rulesets: data for nft -f, not programs',
  'no-manual-page': 'leakless-netns-exec and leakless-selftest are documented by their --help and the docs/ of the repository',
};

interface Figures {
  [k: string]: unknown;
}
const figures: Figures = {};

async function sh(cmd: string, args: readonly string[], opts: { input?: string; env?: Record<string, string> } = {}) {
  return execa(cmd, args, { reject: false, all: true, ...(opts.input !== undefined ? { input: opts.input } : {}), env: { LC_ALL: 'C', ...opts.env } });
}

async function inChroot(root: string, script: string) {
  return sh('chroot', [root, 'sh', '-ec', script], { env: { DEBIAN_FRONTEND: 'noninteractive', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
}

async function mustChroot(root: string, script: string): Promise<string> {
  const r = await inChroot(root, script);
  if (r.exitCode !== 0) throw new Error(`chroot ${root}: ${script}\n${(r.all ?? '').split('\n').slice(-15).join('\n')}`);
  return r.all ?? '';
}

/** A copy of a root filesystem (device nodes, owners, links: cp -a; node's cpSync stops at /dev/ptmx). */
async function copyRoot(from: string, to: string): Promise<void> {
  const r = await sh('cp', ['-a', from, to]);
  if (r.exitCode !== 0) throw new Error(`cp -a ${from} ${to}: ${r.all}`);
}

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16);

/** The piuparts view of a root: every path, symlink targets, and what /etc files hold. */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (r === 'proc' || r === 'sys' || r === 'dev' || r === 'srv/leakless-repo') continue;
      if (IGNORED.some((re) => re.test(r))) continue;
      if (e.isDirectory()) walk(r);
      else if (e.isSymbolicLink()) out.set(r, `-> ${readlinkSync(join(root, r))}`);
      else if (RANDOM.has(r)) out.set(r, 'present');
      else if (LINE_SETS.has(r))
        out.set(
          r,
          readFileSync(join(root, r), 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => (r.endsWith('shadow') ? l.replace(/^([^:]*:[^:]*:)\d*/, '$1') : l))
            .sort()
            .join('|'),
        );
      else out.set(r, r.startsWith('etc/') ? sha(join(root, r)) : 'file');
    }
  };
  walk('');
  return out;
}

function differences(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const k of a.keys()) if (!b.has(k)) out.push(`removed: ${k}`);
  for (const [k, v] of b) {
    if (!a.has(k)) out.push(`left behind: ${k}`);
    else if (a.get(k) !== v) out.push(`changed: ${k}`);
  }
  return out.sort();
}

describe.skipIf(skip).sequential('the Debian packages', () => {
  const debs = join(work, 'debs');
  const pristine = join(work, 'pristine');
  const ref = join(work, 'reference');
  const sut = join(work, 'installed');
  let summary: { packages: { package: string; file: string; bytes: number; sha256: string; depends: string[]; diverted: string[]; masked: string[] }[] };

  beforeAll(async () => {
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    let t = Date.now();
    const r = await sh('node', [cli, 'deb', '--out', debs, '--json']);
    if (r.exitCode !== 0) throw new Error(`leakless deb failed: ${r.all}`);
    figures.buildMs = Date.now() - t;
    summary = JSON.parse(r.stdout) as typeof summary;
    const sources = await resolveSources(undefined, 'bookworm');
    const sourcesFile = join(work, sources.name);
    writeFileSync(sourcesFile, sources.content);
    t = Date.now();
    const boot = await sh('mmdebstrap', ['--mode=root', '--variant=minbase', 'bookworm', pristine, sourcesFile]);
    if (boot.exitCode !== 0) throw new Error(`mmdebstrap failed: ${(boot.all ?? '').split('\n').slice(-10).join('\n')}`);
    figures.bootstrapMs = Date.now() - t;
    for (const root of [ref, sut]) {
      await copyRoot(pristine, root);
      const served = await makeAptRepo({ dir: join(root, 'srv', 'leakless-repo'), debs: summary.packages.map((p) => p.file), sourceDateEpoch: 1763769600 });
      expect(served.packages.map((p) => p.name).sort()).toEqual(summary.packages.map((p) => p.package).sort());
      writeFileSync(join(root, 'etc/apt/sources.list.d/leakless.list'), 'deb [trusted=yes] file:/srv/leakless-repo ./\n');
      await mustChroot(root, 'apt-get update -qq');
    }
  });

  afterAll(() => {
    mkdirSync(work, { recursive: true });
    writeFileSync(join(work, 'report.json'), `${JSON.stringify(figures, null, 2)}\n`);
    console.log(`\nDebian packages: ${JSON.stringify(figures, null, 2)}`);
    if (process.env.LEAKLESS_KEEP_E2E_DEB !== '1') for (const d of [pristine, ref, sut]) rmSync(d, { recursive: true, force: true });
  });

  it('two builds give identical bytes', async () => {
    const again = join(work, 'debs-again');
    const r = await sh('node', [cli, 'deb', '--out', again, '--json']);
    expect(r.exitCode).toBe(0);
    const second = JSON.parse(r.stdout) as typeof summary;
    expect(second.packages.map((p) => `${p.package} ${p.sha256}`)).toEqual(summary.packages.map((p) => `${p.package} ${p.sha256}`));
    figures.packages = Object.fromEntries(summary.packages.map((p) => [p.package, p.bytes]));
    figures.totalBytes = summary.packages.reduce((n, p) => n + p.bytes, 0);
  });

  it('lintian: no error in any package, only the accepted warnings', async () => {
    const t = Date.now();
    const r = await sh('lintian', ['--no-cfg', '--tag-display-limit', '0', ...summary.packages.map((p) => p.file)]);
    figures.lintianMs = Date.now() - t;
    const tags = (r.all ?? '').split('\n').filter((l) => /^[EWIPXO]: /.test(l));
    const errors = tags.filter((l) => l.startsWith('E: '));
    const warnings = tags.filter((l) => l.startsWith('W: '));
    figures.lintian = { errors: errors.length, warnings: warnings.map((w) => w.replace(/^W: /, '')), accepted: ACCEPTED_WARNINGS };
    expect(errors).toEqual([]);
    expect(warnings.filter((w) => !(w.split(' ')[2]! in ACCEPTED_WARNINGS))).toEqual([]);
  });

  it('the reference system: leakless-users, then the packages’ dependencies', async () => {
    const deps = [...new Set(summary.packages.flatMap((p) => p.depends).map((d) => d.replace(/\s*\(.*$/, '')))].filter((d) => !d.startsWith('leakless')).sort();
    await mustChroot(ref, 'apt-get install -y -qq --no-install-recommends leakless-users');
    await mustChroot(ref, `apt-get install -y -qq --no-install-recommends ${deps.join(' ')}`);
  });

  it('the diverted files are exactly the shipped /etc paths a Debian system already has (dpkg -S, or present)', async () => {
    const shipped = summary.packages.flatMap((p) => p.diverted);
    const paths = new Set<string>();
    const modules = summary.packages.filter((p) => p.package !== 'leakless' && p.package !== 'leakless-users');
    const list = await sh('sh', ['-c', 'for f in "$@"; do dpkg-deb --contents "$f"; done', 'contents', ...modules.map((p) => p.file)]);
    for (const l of (list.all ?? '').split('\n')) {
      const m = /\s\.(\/\S+)$/.exec(l);
      if (m && !l.startsWith('d') && !m[1]!.startsWith('/usr/share/doc/') && !m[1]!.startsWith('/usr/share/lintian/'))
        paths.add(m[1]!.startsWith('/usr/share/leakless/etc/') ? m[1]!.slice('/usr/share/leakless'.length) : m[1]!);
    }
    const present: string[] = [];
    const owners = new Map<string, string>();
    for (const p of [...paths].sort()) {
      const owner = ((await inChroot(ref, `dpkg -S '${p}' 2>/dev/null | cut -d: -f1 || true`)).stdout ?? '').trim();
      if (owner) owners.set(p, owner);
      if (existsSync(join(ref, p)) || owner) present.push(p);
    }
    // every shipped path a Debian system already has is diverted, and nothing outside /etc collides
    expect(present.filter((p) => !(p in DIVERTED))).toEqual([]);
    // each named owner is the package dpkg says owns the file
    for (const [p, owner] of Object.entries(DIVERTED)) if (/^[a-z0-9][a-z0-9+.-]+$/.test(owner)) expect(owners.get(p), p).toBe(owner);
    expect(shipped.sort()).toEqual(Object.keys(DIVERTED).sort());
    figures.diverted = Object.fromEntries(Object.keys(DIVERTED).map((p) => [p, owners.get(p) ?? (existsSync(join(ref, p)) ? 'local file' : 'absent here')]));
  });

  it('ESSENTIAL is bookworm’s set of Essential packages', async () => {
    const out = await mustChroot(pristine, `dpkg-query -W -f '\${Package} \${Essential}\\n' | awk '$2 == "yes" {print $1}'`);
    expect(out.trim().split('\n').sort()).toEqual([...ESSENTIAL].sort());
  });

  it('one apt transaction installs leakless, and leakless check --installed passes on that root filesystem', async () => {
    const t = Date.now();
    await mustChroot(sut, 'apt-get install -y -qq --no-install-recommends leakless');
    figures.installMs = Date.now() - t;
    type Report = { passed: number; failed: number; results: { id: string; ok: boolean; detail: string }[] };
    const check = async () => {
      const r = await sh('node', [cli, 'check', '--installed', '--tree', sut, '--json']);
      return { exitCode: r.exitCode, report: JSON.parse(r.stdout) as Report };
    };
    // mmdebstrap left the mirror it bootstrapped from in sources.list.d, in the clear: apt would fetch from it
    const plain = readdirSync(join(sut, 'etc/apt/sources.list.d')).filter((f) => f.startsWith('0000'));
    expect(plain).toHaveLength(1);
    // mmdebstrap copies the build host's name; a downstream system named after its
    // owner would send it in the DHCP requests of any profile made after boot
    // (put back after the check: the purge test compares the system with a reference one)
    const hostname = join(sut, 'etc/hostname');
    const builtName = readFileSync(hostname);
    writeFileSync(hostname, 'downstream-pc\n');
    const before = await check();
    expect(
      before.report.results
        .filter((x) => !x.ok)
        .map((x) => x.id)
        .sort(),
    ).toEqual(['resolver.hostname-unsent', 'tor.apt-through-tor']);
    expect(before.report.results.find((x) => x.id === 'tor.apt-through-tor')!.detail).toContain(`sources.list.d/${plain[0]}: not through tor`);
    expect(before.report.results.find((x) => x.id === 'resolver.hostname-unsent')!.detail).toContain('downstream-pc');
    // the host name leakless' docs ask a downstream system for (docs/threat-model.md#dhcp-hostname)
    writeFileSync(hostname, 'localhost\n');
    // set aside while checking: the later tests reinstall Debian packages from that mirror
    const [on, off] = [join(sut, 'etc/apt/sources.list.d', plain[0]!), join(sut, 'etc/apt/sources.list.d', `${plain[0]}.off`)];
    renameSync(on, off);
    const r = await check().finally(() => {
      renameSync(off, on);
      writeFileSync(hostname, builtName);
    });
    const report = r.report;
    figures.check = { passed: report.passed, failed: report.failed };
    expect(report.results.filter((x) => !x.ok).map((x) => `${x.id}: ${x.detail}`)).toEqual([]);
    expect(report.results.map((x) => x.id)).toEqual(expect.arrayContaining(['installed.files', 'installed.users', 'installed.units', 'tor.verify-config']));
    expect(r.exitCode).toBe(0);
  });

  it('the torrc is leakless’ and diverted; reinstalling tor leaves it in place', async () => {
    const torrc = readFileSync(join(sut, 'etc/tor/torrc'), 'utf8');
    expect(torrc).toContain('leakless');
    expect(await mustChroot(sut, 'dpkg-divert --listpackage /etc/tor/torrc')).toBe('leakless-tor-config');
    await mustChroot(sut, 'apt-get install -y -qq --no-install-recommends --reinstall tor');
    expect(readFileSync(join(sut, 'etc/tor/torrc'), 'utf8')).toBe(torrc);
    expect(existsSync(join(sut, 'etc/tor/torrc.dpkg-new'))).toBe(false);
  });

  it('a masked unit stays masked when its own package is reinstalled (its postinst runs deb-systemd-helper unmask)', async () => {
    const masked = summary.packages.flatMap((p) => p.masked);
    expect(masked).toContain('nftables.service');
    await mustChroot(sut, 'apt-get install -y -qq --no-install-recommends --reinstall nftables');
    for (const u of masked) expect((await sh('systemctl', ['--root', sut, 'is-enabled', u])).stdout.trim(), u).toBe('masked');
  });

  it('purging every leakless package restores Debian’s files and leaves nothing behind', async () => {
    const names = summary.packages.map((p) => p.package).filter((n) => n !== 'leakless-users');
    const t = Date.now();
    await mustChroot(sut, `apt-get purge -y -qq ${names.join(' ')}`);
    figures.purgeMs = Date.now() - t;
    expect(await mustChroot(sut, 'dpkg-divert --list | grep leakless || true')).toBe('');
    // Debian's torrc: the md5sum dpkg recorded for tor's conffile
    const recorded = /\/etc\/tor\/torrc ([0-9a-f]{32})/.exec(await mustChroot(sut, `dpkg-query -W -f '\${Conffiles}' tor`))?.[1];
    expect(
      createHash('md5')
        .update(readFileSync(join(sut, 'etc/tor/torrc')))
        .digest('hex'),
    ).toBe(recorded);
    expect(differences(snapshot(ref), snapshot(sut))).toEqual([]);
    // leakless-users last: its accounts stay (Debian keeps system accounts), its files go
    await mustChroot(sut, 'apt-get purge -y -qq leakless-users');
    await mustChroot(ref, 'apt-get purge -y -qq leakless-users');
    expect(differences(snapshot(ref), snapshot(sut))).toEqual([]);
    const left = [...snapshot(sut).keys()].filter((p) => p.includes('leakless') && !p.startsWith('etc/apt/sources.list.d/leakless'));
    expect(left).toEqual([]);
  });

  it('leakless-users fails clearly when a fixed uid is taken by someone else', async () => {
    const other = join(work, 'taken');
    await copyRoot(pristine, other);
    try {
      await makeAptRepo({ dir: join(other, 'srv', 'leakless-repo'), debs: summary.packages.map((p) => p.file), sourceDateEpoch: 1763769600 });
      writeFileSync(join(other, 'etc/apt/sources.list.d/leakless.list'), 'deb [trusted=yes] file:/srv/leakless-repo ./\n');
      await mustChroot(other, 'apt-get update -qq && useradd --system --uid 106 squatter');
      const r = await inChroot(other, 'apt-get install -y -qq --no-install-recommends leakless-users');
      expect(r.exitCode).not.toBe(0);
      expect(r.all).toContain('leakless users: uid 106 is taken by squatter; the policy gives it to debian-tor');
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
  it('the ISO from these packages (leakless iso --from-debs, on the cached base) passes the same verification and self-test', async () => {
    await sharedIso(); // the cold build of this run: its base is what the module layer goes on
    const out = join(work, 'iso');
    let t = Date.now();
    const built = await sh('node', [cli, 'iso', '--from-debs', '--cache', cache, '--out', out, '--no-install', '--keep-going', '--json']);
    figures.isoFromDebsMs = Date.now() - t;
    const report = JSON.parse(built.stdout) as { ok: boolean; base: { cached: boolean }; verify: { results: { id: string; ok: boolean; detail: string }[] } };
    expect(report.base.cached).toBe(true);
    t = Date.now();
    const booted = await sh('node', [
      cli,
      'boot',
      '--iso',
      join(out, 'leakless-amd64.iso'),
      '--firmware',
      'bios',
      '--json',
      '--timeout',
      '600',
      '--cache',
      cache,
    ]);
    figures.isoFromDebsBootMs = Date.now() - t;
    const boot = JSON.parse(booted.stdout) as {
      boots: { ok: boolean; reason?: string; report?: { results: { id: string; ok: boolean; detail: string }[] } }[];
    };
    const run = boot.boots[0]!;
    expect(report.verify.results.filter((x) => !x.ok).map((x) => `${x.id}: ${x.detail}`)).toEqual([]);
    expect(run.report?.results.filter((x) => !x.ok).map((x) => `${x.id}: ${x.detail}`) ?? [run.reason]).toEqual([]);
    expect(run.report!.results.length).toBeGreaterThan(0);
    expect(built.exitCode).toBe(0);
    expect(booted.exitCode).toBe(0);
  });
});

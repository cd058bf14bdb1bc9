import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync, mkdirSync, chownSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import {
  buildTree,
  hostToolRunner,
  memoryTree,
  parsePolicy,
  type Emission,
  type GeneratedFile,
  type Policy,
  type StaticContext,
  type ToolRunner,
} from '@leakless/policy';
import { TOR_CONTROL } from '@leakless/policy/names';
import { evaluateRuntime, type Exec } from '@leakless/selftest';
import { defaultPolicy, defaultPolicyInput, policyWith } from '@leakless/policy/testing';
import { needRoot, needTool, skipUnless } from '@leakless/testing';
import {
  emit,
  parseDump,
  TORRC,
  TORRC_D,
  APT_SOURCES,
  ENVIRONMENT,
  TORSOCKS_CONF,
  NO_ISOLATION,
  controlSocketValue,
  unitDropInDir,
  UNIT_DROPIN_NAME,
  effectiveConfigProblems,
} from './index.js';

const policy = defaultPolicy();
const out = emit(policy);

const aptFile = (path: string, content: string): GeneratedFile => ({ path, content, mode: 0o644, clause: 'test' });
/** What mmdebstrap writes when handed the build host's deb822 sources. */
const MMDEBSTRAP_SOURCES =
  'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n';

const noTools: ToolRunner = async () => ({ exitCode: 127, stdout: '', stderr: 'no tools' });

function ctxFor(files: readonly GeneratedFile[], p: Policy = policy, run: ToolRunner = hostToolRunner): StaticContext {
  return { tree: memoryTree(buildTree([{ ...out, files }])), policy: p, run };
}
const file = (e: Emission, path: string) => e.files.find((f) => f.path === path)!;
const edit = (files: readonly GeneratedFile[], path: string, fn: (f: GeneratedFile) => GeneratedFile) => files.map((f) => (f.path === path ? fn(f) : f));
async function _failing(files: readonly GeneratedFile[], p: Policy = policy): Promise<string[]> {
  const ctx = ctxFor(files, p);
  const r = await Promise.all(emit(p).staticAssertions.map(async (a) => [a.id, (await a.check(ctx)).ok] as const));
  return r.filter(([, ok]) => !ok).map(([id]) => id);
}

// tor is a test dependency (tools/leakless/install-deps.sh test); CI must not silently skip.
const noTor = needTool('tor', ['--version'], 'tools/leakless/install-deps.sh test installs tor');
const skipTor = skipUnless('the tor-config checks that run tor', noTor);

describe('tor-config emit', () => {
  it('writes the base torrc read-only, the drop-in directory, the tor@default drop-in and the app settings', () => {
    expect(out.files.map((f) => f.path).sort()).toEqual(
      [
        TORRC,
        `${TORRC_D}/README`,
        `${unitDropInDir(policy)}/${UNIT_DROPIN_NAME}`,
        ENVIRONMENT,
        TORSOCKS_CONF,
        '/etc/apt/apt.conf.d/50leakless-tor',
        APT_SOURCES,
      ].sort(),
    );
    expect(file(out, TORRC).mode).toBe(0o444);
    for (const f of out.files) {
      expect(f.clause).not.toBe('');
      expect(f.content, f.path).toMatch(/leakless: generated from the policy \(.+\); do not edit/);
    }
    expect(out.packages).toEqual(['tor', 'torsocks', 'apt-transport-tor']);
    expect(out.users).toEqual([
      { name: 'debian-tor', uid: 106, gid: 112 },
      { name: '_apt', uid: 42, gid: 65534 },
    ]);
  });

  it('puts a comment naming the policy clause above every torrc option', () => {
    const lines = file(out, TORRC).content.split('\n');
    lines.forEach((l, i) => {
      if (/^[A-Z]/.test(l)) expect(lines[i - 1], l).toMatch(/^# (tor\.\S+|ipv6\.\S+|docs\/[a-z-]+\.md#[a-z0-9.-]+): \S/);
    });
  });

  it('renders each listener from the policy, with Tails’ isolation flags', () => {
    const torrc = file(out, TORRC).content;
    expect(torrc).toContain('\nSocksPort 127.0.0.1:9050 IsolateDestAddr IsolateDestPort\n');
    expect(torrc).toContain(`\nSocksPort 127.0.0.1:9063 ${NO_ISOLATION.join(' ')}\n`);
    expect(torrc).toContain('\nSocksPort 10.200.1.1:9050 IsolateSOCKSAuth KeepAliveIsolateSOCKSAuth\n');
    expect(torrc).toContain(
      '\nControlPort 127.0.0.1:9052\nCookieAuthentication 1\n'.replace(
        '\nCookie',
        '\n# tor.controlPort: a client must also read the cookie file, not only reach the port\nCookie',
      ),
    );
    expect(torrc).toContain('\nDNSPort 127.0.0.1:5353\n');
    expect(torrc).toContain('\nTransPort 127.0.0.1:9040\n');
    expect(torrc).toContain('\nVirtualAddrNetworkIPv4 127.192.0.0/10\n');
    expect(torrc).not.toMatch(/^Reachable/m);
    expect(torrc.trimEnd().split('\n').pop()).toBe(`%include ${TORRC_D}/*.conf`);
  });

  it('takes every port and address from the policy (nothing hard-coded)', () => {
    const p = policyWith((d) => {
      d.tor.socksPorts[0].port = 19050;
      d.tor.socksPorts[3].port = 19051;
      d.tor.controlPort.port = 19052;
      d.tor.dnsPort.port = 15353;
      d.tor.transPort.port = 19040;
      d.tor.automapRange = '127.64.0.0/10';
      d.netns.namespaces[0].subnet = '10.200.1.4/30';
    });
    const e = emit(p);
    const all = e.files.map((f) => f.content).join('\n');
    for (const old of [/\b9050\b/, /\b9052\b/, /\b5353\b/, /\b9040\b/, /127\.192\.0\.0/, /10\.200\.1\.1\b/]) expect(all, String(old)).not.toMatch(old);
    expect(file(e, TORRC).content).toContain('SocksPort 10.200.1.5:19051 ');
    expect(file(e, ENVIRONMENT).content).toContain('SOCKS5_SERVER=127.0.0.1:19050');
    expect(file(e, TORSOCKS_CONF).content).toMatch(/^TorPort 19050$/m);
    // and the sources never state the default ports either
    const src = readdirSync(new URL('.', import.meta.url)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    for (const f of src) expect(readFileSync(new URL(f, import.meta.url), 'utf8'), f).not.toMatch(/\b(9050|9062|9063|9052|5353|9040)\b/);
  });

  it('tor.reachablePorts emits ReachableAddresses/ORAddresses/DirAddresses; a duplicate port is bad input', () => {
    const p = policyWith((d) => (d.tor.reachablePorts = [9001, 443]));
    expect(p.torReachablePorts).toEqual([443, 9001]);
    const torrc = file(emit(p), TORRC).content;
    for (const o of ['ReachableAddresses', 'ReachableORAddresses', 'ReachableDirAddresses'])
      expect(torrc).toContain(`\n${o} accept *:443, accept *:9001, reject *:*\n`);
    const input = defaultPolicyInput();
    input.tor.reachablePorts = [443, 9001, 443];
    const r = parsePolicy(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues).toContainEqual(expect.objectContaining({ path: 'tor.reachablePorts[2]', message: '443 is already listed' }));
  });

  it('gives APT the SocksPort _apt is a client of, with every source through tor', () => {
    expect(file(out, '/etc/apt/apt.conf.d/50leakless-tor').content).toContain('Acquire::tor::proxy "socks5h://apt-transport-tor@127.0.0.1:9050";');
    const deb = file(out, APT_SOURCES)
      .content.split('\n')
      .filter((l) => l.startsWith('deb '));
    expect(deb).toHaveLength(3);
    for (const l of deb) expect(l).toMatch(/^deb tor\+http:\/\/deb\.debian\.org\/debian(-security)? bookworm(-updates|-security)? main$/);
  });

  it('passes its tree-only static assertions on its own output', async () => {
    const ctx = ctxFor(out.files, policy, noTools);
    for (const a of out.staticAssertions.filter((x) => !x.tools?.includes('tor'))) expect(await a.check(ctx), a.id).toMatchObject({ ok: true });
  });

  it('a missing tor is a failure, not a pass', async () => {
    const ctx = ctxFor(out.files, policy, noTools);
    for (const a of out.staticAssertions.filter((x) => x.tools?.includes('tor'))) expect((await a.check(ctx)).ok, a.id).toBe(false);
  });

  it('apt-through-tor reads what apt reads: local, disabled and ignored sources are not fetched in the clear', async () => {
    const a = out.staticAssertions.find((x) => x.id === 'tor.apt-through-tor')!;
    const files = [
      ...out.files,
      aptFile('/etc/apt/sources.list.d/leakless.list', 'deb [trusted=yes] file:/srv/leakless-repo ./\n'),
      aptFile('/etc/apt/sources.list.d/off.sources', 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nEnabled: no\n'),
      aptFile('/etc/apt/sources.list.d/0000debian.sources.disabled', MMDEBSTRAP_SOURCES),
      aptFile('/etc/apt/sources.list.d/tor.sources', 'Types: deb\nURIs: tor+https://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n'),
    ];
    expect(await a.check(ctxFor(files, policy, noTools))).toMatchObject({ ok: true });
    const plain = await a.check(ctxFor([...out.files, aptFile('/etc/apt/sources.list.d/0000debian.sources', MMDEBSTRAP_SOURCES)], policy, noTools));
    expect(plain.detail).toBe(
      '2 problem(s): /etc/apt/sources.list.d/0000debian.sources: not through tor: deb http://deb.debian.org/debian; /etc/apt/sources.list.d/0000debian.sources: not through tor: deb http://deb.debian.org/debian-security',
    );
  });

  it('tree-only assertions catch tampering', async () => {
    const dropIn = `${unitDropInDir(policy)}/${UNIT_DROPIN_NAME}`;
    const cases: [string, readonly GeneratedFile[], string][] = [
      ['torrc writable by others', edit(out.files, TORRC, (f) => ({ ...f, mode: 0o666 })), 'tor.base-read-only'],
      ['include not last', edit(out.files, TORRC, (f) => ({ ...f, content: f.content + 'SocksPort 9999\n' })), 'tor.base-read-only'],
      ['tor unit drop-in changes more', edit(out.files, dropIn, (f) => ({ ...f, content: f.content + 'PrivateNetwork=no\n' })), 'tor.unit-dropin'],
      [
        'second tor unit drop-in',
        [...out.files, { path: `${unitDropInDir(policy)}/60-x.conf`, content: '[Service]\nUser=root\n', mode: 0o644, clause: 'x' }],
        'tor.unit-dropin',
      ],
      // drop-ins in the other directories systemd reads count too: an administrator's, the template's
      [
        'administrator drop-in for the tor unit',
        [...out.files, { path: `/etc/systemd/system/${policy.torUnit}.d/zz.conf`, content: '[Service]\nBindReadOnlyPaths=\n', mode: 0o644, clause: 'x' }],
        'tor.unit-dropin',
      ],
      [
        'template drop-in for the tor unit',
        [...out.files, { path: '/usr/lib/systemd/system/tor@.service.d/zz.conf', content: '[Service]\nUser=root\n', mode: 0o644, clause: 'x' }],
        'tor.unit-dropin',
      ],
      [
        'environment points elsewhere',
        edit(out.files, ENVIRONMENT, (f) => ({ ...f, content: f.content.replace('SOCKS5_SERVER=127.0.0.1:9050', 'SOCKS5_SERVER=127.0.0.1:9063') })),
        'tor.apps-socks',
      ],
      [
        'torsocks to the bulk port',
        edit(out.files, TORSOCKS_CONF, (f) => ({ ...f, content: f.content.replace('TorPort 9050', 'TorPort 9063') })),
        'tor.apps-socks',
      ],
      [
        'plain http source',
        edit(out.files, APT_SOURCES, (f) => ({ ...f, content: f.content + 'deb http://deb.debian.org/debian bookworm contrib\n' })),
        'tor.apt-through-tor',
      ],
      // apt reads sources.list.d too: mmdebstrap leaves the mirror it bootstrapped from there, in the clear
      [
        "mmdebstrap's deb822 sources left in sources.list.d",
        [...out.files, aptFile('/etc/apt/sources.list.d/0000debian.sources', MMDEBSTRAP_SOURCES)],
        'tor.apt-through-tor',
      ],
      [
        'a one-line .list in sources.list.d',
        [...out.files, aptFile('/etc/apt/sources.list.d/extra.list', 'deb-src http://deb.debian.org/debian bookworm main\n')],
        'tor.apt-through-tor',
      ],
    ];
    for (const [name, files, id] of cases) {
      const ctx = ctxFor(files, policy, noTools);
      const a = out.staticAssertions.find((x) => x.id === id)!;
      expect((await a.check(ctx)).ok, name).toBe(false);
    }
    const aptDns = policyWith((d) => d.tor.dnsPort.clients.push('_apt'));
    const a = emit(aptDns).staticAssertions.find((x) => x.id === 'tor.apt-through-tor')!;
    expect((await a.check(ctxFor(emit(aptDns).files, aptDns, noTools))).detail).toMatch(/_apt is a DNSPort client/);
  });

  it('compares tor’s effective config with the policy (unit: a dump with Debian’s unix SocksPort left in, a second control socket)', () => {
    const dump = (control: string[], cookie: string) =>
      parseDump(
        [
          ...policy.socksPorts.map((s) => `SocksPort ${s.address}:${s.port} ${(s.isolation.length ? s.isolation : NO_ISOLATION).join(' ')}`),
          'SocksPort unix:/run/tor/socks WorldWritable',
          'ControlPort 127.0.0.1:9052',
          ...control.map((c) => `ControlSocket ${c}`),
          'DNSPort 127.0.0.1:5353',
          'TransPort 127.0.0.1:9040',
          'VirtualAddrNetworkIPv4 127.192.0.0/10',
          'AutomapHostsOnResolve 1',
          'CookieAuthentication 1',
          `CookieAuthFile ${cookie}`,
          'CookieAuthFileGroupReadable 1',
          'Sandbox 1',
          'AvoidDiskWrites 1',
          'ClientUseIPv6 0',
          'NATDPort',
        ].join('\n'),
      );
    expect(effectiveConfigProblems(dump([controlSocketValue()], TOR_CONTROL.cookie), policy)).toEqual([
      expect.stringMatching(/^SocksPort: tor has .*unix:\/run\/tor\/socks/),
    ]);
    expect(effectiveConfigProblems(dump([controlSocketValue(), '/tmp/ctl WorldWritable'], '/tmp/cookie'), policy)).toEqual([
      expect.stringMatching(/^SocksPort: tor has .*unix:\/run\/tor\/socks/),
      expect.stringMatching(/^ControlSocket: tor has \[.*\/tmp\/ctl WorldWritable/),
      expect.stringMatching(/^CookieAuthFile: tor has \[\/tmp\/cookie\]/),
    ]);
  });
});

describe.skipIf(skipTor)('tor-config static assertions with the real tor', () => {
  it('all pass on the emitted tree', async () => {
    const ctx = ctxFor(out.files);
    for (const a of out.staticAssertions) expect(await a.check(ctx), a.id).toMatchObject({ ok: true });
  });

  it('pass for a policy with reachable ports', async () => {
    const p = policyWith((d) => (d.tor.reachablePorts = [443, 9001]));
    const e = emit(p);
    const ctx = ctxFor(e.files, p);
    for (const a of e.staticAssertions) expect(await a.check(ctx), a.id).toMatchObject({ ok: true });
  });

  it('anti-tests: tor itself reports a broken or widened configuration', async () => {
    const verify = out.staticAssertions.find((a) => a.id === 'tor.verify-config')!;
    const eff = out.staticAssertions.find((a) => a.id === 'tor.effective-config')!;
    const broken = edit(out.files, TORRC, (f) => ({ ...f, content: f.content.replace('Sandbox 1', 'Sandbox maybe') }));
    expect(await verify.check(ctxFor(broken))).toMatchObject({ ok: false, detail: expect.stringMatching(/verify-config failed/) });
    // A drop-in in the image that opens one more SocksPort (to all interfaces).
    const widened = [...out.files, { path: `${TORRC_D}/50-local.conf`, content: 'SocksPort 0.0.0.0:9999\n', mode: 0o644, clause: 'test' }];
    expect(await verify.check(ctxFor(widened))).toMatchObject({ ok: true });
    expect(await eff.check(ctxFor(widened))).toMatchObject({ ok: false, detail: expect.stringMatching(/SocksPort/) });
    // A drop-in that opens a second, world-writable control socket.
    const secondCs = [...out.files, { path: `${TORRC_D}/50-local.conf`, content: 'ControlSocket /tmp/ctl WorldWritable\n', mode: 0o644, clause: 'test' }];
    expect(await eff.check(ctxFor(secondCs))).toMatchObject({ ok: false, detail: expect.stringMatching(/ControlSocket: tor has .*\/tmp\/ctl/) });
    // Two %include lines cannot be relocated unambiguously.
    const twice = edit(out.files, TORRC, (f) => ({ ...f, content: f.content + `%include ${TORRC_D}/*.conf\n` }));
    expect(await verify.check(ctxFor(twice))).toMatchObject({ ok: false, detail: expect.stringMatching(/exactly one %include/) });
  });
});
// The runtime assertions evaluated against a real tor started from the
// emitted torrc in a network namespace (no route out of the namespace; a test drop-in
// moves tor state into a temp dir), with the emitted files bind-mounted over /etc/tor in a
// private mount namespace so the host's /etc is never touched.
const skipRuntime = skipUnless('the tor-config runtime test', needRoot(), noTor);

describe.skipIf(skipRuntime)('tor-config runtime assertions against a real tor in a namespace', () => {
  const inNetns =
    (ns: string): Exec =>
    async (cmd, args) => {
      const r = await execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: false });
      return { exitCode: r.exitCode ?? 127, stdout: r.stdout, stderr: r.stderr };
    };

  async function withTor(files: readonly GeneratedFile[], fn: (ns: string) => Promise<void>): Promise<void> {
    const id = randomBytes(3).toString('hex');
    const ns = `lk-torcfg-${id}`;
    const dir = mkdtempSync(join(tmpdir(), `lk-torcfg-${id}-`));
    const etc = join(dir, 'etc-tor');
    const data = join(dir, 'data');
    mkdirSync(join(etc, 'torrc.d'), { recursive: true });
    mkdirSync(data, { mode: 0o700 });
    for (const f of files.filter((x) => x.path.startsWith('/etc/tor/'))) {
      mkdirSync(join(etc, f.path.slice('/etc/tor/'.length), '..'), { recursive: true });
      writeFileSync(join(etc, f.path.slice('/etc/tor/'.length)), f.content, { mode: f.mode });
    }
    // Test-only drop-in: state in the temp dir (Debian's defaults file would use /var/lib/tor). The
    // namespace has no route, so tor's attempts to reach the public authorities fail inside it.
    writeFileSync(join(etc, 'torrc.d', '99-test.conf'), `DataDirectory ${data}\nLog notice file ${data}/notice.log\n`);
    const t = policy.torUser;
    chownSync(data, t.uid, t.gid);
    chmodSync(dir, 0o755);
    // /run inside tor's mount namespace: tor's run directory as Debian's tor@default makes it
    // (install -m 02755 -o debian-tor -d /run/tor), where the control socket and cookie go.
    const run = join(dir, 'run');
    mkdirSync(join(run, 'tor'), { recursive: true });
    chownSync(join(run, 'tor'), t.uid, t.gid);
    chmodSync(join(run, 'tor'), 0o2755);
    runDir = run;
    let tor: ReturnType<typeof execa> | undefined;
    await execa('ip', ['netns', 'add', ns]);
    try {
      await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      // The browser SocksPort listens on the tbb namespace's host veth address.
      for (const n of policy.namespaces) {
        await execa('ip', ['-n', ns, 'link', 'add', 'name', n.hostVeth, 'type', 'veth', 'peer', 'name', `${n.name}-g`]);
        await execa('ip', ['-n', ns, 'addr', 'add', `${n.hostAddress}/${n.prefix}`, 'dev', n.hostVeth]);
        await execa('ip', ['-n', ns, 'link', 'set', n.hostVeth, 'up']);
      }
      const script = `mount --bind "$1" /etc/tor && mount --bind "$2" /run && exec setpriv --reuid=${t.uid} --regid=${t.gid} --clear-groups tor --defaults-torrc /dev/null -f /etc/tor/torrc`;
      tor = execa('ip', ['netns', 'exec', ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script, 'sh', etc, run], { reject: false });
      const deadline = Date.now() + 20_000;
      for (;;) {
        const ss = await execa('ip', ['netns', 'exec', ns, 'ss', '-H', '-ltn'], { reject: false });
        if (ss.stdout.includes(`${policy.controlPort.address}:${policy.controlPort.port}`)) break;
        if (Date.now() > deadline || tor.exitCode !== null)
          throw new Error(`tor did not start: ${(await tor.catch((e) => e)).stderr ?? ''} ${tail(join(data, 'notice.log'))}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      await fn(ns);
    } finally {
      // SIGINT: with Sandbox 1 this tor (0.4.9 on this kernel) blocks SIGTERM (see the module README).
      tor?.kill('SIGINT');
      const killer = setTimeout(() => tor?.kill('SIGKILL'), 3000);
      await tor?.catch(() => undefined);
      clearTimeout(killer);
      await execa('ip', ['netns', 'del', ns], { reject: false });
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const tail = (p: string) => {
    try {
      return readFileSync(p, 'utf8').slice(-2000);
    } catch {
      return '(no log)';
    }
  };
  const listening = out.runtimeAssertions.filter((a) => a.check.kind === 'listening');
  let runDir = '';

  it('tor listens on exactly the policy’s ports, as the tor user', async () => {
    expect(listening).toHaveLength(policy.torListeners.length);
    await withTor(out.files, async (ns) => {
      const results = await evaluateRuntime(listening, inNetns(ns));
      expect(results.filter((r) => !r.ok)).toEqual([]);
      const ss = await execa('ip', ['netns', 'exec', ns, 'ss', '-H', '-lntupe']);
      const lines = ss.stdout.split('\n').filter((l) => l.trim() !== '');
      // nothing else (no ORPort, no unix sockets count here) and every socket owned by the tor uid
      expect(lines).toHaveLength(policy.torListeners.length);
      for (const l of lines) expect(l).toContain(`uid:${policy.torUser.uid}`);
    });
  });

  it('the control socket and cookie are the tor user’s, for its group only (what htpdate checks before it connects)', async () => {
    await withTor(out.files, async () => {
      const t = policy.torUser;
      const sock = statSync(join(runDir, TOR_CONTROL.socket.slice('/run/'.length)));
      const cookie = statSync(join(runDir, TOR_CONTROL.cookie.slice('/run/'.length)));
      expect(sock.isSocket()).toBe(true);
      expect([sock.uid, sock.gid, (sock.mode & 0o777).toString(8)]).toEqual([t.uid, t.gid, '660']);
      expect(cookie.isFile() && cookie.size === 32).toBe(true);
      expect([cookie.uid, cookie.gid, (cookie.mode & 0o777).toString(8)]).toEqual([t.uid, t.gid, '640']);
    });
  });

  it('anti-test: a listener missing from the torrc is reported', async () => {
    const without = edit(out.files, TORRC, (f) => ({ ...f, content: f.content.replace(/\nTransPort .*\n/, '\n') }));
    await withTor(without, async (ns) => {
      const failed = (await evaluateRuntime(listening, inNetns(ns))).filter((r) => !r.ok);
      expect(failed.map((r) => r.id)).toEqual(['tor.listening.trans']);
    });
  });
});

import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { buildTree, hostToolRunner, memoryTree, type GeneratedFile, type StaticContext } from '@leakless/policy';
import { evaluateRuntime, type Exec } from '@leakless/selftest';
import { defaultPolicy, policyWith } from '@leakless/policy/testing';
import { needTool, skipUnless } from '@leakless/testing';
import { accepted, evaluateHook, evaluateOutput, type Packet } from '@leakless/nft';
import { FIREWALL_UNIT, LAUNCHER, SETUP_SCRIPT, UNIT, UNIT_PATH, emit, planNamespaces } from './index.js';

const policy = defaultPolicy();
const out = emit(policy);

// nft -c runs in a throwaway user+network namespace; some machines forbid unprivileged ones.
const noNft = skipUnless(
  'the netns nft -c checks',
  needTool('unshare', ['-rn', 'nft', '--version'], 'nft in a throwaway user+network namespace; tools/leakless/install-deps.sh test installs nftables'),
);

function ctxFor(files: readonly GeneratedFile[], p = policy): StaticContext {
  return { tree: memoryTree(buildTree([{ ...out, files }])), policy: p, run: hostToolRunner };
}

async function results(files: readonly GeneratedFile[]): Promise<Record<string, boolean>> {
  const ctx = ctxFor(files);
  const entries = await Promise.all(out.staticAssertions.map(async (a) => [a.id, (await a.check(ctx)).ok] as const));
  return Object.fromEntries(entries);
}

function edit(path: string, fn: (s: string) => string): GeneratedFile[] {
  const files = out.files.map((f) => (f.path === path ? { ...f, content: fn(f.content) } : f));
  expect(files.find((f) => f.path === path)!.content, `edit of ${path} changed nothing`).not.toBe(out.files.find((f) => f.path === path)!.content);
  return files;
}

describe('netns emit', () => {
  it('emits the unit, the script, the launcher, udev, and per namespace its rules (+ resolv.conf when tor-only)', () => {
    expect(out.files.map((f) => [f.path, f.mode.toString(8)])).toEqual([
      ['/usr/lib/leakless/netns-setup', '755'],
      ['/usr/lib/systemd/system/leakless-netns.service', '644'],
      ['/usr/sbin/leakless-netns-exec', '755'],
      ['/usr/lib/udev/rules.d/85-leakless-nm-unmanage-veth.rules', '644'],
      ['/usr/lib/leakless/netns/tbb.nft', '644'],
      ['/etc/netns/tbb/resolv.conf', '644'],
      ['/usr/lib/leakless/netns/clearnet.nft', '644'],
    ]);
    expect([SETUP_SCRIPT, UNIT_PATH, LAUNCHER]).toEqual(out.files.slice(0, 3).map((f) => f.path));
    for (const f of out.files) expect(f.content, f.path).toMatch(/\n# leakless: generated from the policy \(.+\); do not edit/);
    expect(out.units).toEqual([UNIT]);
    const again = emit(policy);
    expect(again.files).toEqual(out.files);
    expect(again.runtimeAssertions).toEqual(out.runtimeAssertions);
  });

  it('takes every value from the policy: addresses, veths, the SocksPort, the desktop user, the clearnet resolver file', () => {
    const tbb = out.files.find((f) => f.path.endsWith('/tbb.nft'))!.content;
    const browser = policy.socksPorts.find((s) => s.netns === 'tbb')!;
    expect(tbb).toContain(`oifname "lo" ip daddr 127.0.0.1 tcp dport ${browser.port} counter dnat ip to ${browser.address}:${browser.port}`);
    const script = out.files.find((f) => f.path === SETUP_SCRIPT)!.content;
    expect(script).toContain(`ln -sfn ${policy.clearnetResolver.file} /etc/netns/clearnet/resolv.conf`);
    expect(script).toContain('ip -n clearnet route add default via 10.200.1.17 dev veth0');
    expect(script).not.toMatch(/ip -n tbb route/);
    const launcher = out.files.find((f) => f.path === LAUNCHER)!.content;
    for (const n of policy.namespaces)
      expect(launcher).toContain(`${n.name}) user=${n.user.name} uid=${n.user.uid} gid=${n.user.gid} home=${n.home} sockets='${n.sockets.join(' ')}' ;;`);
    expect(launcher).not.toMatch(new RegExp(`uid=${policy.desktopUser.uid}\\b`));

    // A different policy gives different files: nothing is written twice.
    const other = emit(
      policyWith((input) => {
        input.netns.internalRange = '10.77.0.0/24';
        input.netns.namespaces[0].subnet = '10.77.0.8/30';
        input.netns.namespaces[1].subnet = '10.77.0.4/30';
        input.tor.socksPorts[3].port = 9150;
      }),
    );
    const tbb2 = other.files.find((f) => f.path.endsWith('/tbb.nft'))!.content;
    expect(tbb2).toContain('tcp dport 9150 counter dnat ip to 10.77.0.9:9150');
    expect(tbb2).toContain('ip saddr != 10.77.0.10 counter drop');
    expect(other.files.find((f) => f.path.endsWith('/clearnet.nft'))!.content).toContain('ip daddr 10.77.0.0/24 counter reject');
    expect(other.files.find((f) => f.path === SETUP_SCRIPT)!.content).toContain('ip -n clearnet route add default via 10.77.0.5 dev veth0');
  });

  it('emits nothing for a policy without namespaces, and scales to a second tor-only namespace', () => {
    const none = policyWith((p) => {
      p.netns.namespaces = [];
      p.tor.socksPorts = p.tor.socksPorts.filter((s: { netns?: string }) => s.netns === undefined);
    });
    expect(emit(none)).toMatchObject({ files: [], units: [], staticAssertions: [], runtimeAssertions: [] });

    const e = emit(
      policyWith((p) => {
        p.users.push({ name: 'ns-circs', uid: 119, gid: 127, role: 'netns' });
        p.netns.namespaces.push({ name: 'circs', kind: 'tor-only', subnet: '10.200.1.4/30', user: 'ns-circs', sockets: [] });
        p.tor.socksPorts.push({ name: 'circs', netns: 'circs', port: 9050, isolation: [], clients: [] });
      }),
    );
    expect(e.files.map((f) => f.path)).toContain('/usr/lib/leakless/netns/circs.nft');
    expect(e.files.find((f) => f.path === LAUNCHER)!.content).toMatch(
      /^circs\) user=ns-circs uid=119 gid=127 home=\/home\/ns-circs sockets='' ;; # netns.namespaces\[2\] \(tor-only\)$/m,
    );
    expect(e.users).toEqual([
      { name: 'ns-tbb', uid: 117, gid: 125 },
      { name: 'ns-clearnet', uid: 118, gid: 126 },
      { name: 'ns-circs', uid: 119, gid: 127 },
    ]);
    expect(e.files.find((f) => f.path === SETUP_SCRIPT)!.content).toContain('sysctl -q -w net.ipv4.conf.veth-circs.forwarding=0');
  });

  it('builds each namespace’s rules as an nft table that does what its comments say (evaluated on the model)', () => {
    const [tbb, clearnet] = planNamespaces(policy);
    const socks = tbb!.ns.socksPort!;
    const fromApp = (daddr: string, dport: number, oif = 'lo'): Packet => ({
      family: 'ipv4',
      oif,
      daddr,
      protocol: 'tcp',
      dport,
      tcpFlags: 'syn',
      ctState: 'new',
    });
    // tor-only: 127.0.0.1:<SocksPort> is rewritten to the host side and may leave; nothing else may
    const viaDnat = evaluateOutput(tbb!.table, fromApp('127.0.0.1', socks.port));
    expect(viaDnat.packet).toMatchObject({ daddr: socks.address, dport: socks.port });
    expect(accepted(viaDnat.decision)).toBe(true);
    expect(accepted(evaluateOutput(tbb!.table, fromApp(socks.address, socks.port, tbb!.ns.guestVeth)).decision)).toBe(false);
    expect(accepted(evaluateOutput(tbb!.table, fromApp('198.51.100.7', 443, tbb!.ns.guestVeth)).decision)).toBe(false);
    expect(accepted(evaluateOutput(tbb!.table, fromApp(policy.controlPort.address, policy.controlPort.port)).decision)).toBe(true); // loopback inside the namespace only
    // clearnet: out to the Internet, never to the internal range, never IPv6
    expect(accepted(evaluateOutput(clearnet!.table, fromApp('198.51.100.7', 443, clearnet!.ns.guestVeth)).decision)).toBe(true);
    expect(accepted(evaluateOutput(clearnet!.table, fromApp(clearnet!.ns.hostAddress, 9050, clearnet!.ns.guestVeth)).decision)).toBe(false);
    expect(
      accepted(evaluateOutput(clearnet!.table, { ...fromApp('198.51.100.7', 443, clearnet!.ns.guestVeth), family: 'ipv6', daddr: '2001:db8::1' }).decision),
    ).toBe(false);
    // nobody may open a connection into either namespace
    for (const p of [tbb!, clearnet!])
      expect(
        accepted(
          evaluateHook(p.table, 'input', {
            family: 'ipv4',
            iif: p.ns.guestVeth,
            saddr: p.ns.hostAddress,
            daddr: p.ns.guestAddress,
            protocol: 'tcp',
            dport: 22,
            tcpFlags: 'syn',
            ctState: 'new',
          }),
        ),
      ).toBe(false);
  });

  it('writes all.accept_redirects=0 after every ip_forward write: the kernel sets it to the opposite of ip_forward', () => {
    const script = out.files.find((f) => f.path === SETUP_SCRIPT)!.content;
    const writes = [...script.matchAll(/sysctl -q -w net\.ipv4\.ip_forward=(\d)\n(?:\t# .*\n)?\tsysctl -q -w net\.ipv4\.conf\.all\.accept_redirects=0\n/g)];
    expect(writes.map((m) => m[1])).toEqual(['0', '1']); // stop (and a failed start), start
    expect(out.runtimeAssertions.find((a) => a.id === 'netns.after-ip-forward.net.ipv4.conf.all.accept_redirects')?.check).toEqual({
      kind: 'sysctl',
      key: 'net.ipv4.conf.all.accept_redirects',
      expected: '0',
    });
  });

  it('switches ip_forward on before any tor-only veth is switched off (Tails wrote them the other way round)', () => {
    const script = out.files.find((f) => f.path === SETUP_SCRIPT)!.content;
    const on = script.indexOf('sysctl -q -w net.ipv4.ip_forward=1');
    const off = script.indexOf('sysctl -q -w net.ipv4.conf.veth-tbb.forwarding=0');
    expect(on).toBeGreaterThan(0);
    expect(off).toBeGreaterThan(on);
    // and the namespace's rules are loaded before its veth end exists
    expect(script.indexOf('ip netns exec tbb nft -f')).toBeLessThan(script.indexOf('ip link add veth-tbb'));
    expect(script.indexOf('net.ipv6.conf.default.disable_ipv6=1')).toBeLessThan(script.indexOf('ip link add veth-tbb'));
  });
});

describe('netns static assertions', () => {
  it('pass on the emitted tree', async () => {
    const ctx = ctxFor(out.files);
    for (const a of out.staticAssertions) {
      if (a.tools?.includes('nft') && noNft) continue;
      expect(await a.check(ctx), a.id).toMatchObject({ ok: true });
    }
  });

  // Each case plants one defect; the named assertion must catch it.
  const tbbNft = '/usr/lib/leakless/netns/tbb.nft';
  const cases: { name: string; files: () => GeneratedFile[]; fails: string; nft?: boolean }[] = [
    {
      name: 'a route out of the tor-only namespace',
      files: () =>
        edit(SETUP_SCRIPT, (s) =>
          s.replace('ip -n tbb link set veth0 up\n', 'ip -n tbb link set veth0 up\n\tip -n tbb route add default via 10.200.1.1 dev veth0\n'),
        ),
      fails: 'netns.tor-only-no-route',
    },
    {
      name: 'a route via ip netns exec',
      files: () =>
        edit(SETUP_SCRIPT, (s) =>
          s.replace('ip -n tbb link set veth0 up\n', 'ip -n tbb link set veth0 up\n\tip netns exec tbb ip route add 0.0.0.0/1 via 10.200.1.1\n'),
        ),
      fails: 'netns.tor-only-no-route',
    },
    {
      name: 'a second clearnet route',
      files: () => edit(SETUP_SCRIPT, (s) => s.replace('dev veth0\n\t# DNS', 'dev veth0\n\tip -n clearnet route add 10.0.0.0/8 via 10.200.1.17\n\t# DNS')),
      fails: 'netns.tor-only-no-route',
    },
    {
      name: 'a DNAT to a port tor does not listen on',
      files: () => edit(tbbNft, (s) => s.replace('dnat ip to 10.200.1.1:9050', 'dnat ip to 10.200.1.1:9052')),
      fails: 'netns.dnat-targets-tor',
    },
    {
      name: 'a DNAT to the ControlPort on the host',
      files: () => edit(tbbNft, (s) => s.replace('dnat ip to 10.200.1.1:9050', 'dnat ip to 127.0.0.1:9052')),
      fails: 'netns.dnat-targets-tor',
    },
    {
      name: 'a tor-only namespace without its DNAT',
      files: () => edit(tbbNft, (s) => s.replace(/\t\toifname "lo" ip daddr 127.0.0.1 tcp dport 9050 counter dnat.*\n/, '')),
      fails: 'netns.dnat-targets-tor',
    },
    {
      name: 'a rule without its clause comment',
      files: () => edit(tbbNft, (s) => s.replace(' comment "netns.namespaces[0] anti-spoofing"', '')),
      fails: 'netns.nft-comments',
    },
    {
      name: 'a rule without its counter',
      files: () => edit(tbbNft, (s) => s.replace('ip saddr != 10.200.1.2 counter drop', 'ip saddr != 10.200.1.2 drop')),
      fails: 'netns.nft-comments',
    },
    {
      name: 'a hand edit that keeps every rule well-formed',
      files: () => edit(tbbNft, (s) => s.replace('oifname "lo" counter accept', 'counter accept')),
      fails: 'netns.file-is-ast',
    },
    {
      name: 'a LAN resolver in the tor-only resolv.conf',
      files: () => edit('/etc/netns/tbb/resolv.conf', (s) => s.replace('nameserver 127.0.0.1', 'nameserver 192.168.1.1')),
      fails: 'netns.tor-only-resolver',
    },
    {
      name: 'a clearnet resolv.conf not linked to the saved DNS',
      files: () => edit(SETUP_SCRIPT, (s) => s.replace('ln -sfn /etc/resolv-over-clearnet.conf', 'ln -sfn /etc/resolv.conf')),
      fails: 'netns.clearnet-resolver',
    },
    { name: 'a unit not tied to the firewall', files: () => edit(UNIT_PATH, (s) => s.replace(`Requires=${FIREWALL_UNIT}\n`, '')), fails: 'netns.unit-order' },
    {
      name: 'a launcher that knows an extra namespace',
      files: () => edit(LAUNCHER, (s) => s.replace('tbb) user=', "host) user=ns-tbb uid=117 gid=125 home=/home/ns-tbb sockets='' ;; # x\ntbb) user=")),
      fails: 'netns.launcher',
    },
    {
      name: 'a launcher that runs a namespace as root',
      files: () => edit(LAUNCHER, (s) => s.replace('uid=117 gid=125', 'uid=0 gid=0')),
      fails: 'netns.launcher',
    },
    {
      name: 'a launcher that runs a namespace as the desktop user (the old launcher)',
      files: () => edit(LAUNCHER, (s) => s.replace('user=ns-tbb uid=117 gid=125 home=/home/ns-tbb', 'user=amnesia uid=1000 gid=1000 home=/home/amnesia')),
      fails: 'netns.launcher',
    },
    {
      name: 'a launcher that runs one namespace as the other’s user',
      files: () => edit(LAUNCHER, (s) => s.replace('user=ns-clearnet uid=118 gid=126', 'user=ns-tbb uid=117 gid=125')),
      fails: 'netns.launcher',
    },
    {
      name: 'a launcher with an extra socket on an allowlist',
      files: () =>
        edit(LAUNCHER, (s) =>
          s.replace("sockets='/tmp/.X11-unix/X0' ;; # netns.namespaces[0]", "sockets='/tmp/.X11-unix/X0 /run/dbus/system_bus_socket' ;; # netns.namespaces[0]"),
        ),
      fails: 'netns.launcher',
    },
    {
      name: 'a launcher without a UTS namespace',
      files: () => edit(LAUNCHER, (s) => s.replace('unshare --uts --mount', 'unshare --mount')),
      fails: 'netns.launcher',
    },
    {
      name: 'a launcher in the caller’s session',
      files: () => edit(LAUNCHER, (s) => s.replace('setsid --wait ip netns', 'ip netns')),
      fails: 'netns.launcher',
    },
    {
      name: 'a launcher that passes the caller’s descriptors on',
      files: () => edit(LAUNCHER, (s) => s.replace('*) eval "exec $fd>&-" ;;', '*) : ;;')),
      fails: 'netns.launcher-isolation',
    },
    {
      name: 'a launcher that keeps the caller’s input',
      files: () => edit(LAUNCHER, (s) => s.replace('exec </dev/null\n', '')),
      fails: 'netns.launcher-isolation',
    },
    {
      name: 'a launcher that leaves /run (the buses) visible',
      files: () => edit(LAUNCHER, (s) => s.replace('mount -n --move $stage/run /run\n', '')),
      fails: 'netns.launcher-isolation',
    },
    {
      name: 'a launcher that shows every process',
      files: () => edit(LAUNCHER, (s) => s.replace(',hidepid=invisible', '')),
      fails: 'netns.launcher-isolation',
    },
    {
      name: 'a stop that leaves ICMP redirects accepted',
      files: () =>
        edit(SETUP_SCRIPT, (s) =>
          s.replace(
            'ip_forward=0\n\t# Writing ip_forward sets all.accept_redirects to its opposite (0 → 1): an ICMP redirect from the LAN must still not reroute the host.\n\tsysctl -q -w net.ipv4.conf.all.accept_redirects=0\n',
            'ip_forward=0\n',
          ),
        ),
      fails: 'netns.forwarding-keeps-redirects-off',
    },
    {
      name: 'a script that does not parse',
      files: () => edit(SETUP_SCRIPT, (s) => s.replace('start) start ;;', 'start) start ;')),
      fails: 'netns.shell-syntax',
    },
    { name: 'a launcher bash cannot parse', files: () => edit(LAUNCHER, (s) => s.replace('case $name in', 'case $name')), fails: 'netns.shell-syntax' },
    { name: 'a launcher made not executable', files: () => out.files.map((f) => (f.path === LAUNCHER ? { ...f, mode: 0o644 } : f)), fails: 'netns.files' },
    { name: 'an nft file nft rejects', files: () => edit(tbbNft, (s) => s.replace('policy drop;', 'policy dropp;')), fails: 'netns.nft-check', nft: true },
  ];
  for (const c of cases) {
    it.skipIf(c.nft && noNft)(`catch ${c.name}`, async () => {
      const r = await results(c.files());
      expect(r[c.fails], `${c.fails} did not catch ${c.name}`).toBe(false);
    });
  }
});

describe('netns runtime assertions', () => {
  it('cover each namespace: sysctls inside, addresses, routes, host veth settings, the unit', () => {
    const ids = out.runtimeAssertions.map((a) => a.id);
    expect(ids).toContain('netns.unit-active');
    for (const n of ['tbb', 'clearnet']) {
      expect(ids).toContain(`netns.${n}.addresses`);
      expect(ids).toContain(`netns.${n}.routes`);
      expect(ids).toContain(`netns.${n}.sysctl.net.ipv6.conf.all.disable_ipv6`);
      expect(ids).toContain(`netns.${n}.host-sysctl.net.ipv4.conf.veth-${n}.forwarding`);
    }
    for (const a of out.runtimeAssertions.filter((x) => x.id.includes('.sysctl.') || x.id.endsWith('.addresses') || x.id.endsWith('.routes')))
      expect(a.netns, a.id).toBe(a.id.split('.')[1]);
    expect(out.runtimeAssertions.find((a) => a.id === 'netns.tbb.routes')!.check).toEqual({ kind: 'ip-routes', expected: ['main 10.200.1.0/30 dev veth0'] });
    expect(planNamespaces(policy).map((p) => p.ns.name)).toEqual(['tbb', 'clearnet']);
  });

  // `ip -j` output recorded from a tor-only namespace made by the setup script.
  const addr = JSON.stringify([
    { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
    { ifname: 'veth0', addr_info: [{ family: 'inet', local: '10.200.1.2', prefixlen: 30 }] },
  ]);
  const routes = JSON.stringify([
    { dst: '10.200.1.0/30', dev: 'veth0', protocol: 'kernel', scope: 'link', prefsrc: '10.200.1.2' },
    { type: 'local', dst: '10.200.1.2', dev: 'veth0', table: 'local' },
    { type: 'broadcast', dst: '10.200.1.3', dev: 'veth0', table: 'local' },
    { type: 'local', dst: '127.0.0.0/8', dev: 'lo', table: 'local' },
  ]);
  function fakeExec(over: { addr?: string; v4?: string; v6?: string } = {}): { exec: Exec; calls: string[][] } {
    const calls: string[][] = [];
    const exec: Exec = async (cmd, args) => {
      calls.push([cmd, ...args]);
      const a = args.join(' ');
      if (a.includes('addr show')) return { exitCode: 0, stdout: over.addr ?? addr, stderr: '' };
      if (a.includes('-4 route')) return { exitCode: 0, stdout: over.v4 ?? routes, stderr: '' };
      if (a.includes('-6 route')) return { exitCode: 0, stdout: over.v6 ?? '[]', stderr: '' };
      return { exitCode: 1, stdout: '', stderr: 'unexpected' };
    };
    return { exec, calls };
  }
  const tbbNet = out.runtimeAssertions.filter((a) => a.id === 'netns.tbb.addresses' || a.id === 'netns.tbb.routes');

  it('evaluate inside the named namespace and pass on a correct one', async () => {
    const { exec, calls } = fakeExec();
    const r = await evaluateRuntime(tbbNet, exec);
    expect(r.map((x) => x.ok)).toEqual([true, true]);
    for (const c of calls) expect(c.slice(0, 4)).toEqual(['ip', 'netns', 'exec', 'tbb']);
  });

  it('catch a planted default route, a route in another table, an IPv6 route, an extra address', async () => {
    const withRoute = (extra: object) => JSON.stringify([...JSON.parse(routes), extra]);
    const planted = [
      fakeExec({ v4: withRoute({ dst: 'default', gateway: '10.200.1.1', dev: 'veth0' }) }),
      fakeExec({ v4: withRoute({ dst: '0.0.0.0/1', gateway: '10.200.1.1', dev: 'veth0', table: '100' }) }),
      fakeExec({ v6: JSON.stringify([{ dst: 'fe80::/64', dev: 'veth0', protocol: 'kernel' }]) }),
    ];
    for (const p of planted)
      expect((await evaluateRuntime(tbbNet, p.exec))[1]).toMatchObject({ ok: false, detail: expect.stringMatching(/unexpected \[.+\]/) });
    const realIp = JSON.stringify([...JSON.parse(addr), { ifname: 'eth0', addr_info: [{ family: 'inet', local: '192.168.1.23', prefixlen: 24 }] }]);
    expect((await evaluateRuntime(tbbNet, fakeExec({ addr: realIp }).exec))[0]).toMatchObject({
      ok: false,
      detail: expect.stringContaining('eth0 192.168.1.23/24'),
    });
  });

  it('report "could not tell" as a failure', async () => {
    const exec: Exec = async () => ({ exitCode: 0, stdout: 'not json', stderr: '' });
    expect((await evaluateRuntime(tbbNet, exec)).map((r) => r.ok)).toEqual([false, false]);
  });
});

describe('leakless-netns-exec refusals that need no namespace', () => {
  const launcher = out.files.find((f) => f.path === LAUNCHER)!.content;
  const run = (...args: string[]) => execa('bash', ['-c', launcher, 'leakless-netns-exec', ...args], { reject: false });

  it('refuses an unknown namespace, bad usage and a command that env would misread', async () => {
    expect(await run('host', '--', 'true')).toMatchObject({ exitCode: 2, stderr: 'leakless-netns-exec: unknown namespace "host" (known: tbb clearnet)' });
    expect(await run('tbb', 'true')).toMatchObject({ exitCode: 2, stderr: expect.stringContaining('usage: leakless-netns-exec NAME -- COMMAND') });
    expect(await run('tbb', '--')).toMatchObject({ exitCode: 2 });
    expect(await run('tbb', '--', 'A=b', 'true')).toMatchObject({ exitCode: 2, stderr: expect.stringContaining('contains "="') });
  });
});

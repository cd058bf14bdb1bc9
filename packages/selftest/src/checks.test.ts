// The checks that see attacks, on made-up observations (the lab proves them on
// real ones: e2e/src/lab/selftest-checks.test.ts): every nftables hook, every
// interface's sysctl, who holds each listener, and active probes that need a
// positive control before a refusal counts.
import { describe, expect, it } from 'vitest';
import type { RuntimeAssertion, RuntimeCheck } from '@leakless/policy';
import { evaluateRuntime, type Exec, listeningSockets, nftInventory, sysctlValues } from './evaluate.js';

const one = async (check: RuntimeCheck, exec: Exec, destinations?: Record<string, string>) =>
  (await evaluateRuntime([{ id: 'x', statement: 's', check, scope: 'network' } as RuntimeAssertion], exec, destinations ? { destinations } : {}))[0]!;
const out = (stdout: string, exitCode = 0): ReturnType<Exec> => Promise.resolve({ exitCode, stdout, stderr: '' });

const ruleset = (extra: object[] = []) =>
  JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { table: { family: 'inet', name: 'leakless', handle: 1 } },
      { chain: { family: 'inet', table: 'leakless', name: 'output', handle: 2, type: 'filter', hook: 'output', prio: 0, policy: 'drop' } },
      { rule: { family: 'inet', table: 'leakless', chain: 'output', handle: 3 } },
      ...extra,
    ],
  });

describe('nft-inventory', () => {
  const expected = ['table inet leakless', 'chain inet leakless output: filter hook output priority 0 policy drop'];
  it('lists every table, chain and flowtable, base chains with their hook', () => {
    expect(nftInventory(ruleset())).toEqual(expected);
    expect(
      nftInventory(
        ruleset([
          { chain: { family: 'netdev', table: 'x', name: 'in', type: 'filter', hook: 'ingress', dev: 'eth0', prio: -500, policy: 'accept' } },
          { flowtable: { family: 'ip', table: 'y', name: 'f', hook: 'ingress', prio: 0, dev: ['eth1', 'eth0'] } },
          { chain: { family: 'inet', table: 'leakless', name: 'helper' } },
        ]),
      ),
    ).toEqual([
      ...expected,
      'chain netdev x in: filter hook ingress device eth0 priority -500 policy accept',
      'flowtable ip y f: hook ingress device eth0,eth1 priority 0',
      'chain inet leakless helper',
    ]);
  });
  it('fails on a foreign table with a hook or a netdev ingress chain beside ours', async () => {
    expect((await one({ kind: 'nft-inventory', expected }, () => out(ruleset()))).ok).toBe(true);
    const foreign = ruleset([
      { table: { family: 'netdev', name: 'evil' } },
      { chain: { family: 'netdev', table: 'evil', name: 'in', type: 'filter', hook: 'ingress', prio: -500, policy: 'accept' } },
    ]);
    const r = await one({ kind: 'nft-inventory', expected }, () => out(foreign));
    expect(r).toMatchObject({ ok: false, detail: expect.stringContaining('chain netdev evil in: filter hook ingress') });
    expect((await one({ kind: 'nft-inventory', expected }, () => out('', 1))).ok).toBe(false);
  });
});

describe('sysctl-interfaces', () => {
  const check: RuntimeCheck = { kind: 'sysctl-interfaces', family: 'ipv6', key: 'disable_ipv6', expected: '1', except: { lo: '0' } };
  const sysctl = (eth0: string) =>
    [
      'net.ipv6.conf.all.disable_ipv6 = 1',
      'net.ipv6.conf.default.disable_ipv6 = 1',
      `net.ipv6.conf.eth0.disable_ipv6 = ${eth0}`,
      'net.ipv6.conf.eth0/100.disable_ipv6 = 1',
      'net.ipv6.conf.lo.disable_ipv6 = 0',
    ].join('\n');
  it('checks every interface, not only all and default: one interface with IPv6 back on fails', async () => {
    expect(await one(check, () => out(sysctl('1')))).toMatchObject({ ok: true, detail: expect.stringContaining('eth0/100') });
    expect(await one(check, () => out(sysctl('0')))).toMatchObject({ ok: false, detail: expect.stringContaining('eth0 = 0 (expected 1)') });
  });
  it('could not read is a failure', async () => {
    expect((await one(check, () => out('', 255))).ok).toBe(false);
  });
});

describe('listeners', () => {
  const ss = (who9052: string, extra = '') =>
    [
      'tcp LISTEN 0 4096 127.0.0.1:9050 0.0.0.0:* users:(("tor",pid=10,fd=6))',
      `tcp LISTEN 0 4096 127.0.0.1:9052 0.0.0.0:* users:(("${who9052}",pid=11,fd=7))`,
      'udp UNCONN 0 0 127.0.0.1:5353 0.0.0.0:* users:(("tor",pid=10,fd=8))',
      'tcp LISTEN 0 5 127.0.0.1:631 0.0.0.0:* users:(("cupsd",pid=12,fd=3))',
      'udp UNCONN 0 0 192.168.1.20%eth0:68 0.0.0.0:* users:(("NetworkManager",pid=13,fd=20))',
      extra,
    ].join('\n');
  const check: RuntimeCheck = {
    kind: 'listeners',
    held: [
      { protocol: 'tcp', address: '127.0.0.1', port: 9050, process: 'tor' },
      { protocol: 'tcp', address: '127.0.0.1', port: 9052, process: 'tor' },
      { protocol: 'udp', address: '127.0.0.1', port: 5353, process: 'tor' },
    ],
    allowed: [{ protocol: 'udp', port: 68, why: 'the DHCP client' }],
  };
  it('parses ss, interface scopes and IPv6 brackets included', () => {
    expect(listeningSockets('tcp LISTEN 0 5 [::1]:631 [::]:* users:(("cupsd",pid=1,fd=3))\n')).toEqual([
      { protocol: 'tcp', address: '::1', port: 631, process: 'cupsd' },
    ]);
    expect(listeningSockets(ss('tor'))[4]).toMatchObject({ address: '192.168.1.20', port: 68 });
  });
  it('holds when tor holds its ports and everything else is loopback or allowed', async () => {
    expect((await one(check, () => out(ss('tor')))).ok).toBe(true);
  });
  it('fails on a squatter on a Tor port, on a missing listener and on an open port outside loopback', async () => {
    expect(await one(check, () => out(ss('python3')))).toMatchObject({ ok: false, detail: expect.stringContaining('9052 held by python3, not tor') });
    expect(
      await one(check, () =>
        out(
          ss('tor')
            .split('\n')
            .filter((l) => !l.includes(':9050'))
            .join('\n'),
        ),
      ),
    ).toMatchObject({ ok: false, detail: expect.stringContaining('127.0.0.1:9050 not listening') });
    expect(await one(check, () => out(ss('tor', 'tcp LISTEN 0 5 0.0.0.0:4444 0.0.0.0:* users:(("nc",pid=14,fd=3))')))).toMatchObject({
      ok: false,
      detail: expect.stringContaining('unexpected tcp listener 0.0.0.0:4444 (nc)'),
    });
  });
});

describe('refused-probe', () => {
  const check: RuntimeCheck = {
    kind: 'refused-probe',
    to: 'internet-resolver',
    protocol: 'udp',
    port: 53,
    control: { uid: 114, gid: 123 },
    attacker: { uid: 1000, gid: 1000 },
    ride: true,
  };
  /** A host where uid 114 gets answers from port 40001 and uid 1000's sends end as `attacker`. */
  const host =
    (attacker: { ok: boolean; error: string | null }, control = { ok: true, error: null as string | null }): Exec =>
    async (cmd, args) => {
      if (cmd !== 'setpriv') return { exitCode: 127, stdout: '', stderr: 'no' };
      const uid = Number(args[0]!.split('=')[1]);
      const p = JSON.parse(args.at(-1)!) as { sport?: number; address: string; port: number };
      if (uid === 114) return { exitCode: 0, stdout: JSON.stringify({ ...control, sport: 40001, ms: 3 }), stderr: '' };
      expect(p.sport).toBe(40001); // the ride: from the control's own port
      return { exitCode: 0, stdout: JSON.stringify({ ...attacker, sport: p.sport, ms: 1 }), stderr: '' };
    };
  it('holds when the control gets through and the attacker is refused here', async () => {
    const r = await one(check, host({ ok: false, error: 'EPERM' }), { 'internet-resolver': '198.51.100.10' });
    expect(r).toMatchObject({ ok: true, detail: expect.stringContaining('refused here (EPERM') });
  });
  it('fails on a leak, on a timeout (not refused here), without its destination and when the control fails (silence cannot pass)', async () => {
    const d = { 'internet-resolver': '198.51.100.10:5353' };
    expect(await one(check, host({ ok: true, error: null }), d)).toMatchObject({ ok: false, detail: expect.stringMatching(/^LEAK/) });
    expect(await one(check, host({ ok: false, error: 'TIMEOUT' }), d)).toMatchObject({
      ok: false,
      detail: expect.stringContaining('not refused by this host'),
    });
    expect(await one(check, host({ ok: false, error: 'EPERM' }))).toMatchObject({
      ok: false,
      detail: expect.stringContaining('no destination "internet-resolver"'),
    });
    expect(await one(check, host({ ok: false, error: 'EPERM' }, { ok: false, error: 'TIMEOUT' }), d)).toMatchObject({
      ok: false,
      detail: expect.stringContaining('the path is down'),
    });
    expect((await one(check, host({ ok: false, error: 'EPERM' }), { 'internet-resolver': 'resolver.example' })).ok).toBe(false);
  });
});

describe('sysctl: the keys of one namespace read in one process', () => {
  const sysctl = (key: string, expected: string, netns?: string): RuntimeAssertion => ({
    id: `${netns ?? 'host'}.${key}`,
    statement: 's',
    check: { kind: 'sysctl', key, expected },
    scope: netns ? 'netns' : 'system',
    ...(netns ? { netns } : {}),
  });
  /** A kernel with these values (per namespace); records every process it is asked to start. */
  function kernel(values: Record<string, Record<string, string>>) {
    const calls: string[] = [];
    const exec: Exec = async (cmd, args) => {
      calls.push([cmd, ...args].join(' '));
      let ns = 'host';
      let a = [cmd, ...args];
      if (cmd === 'ip' && args[0] === 'netns') [ns, a] = [args[2]!, args.slice(3)];
      const v = values[ns] ?? {};
      if (a[0] !== 'sysctl') return { exitCode: 127, stdout: '', stderr: 'no such tool' };
      const keys = a.slice(1).filter((k) => k !== '-n');
      const missing = keys.filter((k) => v[k] === undefined);
      const stdout = keys
        .filter((k) => v[k] !== undefined)
        .map((k) => (a[1] === '-n' ? `${v[k]}\n` : `${k} = ${v[k]}\n`))
        .join('');
      const stderr = missing.map((k) => `sysctl: cannot stat /proc/sys/${k.replaceAll('.', '/')}: No such file or directory\n`).join('');
      return { exitCode: missing.length ? 1 : 0, stdout, stderr };
    };
    return { exec, calls };
  }
  const values = { host: { 'net.a': '1', 'net.b': '0', 'net.range': '32768\t60999' }, tbb: { 'net.a': '0', 'net.b': '0' } };
  const assertions = [sysctl('net.a', '1'), sysctl('net.a', '0', 'tbb'), sysctl('net.b', '1'), sysctl('net.range', '32768 60999'), sysctl('net.b', '0', 'tbb')];

  it('one `sysctl KEY…` for the host and one per namespace, with the results of reading each key alone', async () => {
    const k = kernel(values);
    const batched = await evaluateRuntime(assertions, k.exec);
    expect(k.calls).toEqual(['sysctl net.a net.b net.range', 'ip netns exec tbb sysctl net.a net.b']);
    const alone = await Promise.all(assertions.map(async (a) => (await evaluateRuntime([a], kernel(values).exec))[0]!));
    expect(batched).toEqual(alone);
    expect(batched.map((r) => r.ok)).toEqual([true, true, false, true, true]);
  });
  it('a key the kernel does not have: the batch is not used, each key is read alone and the missing one fails with the reason', async () => {
    const k = kernel(values);
    const r = await evaluateRuntime([...assertions, sysctl('net.nope', '1')], k.exec);
    expect(k.calls.filter((c) => c.startsWith('sysctl -n '))).toHaveLength(4);
    expect(r.map((x) => x.ok)).toEqual([true, true, false, true, true, false]);
    expect(r.at(-1)!.detail).toMatch(/could not read net\.nope: sysctl: cannot stat/);
  });
  it('sysctlValues takes only exactly one KEY = VALUE line per key, in the order asked', () => {
    expect([...sysctlValues(['a.b', 'c'], 'a.b = 1\nc = 2\t3\n')]).toEqual([
      ['a.b', '1'],
      ['c', '2\t3'],
    ]);
    expect(sysctlValues(['a.b', 'c'], 'c = 2\na.b = 1\n').size).toBe(0);
    expect(sysctlValues(['a.b', 'c'], 'a.b = 1\n').size).toBe(0);
    expect(sysctlValues(['a.b', 'c'], 'a.b = 1\nmore\nc = 2\n').size).toBe(0);
    expect(sysctlValues(['a.b'], 'a.bc = 1\n').size).toBe(0);
  });
});

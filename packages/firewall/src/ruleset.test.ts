import { describe, expect, it } from 'vitest';
import { checkRuleset, flowOwners, listenerGrants, loopbackGrants, ruleset, lockdownRuleset, lockdownCheck } from './index.js';
import { evaluateHook, evaluateOutput, accepted, ruleCount, renderNft, type Packet } from '@leakless/nft';
import { policyOf } from './testing/policies.js';

const policy = policyOf();
const t = ruleset(policy);

// Tails' matrix (docs/threat-model.md#tails-matrix), restated by hand
// for the default profile so a compiler change that drifts from it fails here.
// uid: 0 root, 1000 amnesia, 106 debian-tor, 114 clearnet, 116 htp, 42 _apt, 4242 unnamed.
type Row = [uid: number, daddr: string, proto: 'tcp' | 'udp' | 'icmp', port: number | undefined, oif: string, allowed: boolean, why: string];
const INTERNET = '198.51.100.10';
const LAN = '192.168.1.20';
const rows: Row[] = [
  [106, INTERNET, 'tcp', 443, 'eth0', true, 'tor: new TCP out'],
  [106, INTERNET, 'udp', 53, 'eth0', true, 'tor: DNS out (bridge mode)'],
  [106, INTERNET, 'udp', 123, 'eth0', false, 'tor: other UDP refused'],
  [106, INTERNET, 'icmp', undefined, 'eth0', false, 'tor: ICMP refused'],
  [106, LAN, 'udp', 53, 'eth0', true, 'tor may use a LAN resolver'],
  [106, LAN, 'udp', 137, 'eth0', false, 'NetBIOS refused for everyone'],
  [114, INTERNET, 'tcp', 80, 'eth0', true, 'clearnet: TCP out'],
  [114, INTERNET, 'udp', 53, 'eth0', true, 'clearnet: DNS out'],
  [114, '127.0.0.1', 'tcp', 9050, 'lo', false, 'clearnet: no loopback'],
  [1000, INTERNET, 'tcp', 443, 'eth0', false, 'amnesia never out'],
  [1000, INTERNET, 'udp', 53, 'eth0', false, 'amnesia never out'],
  [1000, LAN, 'tcp', 80, 'eth0', true, 'LAN open'],
  [1000, LAN, 'icmp', undefined, 'eth0', true, 'LAN open, any protocol'],
  [1000, LAN, 'tcp', 53, 'eth0', false, 'LAN DNS refused'],
  [1000, LAN, 'udp', 53, 'eth0', false, 'LAN DNS refused'],
  [1000, '127.0.0.1', 'tcp', 9050, 'lo', true, 'system SocksPort'],
  [1000, '127.0.0.1', 'tcp', 9062, 'lo', true, 'apps SocksPort'],
  [1000, '127.0.0.1', 'tcp', 9063, 'lo', false, 'bulk SocksPort refused (Tails)'],
  [1000, '127.0.0.1', 'tcp', 9052, 'lo', false, 'ControlPort refused (Tails)'],
  [1000, '127.0.0.1', 'tcp', 631, 'lo', true, 'blocklist: any other TCP port'],
  [1000, '127.0.0.1', 'udp', 53, 'lo', true, 'DNS, redirected to the DNSPort'],
  [1000, '127.0.0.1', 'udp', 9999, 'lo', false, 'other loopback UDP refused'],
  [1000, '127.200.1.2', 'tcp', 80, 'lo', true, 'automap → TransPort'],
  [1000, '127.0.1.1', 'tcp', 80, 'lo', false, 'only 127.0.0.1'],
  [1000, '10.200.1.1', 'tcp', 9050, 'lo', false, 'browser SocksPort not via "LAN" (Beyond Tails)'],
  [1000, '10.200.1.2', 'tcp', 80, 'veth-tbb', false, 'namespace guest not LAN (Beyond Tails)'],
  [0, '127.0.0.1', 'tcp', 9052, 'lo', true, 'root: ControlPort'],
  [0, '127.0.0.1', 'udp', 53, 'lo', true, 'root: DNS (Tails ef319ff4c57)'],
  [0, '127.0.0.1', 'tcp', 631, 'lo', false, 'root: no other loopback port'],
  [0, INTERNET, 'tcp', 443, 'eth0', false, 'root never out'],
  [0, LAN, 'tcp', 22, 'eth0', true, 'root: LAN'],
  [116, '127.0.0.1', 'tcp', 9062, 'lo', true, 'htp: apps SocksPort'],
  [116, '127.0.0.1', 'tcp', 9050, 'lo', false, 'htp: not the system SocksPort'],
  [116, '127.0.0.1', 'udp', 53, 'lo', true, 'htp: DNS'],
  [116, '127.200.1.2', 'tcp', 80, 'lo', false, 'automap only for amnesia'],
  [42, '127.0.0.1', 'tcp', 9050, 'lo', true, '_apt: system SocksPort'],
  [42, '127.0.0.1', 'udp', 53, 'lo', false, '_apt: DNS refused (Tails 458a3b5b469)'],
  [4242, '127.0.0.1', 'tcp', 9050, 'lo', false, 'unnamed user: no Tor port'],
  [4242, INTERNET, 'tcp', 443, 'eth0', false, 'unnamed user never out'],
  [4242, LAN, 'udp', 5000, 'eth0', true, 'unnamed user: LAN'],
  [106, '127.0.0.1', 'tcp', 4000, 'lo', true, 'tor: pluggable transport on loopback'],
  [106, '127.0.0.1', 'tcp', 9050, 'lo', false, 'tor: not its own SocksPort'],
  [106, '10.200.1.18', 'tcp', 80, 'veth-clearnet', false, 'tor: not into a namespace'],
];

describe('ruleset (default profile)', () => {
  it('passes every structural check', () => {
    const failed = checkRuleset(t, policy).filter((c) => !c.ok);
    expect(failed).toEqual([]);
  });

  it.each(rows)('uid %i → %s %s/%s via %s: %s (%s)', (uid, daddr, protocol, dport, oif, allowed) => {
    const p: Packet = {
      family: 'ipv4',
      oif,
      daddr,
      protocol,
      ...(dport ? { dport } : {}),
      ...(protocol === 'tcp' ? { tcpFlags: 'syn' as const } : {}),
      skuid: uid,
      ctState: 'new',
    };
    expect(accepted(evaluateOutput(t, p).decision)).toBe(allowed);
  });

  it('refuses all IPv6, even established', () => {
    for (const ctState of ['new', 'established'] as const) {
      for (const hook of ['input', 'output', 'forward'] as const) {
        expect(accepted(evaluateHook(t, hook, { family: 'ipv6', daddr: '2001:db8::1', protocol: 'tcp', dport: 443, skuid: 106, ctState }))).toBe(false);
      }
    }
  });

  it('drops invalid before the LAN accept, and accepts RELATED only as ICMP on lo', () => {
    const lan = { family: 'ipv4' as const, oif: 'eth0', daddr: LAN, skuid: 0 };
    expect(evaluateOutput(t, { ...lan, protocol: 'tcp', dport: 80, tcpFlags: 'other', ctState: 'invalid' }).decision.rule?.clause).toMatch(/invalid/);
    expect(accepted(evaluateOutput(t, { ...lan, protocol: 'icmp', ctState: 'related' }).decision)).toBe(false);
    expect(accepted(evaluateOutput(t, { family: 'ipv4', oif: 'eth0', daddr: INTERNET, protocol: 'icmp', ctState: 'related' }).decision)).toBe(false);
    expect(accepted(evaluateOutput(t, { family: 'ipv4', oif: 'lo', daddr: '127.0.0.1', protocol: 'icmp', ctState: 'related' }).decision)).toBe(true);
  });

  it('lets the tbb namespace reach only its SocksPort, and the clearnet namespace only out', () => {
    const tbb = { family: 'ipv4' as const, iif: 'veth-tbb', saddr: '10.200.1.2', protocol: 'tcp' as const, tcpFlags: 'syn' as const, ctState: 'new' as const };
    expect(accepted(evaluateHook(t, 'input', { ...tbb, daddr: '10.200.1.1', dport: 9050 }))).toBe(true);
    expect(accepted(evaluateHook(t, 'input', { ...tbb, daddr: '10.200.1.1', dport: 9052 }))).toBe(false);
    expect(accepted(evaluateHook(t, 'forward', { ...tbb, oif: 'eth0', daddr: INTERNET, dport: 443 }))).toBe(false);
    const cn = {
      family: 'ipv4' as const,
      iif: 'veth-clearnet',
      saddr: '10.200.1.18',
      protocol: 'tcp' as const,
      tcpFlags: 'syn' as const,
      ctState: 'new' as const,
    };
    expect(accepted(evaluateHook(t, 'forward', { ...cn, oif: 'eth0', daddr: INTERNET, dport: 443 }))).toBe(true);
    expect(accepted(evaluateHook(t, 'forward', { ...cn, oif: 'eth0', daddr: LAN, dport: 80 }))).toBe(true);
    expect(accepted(evaluateHook(t, 'forward', { ...cn, oif: 'veth-tbb', daddr: '10.200.1.2', dport: 80 }))).toBe(false);
    expect(accepted(evaluateHook(t, 'input', { ...cn, daddr: '10.200.1.17', dport: 80 }))).toBe(false);
    expect(accepted(evaluateHook(t, 'input', { ...cn, daddr: '10.200.1.1', dport: 9050 }))).toBe(false);
    // nothing may open a connection into the clearnet namespace
    expect(
      accepted(
        evaluateHook(t, 'forward', {
          family: 'ipv4',
          iif: 'eth0',
          oif: 'veth-clearnet',
          saddr: INTERNET,
          daddr: '10.200.1.18',
          protocol: 'tcp',
          dport: 80,
          tcpFlags: 'syn',
          ctState: 'new',
        }),
      ),
    ).toBe(false);
  });

  it('grants each Tor listener exactly its clients (what tor-config cross-checks)', () => {
    const grants = Object.fromEntries(listenerGrants(t, policy).map((g) => [g.clause, { uids: g.uids, ns: g.namespaces, all: g.openToAll }]));
    expect(grants).toEqual({
      'tor.socksPorts[0]': { uids: [42, 1000], ns: [], all: false },
      'tor.socksPorts[1]': { uids: [116, 1000], ns: [], all: false },
      'tor.socksPorts[2]': { uids: [], ns: [], all: false },
      'tor.socksPorts[3]': { uids: [], ns: ['tbb'], all: false },
      'tor.controlPort': { uids: [0], ns: [], all: false },
      'tor.dnsPort': { uids: [0, 116, 1000], ns: [], all: false },
      'tor.transPort': { uids: [1000], ns: [], all: false },
    });
    const flat = loopbackGrants(t);
    expect(flat).toContainEqual({ skuid: 42, protocol: 'tcp', daddr: '127.0.0.1', dport: 9050, clause: 'tor.socksPorts[0].clients' });
    expect(flat.every((g) => g.clause.startsWith('tor.'))).toBe(true);
  });

  it('is deterministic and traces every rule to a clause', () => {
    expect(renderNft(ruleset(policyOf()))).toBe(renderNft(t));
    for (const c of t.chains) for (const r of c.rules) expect(r.clause.length).toBeGreaterThan(0);
    expect(ruleCount(t)).toBeGreaterThan(30);
  });

  it('lockdown accepts only IPv4 loopback', () => {
    expect(lockdownCheck.check(lockdownRuleset())).toMatchObject({ ok: true });
  });
});

// Finding: in Tails' order (ESTABLISHED accepted first) a desktop program that
// binds the clearnet user's or tor's source port and sends to the same server
// is "established" and leaves (docs/threat-model.md#flow-ownership).
describe('flow ownership', () => {
  const owners = flowOwners(policy);
  const markOf = (uid: number) => owners.users.find((o) => o.uid === uid)!.mark;
  const ride = (owner: number, rider: number, daddr: string, ctState: 'established' | 'new' = 'established'): Packet => ({
    family: 'ipv4',
    oif: 'eth0',
    daddr,
    protocol: 'udp',
    sport: 40001,
    dport: 53,
    skuid: rider,
    ctState,
    ctMark: markOf(owner),
  });

  it('marks a policy user’s flows uid + 1 (root’s too, so 0 stays "nobody’s"), the rest with marks no uid + 1 takes', () => {
    expect(owners.users).toContainEqual({ uid: 0, mark: 1 });
    expect(owners.users).toContainEqual({ uid: 106, mark: 0x6b });
    expect(owners.unnamed).toBe(0xffffffff);
    expect([...owners.namespaces.values()]).toEqual([0xfffffffe, 0xfffffffd]);
    const odd = flowOwners(
      policyOf((d) => {
        d.users.find((u) => u.name === 'htp')!.uid = 0xfffffffe;
      }),
    );
    expect(odd.unnamed).toBe(0xfffffffe);
  });

  it.each([
    [114, 1000, INTERNET, 'the desktop user on the clearnet user’s DNS flow to the Internet'],
    [106, 1000, LAN, 'the desktop user on tor’s DNS flow to the LAN resolver (which lan.blockedServices refuses it)'],
    [106, 4242, INTERNET, 'an unnamed uid on tor’s DNS flow'],
    [0, 1000, LAN, 'the desktop user on root’s flow'],
  ])('refuses riding uid %i’s flow as uid %i to %s: %s', (owner, rider, daddr) => {
    expect(accepted(evaluateOutput(t, { ...ride(owner, rider, daddr), ctMark: 0 }).decision)).toBe(false);
    for (const ctState of ['established', 'new'] as const) {
      const r = evaluateOutput(t, ride(owner, rider, daddr, ctState));
      expect(accepted(r.decision)).toBe(false);
      expect(r.decision.rule?.clause).toMatch(/#flow-ownership/);
      expect(r.packet.ctMark).toBe(markOf(owner));
    }
    expect(accepted(evaluateOutput(t, ride(owner, owner, daddr)).decision)).toBe(true);
    expect(accepted(evaluateOutput(t, { ...ride(owner, rider, daddr), skuid: undefined, ctDirection: 'reply' }).decision)).toBe(true);
  });

  it('a flow made before the table loaded (no owner) carries no socket’s packets; the kernel’s own packets pass', () => {
    expect(accepted(evaluateOutput(t, { ...ride(0, 1000, LAN), ctMark: 0 }).decision)).toBe(false);
    expect(accepted(evaluateOutput(t, { ...ride(0, 1000, LAN), ctMark: 0, skuid: undefined }).decision)).toBe(true);
  });

  it('renders the owners as maps and sets an administrator can read', () => {
    const text = renderNft(t);
    expect(text).toContain(
      'ct mark 0x00000000 ct state new counter ct mark set meta skuid map { 0 : 0x00000001, 42 : 0x0000002b, 106 : 0x0000006b, 114 : 0x00000073, 116 : 0x00000075, 117 : 0x00000076, 118 : 0x00000077, 1000 : 0x000003e9 }',
    );
    expect(text).toContain('ct direction original ct mark != 0xffffffff meta skuid . ct mark != { 0 . 0x00000001, 42 . 0x0000002b,');
    expect(text).toContain('ct direction original ct mark 0xffffffff meta skuid { 0, 42, 106, 114, 116, 117, 118, 1000 } counter drop');
    expect(text).toContain(
      'ip saddr { 10.200.1.1, 127.0.0.1 } tcp sport { 9040, 9050, 9052, 9062, 9063 } ct direction reply meta skuid != { 0, 106 } counter drop',
    );
    expect(text).toContain('iifname "veth-clearnet" ip saddr 10.200.1.18 ct mark 0x00000000 ct state new counter ct mark set 0xfffffffd accept');
  });

  it('only tor answers on a Tor port: a program squatting it while tor is down gets no answer out', () => {
    const answer = (skuid: number | undefined, sport = 9052): Packet => ({
      family: 'ipv4',
      oif: 'lo',
      saddr: '127.0.0.1',
      daddr: '127.0.0.1',
      protocol: 'tcp',
      sport,
      dport: 41000,
      ...(skuid !== undefined ? { skuid } : {}),
      ctState: 'established',
      ctDirection: 'reply',
      ctMark: 1,
    });
    expect([0, 106, undefined, 1000, 4242].map((u) => accepted(evaluateOutput(t, answer(u)).decision))).toEqual([true, true, true, false, false]);
    // a desktop program's own server on another port answers as before
    expect(accepted(evaluateOutput(t, { ...answer(1000, 8080), ctMark: 0x3e9 }).decision)).toBe(true);
  });
});

describe('ruleset (policy variants)', () => {
  it('allowlist mode: the desktop user reaches its listeners and the listed ports only', () => {
    const p = policyOf((d) => {
      d.loopback.mode = 'allowlist';
      d.loopback.allowedTcpPorts = [631];
    });
    const rt = ruleset(p);
    expect(checkRuleset(rt, p).filter((c) => !c.ok)).toEqual([]);
    const to = (dport: number) =>
      accepted(
        evaluateOutput(rt, { family: 'ipv4', oif: 'lo', daddr: '127.0.0.1', protocol: 'tcp', dport, tcpFlags: 'syn', skuid: 1000, ctState: 'new' }).decision,
      );
    expect([to(9050), to(631), to(8080), to(9052)]).toEqual([true, true, false, false]);
  });

  it('follows the policy: ports, uids and ranges come from it, not from constants', () => {
    const p = policyOf((d) => {
      d.tor.socksPorts[0]!.port = 19050;
      d.users.find((u) => u.name === 'debian-tor')!.uid = 123;
      d.lan.ipv4Ranges = ['192.168.0.0/16'];
    });
    const rt = ruleset(p);
    expect(checkRuleset(rt, p).filter((c) => !c.ok)).toEqual([]);
    const text = renderNft(rt);
    expect(text).toContain('tcp dport 19050 meta skuid 42');
    expect(text).toContain('meta skuid 123 ct state new');
    expect(text).not.toContain('10.0.0.0/8');
    expect(text).not.toMatch(/skuid 106\b/);
  });

  it('tor.reachablePorts narrows the tor daemon to those TCP ports', () => {
    const p = policyOf((d) => {
      d.tor.reachablePorts = [9001, 443];
    });
    const rt = ruleset(p);
    expect(checkRuleset(rt, p).filter((c) => !c.ok)).toEqual([]);
    const out = (dport: number) =>
      accepted(
        evaluateOutput(rt, { family: 'ipv4', oif: 'eth0', daddr: INTERNET, protocol: 'tcp', dport, tcpFlags: 'syn', skuid: 106, ctState: 'new' }).decision,
      );
    expect([out(443), out(9001), out(80)]).toEqual([true, true, false]);
    expect(renderNft(rt)).toContain('tcp dport { 443, 9001 } tcp flags syn / fin,syn,rst,ack meta skuid 106');
  });

  it('compiles a policy with no namespaces and no clearnet user', () => {
    const p = policyOf((d) => {
      d.netns.namespaces = [];
      d.tor.socksPorts = d.tor.socksPorts.filter((s) => s.netns === undefined);
      d.time.preTorCheck.enabled = false;
      d.users = d.users.filter((u) => u.role !== 'clearnet');
    });
    const rt = ruleset(p);
    expect(checkRuleset(rt, p).filter((c) => !c.ok)).toEqual([]);
    expect(rt.chains.find((c) => c.name === 'nat_postrouting')!.rules).toEqual([]);
    expect(renderNft(rt)).not.toContain('veth-');
  });
});

// The namespaces as principals of the probe matrix: for each netns the
// policy declares, the destinations it must reach and the ones it must not,
// with the verdict taken from the policy, and which wall enforces it
// ("netns" = the namespace's own routes and rules, "firewall" = the host's
// ruleset). Plain data, so the shared lab can fold it into its matrix.
import type { Policy, ResolvedNamespace } from '@leakless/policy';
import type { LabAddresses } from '../lab/index.js';
import { type ProbeResult, type ProbeSpec, token } from './harness.js';

export type Expect = 'reach' | 'blocked';
export type Wall = 'netns' | 'firewall';

export interface NsProbe extends ProbeSpec {
  readonly label: string;
  readonly expect: Expect;
  /** What guarantees the verdict: with only the namespaces wired (no host firewall loaded), 'firewall' probes are not judged. */
  readonly wall: Wall;
}

/** Ports a sut-side listener answers on (bound to 0.0.0.0: every host address). */
export function hostPorts(policy: Policy): { tcp: number[]; udp: number[] } {
  const tcp = [...new Set(policy.torListeners.filter((l) => l.protocol === 'tcp').map((l) => l.port))].sort((a, b) => a - b);
  const udp = [...new Set(policy.torListeners.filter((l) => l.protocol === 'udp').map((l) => l.port)), 53].sort((a, b) => a - b);
  return { tcp, udp };
}

/** A host TCP port that is a Tor port but not the namespace's SocksPort (e.g. the ControlPort). */
function otherTorPort(policy: Policy, ns: ResolvedNamespace): number {
  return policy.controlPort.port !== ns.socksPort?.port ? policy.controlPort.port : policy.transPort.port;
}

/** The lab's addresses the probes aim at: the LAN router, the sut's uplink, the Internet hosts. */
function targets(a: LabAddresses) {
  return { lanRouter: a.lanRouter, lanRouter6: a.lanRouter6, sut: a.sutLan, inetA: a.internet4[0], inetB: a.internet4[1], inet6: a.internet6 };
}

/** A probe from `ns`, blocked by the namespace's own wall unless said otherwise. */
const prober =
  (ns: ResolvedNamespace) =>
  (label: string, spec: Omit<ProbeSpec, 'id'>, expect: Expect = 'blocked', wall: Wall = 'netns'): NsProbe => ({
    id: token(`${ns.name}-${label}`),
    label,
    expect,
    wall,
    ...spec,
  });

export function torOnlyProbes(policy: Policy, ns: ResolvedNamespace, addresses: LabAddresses): NsProbe[] {
  const at = targets(addresses);
  const socks = ns.socksPort!;
  const other = otherTorPort(policy, ns);
  const dnsPort = policy.dnsPort.port;
  const clearnet = policy.namespaces.find((n) => n.kind === 'clearnet');
  const p = prober(ns);
  return [
    p('socks-dnat', { proto: 'socks-http', host: at.inetA, port: 80, via: { host: '127.0.0.1', port: socks.port } }, 'reach'),
    p('inet-http', { proto: 'http', host: at.inetA, port: 80 }),
    p('inet-tcp-b', { proto: 'tcp', host: at.inetB, port: 80 }),
    p('inet-udp', { proto: 'udp', host: at.inetA, port: 53 }),
    p('inet6-tcp', { proto: 'tcp', host: at.inet6, port: 80 }),
    p('inet6-udp', { proto: 'udp', host: at.inet6, port: 53 }),
    p('lan-http', { proto: 'http', host: at.lanRouter, port: 80 }),
    p('lan6-tcp', { proto: 'tcp', host: at.lanRouter6, port: 80 }),
    p('lan-dns-udp', { proto: 'udp', host: at.lanRouter, port: 53 }),
    p('lan-dns-tcp', { proto: 'tcp', host: at.lanRouter, port: 53 }),
    p('dns-lookup', { proto: 'dns', host: `${token('q')}.lab.example` }),
    p('host-uplink-socks', { proto: 'tcp', host: at.sut, port: socks.port }),
    p('host-veth-other-port', { proto: 'tcp', host: ns.hostAddress, port: other }),
    // The SocksPort itself, dialled directly instead of through the DNAT: the one way out is 127.0.0.1.
    p('host-veth-socks-direct', { proto: 'tcp', host: ns.hostAddress, port: socks.port }),
    p('host-veth-udp-dns', { proto: 'udp', host: ns.hostAddress, port: dnsPort }),
    p('host-veth-udp-53', { proto: 'udp', host: ns.hostAddress, port: 53 }),
    p('own-loopback-other-port', { proto: 'tcp', host: '127.0.0.1', port: other }),
    ...(clearnet
      ? [
          p('clearnet-host-side', { proto: 'tcp', host: clearnet.hostAddress, port: socks.port }),
          p('clearnet-guest', { proto: 'tcp', host: clearnet.guestAddress, port: 8080 }),
        ]
      : []),
  ];
}

export function clearnetProbes(policy: Policy, ns: ResolvedNamespace, addresses: LabAddresses): NsProbe[] {
  const at = targets(addresses);
  const torOnly = policy.namespaces.filter((n) => n.kind === 'tor-only');
  const other = otherTorPort(policy, ns);
  const p = prober(ns);
  return [
    p('inet-http', { proto: 'http', host: at.inetA, port: 80 }, 'reach', 'firewall'),
    p('inet-http-b', { proto: 'http', host: at.inetB, port: 80 }, 'reach', 'firewall'),
    p('lan-http', { proto: 'http', host: at.lanRouter, port: 80 }, 'reach', 'firewall'),
    // The saved clearnet DNS (the LAN router here) is what its resolv.conf names.
    p('dns-lookup', { proto: 'dns', host: `${token('q')}.lab.example` }, 'reach', 'firewall'),
    p('inet6-tcp', { proto: 'tcp', host: at.inet6, port: 80 }),
    ...torOnly.flatMap((t) => [
      p(`${t.name}-socksport`, { proto: 'tcp', host: t.hostAddress, port: t.socksPort!.port }),
      p(`${t.name}-guest`, { proto: 'tcp', host: t.guestAddress, port: 8080 }),
    ]),
    p('own-host-side', { proto: 'tcp', host: ns.hostAddress, port: other }),
    p('own-loopback-socks', { proto: 'tcp', host: '127.0.0.1', port: policy.socksPorts[0]!.port }),
    // The host's own addresses outside the internal range: only the host firewall can refuse them.
    p('host-uplink-tor-port', { proto: 'tcp', host: at.sut, port: other }, 'blocked', 'firewall'),
    p('host-uplink-udp-dns', { proto: 'udp', host: at.sut, port: policy.dnsPort.port }, 'blocked', 'firewall'),
  ];
}

export interface Verdict {
  readonly id: string;
  readonly label: string;
  readonly expect: Expect;
  readonly wall: Wall;
  /** pass, leak (a blocked probe arrived or connected), missing (a reach probe did not arrive) */
  readonly verdict: 'pass' | 'leak' | 'missing';
  readonly detail: string;
}

/**
 * Judge probes by what the sender saw and what the listeners logged: a
 * blocked probe passes only if it neither connected nor arrived anywhere; a
 * reach probe only if it connected and its token arrived.
 */
export function judge(probes: readonly NsProbe[], results: readonly ProbeResult[], arrived: readonly string[]): Verdict[] {
  return probes.map((p) => {
    const r = results.find((x) => x.id === p.id);
    const seen = arrived.some((t) => t.includes(p.id) || (p.proto === 'dns' && t.includes(p.host!.split('.')[0]!)));
    const outcome = r?.outcome ?? 'no result';
    const connected = outcome === 'connected' || outcome === 'resolved';
    let verdict: Verdict['verdict'];
    if (p.expect === 'blocked') verdict = connected || seen ? 'leak' : 'pass';
    else if (p.proto === 'dns') verdict = seen ? 'pass' : 'missing';
    else verdict = connected && seen ? 'pass' : 'missing';
    return { id: p.id, label: p.label, expect: p.expect, wall: p.wall, verdict, detail: `${outcome}${seen ? ', arrived at a listener' : ''}` };
  });
}

// The probe matrix, generated from the policy and the lab topology: every
// principal (each policy uid, a uid the policy does not name, each policy
// namespace, and hosts on the LAN/Internet sending inbound) × destination
// class × protocol. It says what to send and where arriving is observed; what
// SHOULD happen is the oracle's business (oracle.ts), never the matrix's.
import { nthAddress, type Policy, parseCidr4, type ResolvedNamespace, type UserRole } from '@leakless/policy';
import type { ListenerSpec } from './listeners.js';
import type { ProbeKind, ProbeSpec } from './probes.js';
import type { LabAddresses, LabNetwork } from './topology.js';

export type DestClass =
  | 'internet-v4'
  | 'internet-v6'
  | 'lan'
  | 'lan-dns'
  | 'lan-netbios'
  | 'lan-broadcast'
  | 'multicast'
  | 'link-local'
  | 'lan-v6'
  | 'loopback-tor'
  | 'loopback-other'
  | 'automap'
  | 'internal-range'
  | 'host-address'
  | 'other-protocol'
  | 'invalid-state'
  | 'related-icmp';

export const DEST_CLASSES: readonly DestClass[] = [
  'internet-v4',
  'internet-v6',
  'lan',
  'lan-dns',
  'lan-netbios',
  'lan-broadcast',
  'multicast',
  'link-local',
  'lan-v6',
  'loopback-tor',
  'loopback-other',
  'automap',
  'internal-range',
  'host-address',
  'other-protocol',
  'invalid-state',
  'related-icmp',
];

export type Principal =
  | { readonly kind: 'uid'; readonly id: string; readonly uid: number; readonly gid: number; readonly role: UserRole | 'unnamed'; readonly ns: string }
  | { readonly kind: 'netns'; readonly id: string; readonly uid: number; readonly gid: number; readonly netns: ResolvedNamespace; readonly ns: string }
  | { readonly kind: 'inbound'; readonly id: string; readonly uid: 0; readonly gid: 0; readonly from: 'lan' | 'internet'; readonly ns: string };

/** Where a probe's arrival is observed. */
export interface Target {
  readonly class: DestClass;
  readonly kind: ProbeKind;
  readonly family: 4 | 6;
  readonly dst: string;
  readonly port?: number;
  readonly proto?: number;
  /** Listener spec id that logs the arrival (undefined: observed on the wire only). */
  readonly listener?: string;
  /** Packets towards it leave the sut's uplink, so the capture observes them. */
  readonly external: boolean;
  readonly label: string;
}

export interface Probe {
  readonly id: string;
  readonly principal: Principal;
  readonly target: Target;
}

/** The lab's listeners, per namespace. Tor's listeners are plain echo servers standing in for tor. */
export function labListeners(policy: Policy, lab: LabNetwork): Map<string, ListenerSpec[]> {
  const m = new Map<string, ListenerSpec[]>();
  m.set(lab.sut, [
    ...policy.torListeners.map((l) => ({ id: `sut:${l.clause}`, proto: l.protocol, addr: l.address, port: l.port })),
    { id: 'sut:any:tcp/8080', proto: 'tcp', addr: '0.0.0.0', port: 8080 },
    { id: 'sut:any:udp/8080', proto: 'udp', addr: '0.0.0.0', port: 8080 },
  ]);
  m.set(lab.lan, [
    { id: 'lan:tcp/80', proto: 'tcp', addr: '::', port: 80 },
    { id: 'lan:tcp/53', proto: 'tcp', addr: '::', port: 53 },
    { id: 'lan:udp/53', proto: 'udp', addr: '0.0.0.0', port: 53 },
    { id: 'lan:udp/137', proto: 'udp', addr: '0.0.0.0', port: 137 },
    { id: 'lan:udp/9999', proto: 'udp', addr: '0.0.0.0', port: 9999, group: lab.addresses.multicast, iface: 'lan-sut' },
  ]);
  // UDP is bound per address: an answer from a wildcard socket would leave
  // from the primary address, match no conntrack entry at the sut, and so
  // prove nothing about replies (the RELATED probe needs a real reply).
  const inetHosts = [...lab.addresses.internet4, lab.addresses.internet6];
  m.set(lab.inet, [
    { id: 'inet:tcp/80', proto: 'tcp', addr: '::', port: 80 },
    { id: 'inet:tcp/443', proto: 'tcp', addr: '::', port: 443 },
    ...inetHosts.flatMap((addr): ListenerSpec[] => [
      { id: 'inet:udp/53', proto: 'udp', addr, port: 53 },
      { id: 'inet:udp/9999', proto: 'udp', addr, port: 9999 },
    ]),
  ]);
  for (const n of policy.namespaces) m.set(lab.guests.get(n.name)!, [{ id: `${n.name}:tcp/8080`, proto: 'tcp', addr: '0.0.0.0', port: 8080 }]);
  return m;
}

export function principals(policy: Policy, lab: LabNetwork, unnamedUid: number): Principal[] {
  const desktop = policy.desktopUser;
  return [
    ...policy.users.map((u): Principal => ({ kind: 'uid', id: u.name, uid: u.uid, gid: u.gid, role: u.role, ns: lab.sut })),
    { kind: 'uid', id: `unnamed(${unnamedUid})`, uid: unnamedUid, gid: unnamedUid, role: 'unnamed', ns: lab.sut },
    // Apps in a namespace run as the desktop user (Tor Browser, Unsafe Browser).
    ...policy.namespaces.map(
      (n): Principal => ({ kind: 'netns', id: `netns:${n.name}`, uid: desktop.uid, gid: desktop.gid, netns: n, ns: lab.guests.get(n.name)! }),
    ),
    { kind: 'inbound', id: 'inbound:lan', uid: 0, gid: 0, from: 'lan', ns: lab.lan },
    { kind: 'inbound', id: 'inbound:internet', uid: 0, gid: 0, from: 'internet', ns: lab.inet },
  ];
}

const t = (x: Target) => x;

function outboundTargets(lab: LabNetwork): Target[] {
  const a = lab.addresses;
  const [inet1, inet2] = a.internet4;
  return [
    t({ class: 'internet-v4', kind: 'tcp', family: 4, dst: inet1, port: 80, listener: 'inet:tcp/80', external: true, label: 'tcp/80' }),
    t({ class: 'internet-v4', kind: 'tcp', family: 4, dst: inet2, port: 443, listener: 'inet:tcp/443', external: true, label: 'tcp/443 (2nd host)' }),
    t({ class: 'internet-v4', kind: 'udp', family: 4, dst: inet1, port: 53, listener: 'inet:udp/53', external: true, label: 'udp/53' }),
    t({ class: 'internet-v4', kind: 'udp', family: 4, dst: inet1, port: 9999, listener: 'inet:udp/9999', external: true, label: 'udp/9999' }),
    t({ class: 'internet-v4', kind: 'icmp', family: 4, dst: inet1, external: true, label: 'icmp echo' }),
    t({ class: 'internet-v6', kind: 'tcp', family: 6, dst: a.internet6, port: 80, listener: 'inet:tcp/80', external: true, label: 'tcp/80' }),
    t({ class: 'internet-v6', kind: 'udp', family: 6, dst: a.internet6, port: 53, listener: 'inet:udp/53', external: true, label: 'udp/53' }),
    t({ class: 'internet-v6', kind: 'icmp', family: 6, dst: a.internet6, external: true, label: 'icmpv6 echo' }),
    t({ class: 'lan', kind: 'tcp', family: 4, dst: a.lanRouter, port: 80, listener: 'lan:tcp/80', external: true, label: 'tcp/80' }),
    t({ class: 'lan', kind: 'udp', family: 4, dst: a.lanRouter, port: 9999, listener: 'lan:udp/9999', external: true, label: 'udp/9999' }),
    t({ class: 'lan', kind: 'icmp', family: 4, dst: a.lanRouter, external: true, label: 'icmp echo' }),
    t({ class: 'lan-dns', kind: 'tcp', family: 4, dst: a.lanRouter, port: 53, listener: 'lan:tcp/53', external: true, label: 'tcp/53' }),
    t({ class: 'lan-dns', kind: 'udp', family: 4, dst: a.lanRouter, port: 53, listener: 'lan:udp/53', external: true, label: 'udp/53' }),
    t({ class: 'lan-netbios', kind: 'udp', family: 4, dst: a.lanRouter, port: 137, listener: 'lan:udp/137', external: true, label: 'udp/137' }),
    t({
      class: 'lan-broadcast',
      kind: 'udp-bcast',
      family: 4,
      dst: a.lanBroadcast,
      port: 9999,
      listener: 'lan:udp/9999',
      external: true,
      label: `udp/9999 to ${a.lanBroadcast}`,
    }),
    t({
      class: 'multicast',
      kind: 'udp-bcast',
      family: 4,
      dst: a.multicast,
      port: 9999,
      listener: 'lan:udp/9999',
      external: true,
      label: `udp/9999 to ${a.multicast}`,
    }),
    t({ class: 'link-local', kind: 'tcp', family: 4, dst: a.linkLocal, port: 80, listener: 'lan:tcp/80', external: true, label: 'tcp/80' }),
    t({ class: 'link-local', kind: 'udp', family: 4, dst: a.linkLocal, port: 9999, listener: 'lan:udp/9999', external: true, label: 'udp/9999' }),
    t({ class: 'lan-v6', kind: 'tcp', family: 6, dst: a.lanUla, port: 80, listener: 'lan:tcp/80', external: true, label: 'tcp/80' }),
  ];
}

// tcp/8080 on a namespace's host side, inside a namespace, on the sut's LAN
// address: the same destinations for every principal that aims at them.
const hostSide = (n: ResolvedNamespace): Target => ({
  class: 'internal-range',
  kind: 'tcp',
  family: 4,
  dst: n.hostAddress,
  port: 8080,
  listener: 'sut:any:tcp/8080',
  external: false,
  label: `tcp/8080 ${n.name} host side`,
});
const inGuest = (n: ResolvedNamespace): Target => ({
  class: 'internal-range',
  kind: 'tcp',
  family: 4,
  dst: n.guestAddress,
  port: 8080,
  listener: `${n.name}:tcp/8080`,
  external: false,
  label: `tcp/8080 in ${n.name}`,
});
const onSutLan = (a: LabAddresses): Target => ({
  class: 'host-address',
  kind: 'tcp',
  family: 4,
  dst: a.sutLan,
  port: 8080,
  listener: 'sut:any:tcp/8080',
  external: false,
  label: 'tcp/8080 on the sut LAN address',
});

/** Destinations inside the sut: Tor's listeners, other loopback services, automap, the namespaces' range, the sut's own LAN address. */
function localTargets(policy: Policy, lab: LabNetwork): Target[] {
  const out: Target[] = [];
  for (const l of policy.torListeners) {
    const cls = l.netns === undefined ? 'loopback-tor' : 'internal-range';
    out.push({
      class: cls,
      kind: l.protocol,
      family: 4,
      dst: l.address,
      port: l.port,
      listener: `sut:${l.clause}`,
      external: false,
      label: `${l.protocol}/${l.port} ${l.kind === 'socks' ? `SocksPort ${l.name}` : `${l.kind}Port`}`,
    });
  }
  out.push({
    class: 'loopback-tor',
    kind: 'udp',
    family: 4,
    dst: policy.dnsPort.address,
    port: 53,
    listener: `sut:${policy.dnsPort.clause}`,
    external: false,
    label: 'udp/53 (→ DNSPort)',
  });
  out.push(
    { class: 'loopback-other', kind: 'tcp', family: 4, dst: '127.0.0.1', port: 8080, listener: 'sut:any:tcp/8080', external: false, label: 'tcp/8080' },
    { class: 'loopback-other', kind: 'udp', family: 4, dst: '127.0.0.1', port: 8080, listener: 'sut:any:udp/8080', external: false, label: 'udp/8080' },
    {
      class: 'loopback-other',
      kind: 'tcp',
      family: 4,
      dst: '127.0.1.1',
      port: 8080,
      listener: 'sut:any:tcp/8080',
      external: false,
      label: 'tcp/8080 on 127.0.1.1',
    },
  );
  // an address inside the automap range: nat output sends it to the TransPort
  const automapHost = nthAddress(parseCidr4(policy.automapRange), 10 * 256 + 20);
  out.push({
    class: 'automap',
    kind: 'tcp',
    family: 4,
    dst: automapHost,
    port: 80,
    listener: `sut:${policy.transPort.clause}`,
    external: false,
    label: `tcp/80 (→ TransPort)`,
  });
  for (const n of policy.namespaces) {
    out.push(hostSide(n));
    out.push(inGuest(n));
  }
  out.push(onSutLan(lab.addresses));
  return out;
}

function rootOnlyTargets(lab: LabNetwork): Target[] {
  const a = lab.addresses;
  return [
    { class: 'other-protocol', kind: 'raw', family: 4, dst: a.internet4[0], proto: 253, external: true, label: 'IP proto 253 to the Internet' },
    { class: 'other-protocol', kind: 'raw', family: 4, dst: a.lanRouter, proto: 253, external: true, label: 'IP proto 253 to the LAN' },
    { class: 'invalid-state', kind: 'tcp-invalid', family: 4, dst: a.internet4[0], port: 80, external: true, label: 'TCP FIN, no connection, to the Internet' },
    { class: 'invalid-state', kind: 'tcp-invalid', family: 4, dst: a.lanRouter, port: 80, external: true, label: 'TCP FIN, no connection, to the LAN' },
  ];
}

function relatedTargets(lab: LabNetwork): Target[] {
  // The echo comes back to a closed port; the kernel's port-unreachable is
  // RELATED to tor's DNS flow and must not leave.
  return [
    {
      class: 'related-icmp',
      kind: 'udp-closed',
      family: 4,
      dst: lab.addresses.internet4[0],
      port: 53,
      listener: 'inet:udp/53',
      external: true,
      label: 'port-unreachable for a closed DNS socket',
    },
  ];
}

function namespaceTargets(policy: Policy, lab: LabNetwork, self: ResolvedNamespace): Target[] {
  const a = lab.addresses;
  const out: Target[] = outboundTargets(lab).filter((x) => x.family === 4 && ['internet-v4', 'lan', 'lan-dns'].includes(x.class));
  for (const l of policy.torListeners.filter((x) => x.netns !== undefined)) {
    out.push({
      class: 'loopback-tor',
      kind: 'tcp',
      family: 4,
      dst: l.address,
      port: l.port,
      listener: `sut:${l.clause}`,
      external: false,
      label: `tcp/${l.port} SocksPort ${l.name}`,
    });
  }
  for (const n of policy.namespaces) {
    out.push(hostSide(n));
    if (n.name !== self.name) out.push(inGuest(n));
  }
  out.push(onSutLan(a));
  return out;
}

function inboundTargets(policy: Policy, lab: LabNetwork): Target[] {
  const a = lab.addresses;
  return [
    { class: 'host-address', kind: 'tcp', family: 4, dst: a.sutLan, port: 8080, listener: 'sut:any:tcp/8080', external: false, label: 'tcp/8080 on the sut' },
    { class: 'host-address', kind: 'udp', family: 4, dst: a.sutLan, port: 8080, listener: 'sut:any:udp/8080', external: false, label: 'udp/8080 on the sut' },
    { class: 'host-address', kind: 'icmp', family: 4, dst: a.sutLan, external: false, label: 'icmp echo to the sut' },
    ...policy.namespaces.map(inGuest),
  ];
}

export function targetsFor(policy: Policy, lab: LabNetwork, p: Principal): Target[] {
  switch (p.kind) {
    case 'uid': {
      const base = [...outboundTargets(lab), ...localTargets(policy, lab)];
      if (p.role === 'admin') base.push(...rootOnlyTargets(lab));
      if (p.role === 'tor-daemon') base.push(...relatedTargets(lab));
      return base;
    }
    case 'netns':
      return namespaceTargets(policy, lab, p.netns);
    case 'inbound':
      return inboundTargets(policy, lab).filter((x) => p.from === 'lan' || x.class === 'host-address');
  }
}

export function buildMatrix(policy: Policy, lab: LabNetwork, unnamedUid: number): Probe[] {
  const out: Probe[] = [];
  for (const p of principals(policy, lab, unnamedUid)) {
    for (const target of targetsFor(policy, lab, p)) out.push({ id: `${p.id} → ${target.class} ${target.label} ${target.dst}`, principal: p, target });
  }
  return out;
}

/** The wire form of a probe for one run; the token makes its packets and listener lines findable. */
export function specOf(probe: Probe, token: string, timeoutSeconds: number): ProbeSpec {
  const tg = probe.target;
  return {
    id: probe.id,
    kind: tg.kind,
    family: tg.family,
    dst: tg.dst,
    ...(tg.port !== undefined ? { port: tg.port } : {}),
    ...(tg.proto !== undefined ? { proto: tg.proto } : {}),
    token,
    timeout: timeoutSeconds,
  };
}

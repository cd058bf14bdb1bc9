// The compiler: policy → the `inet leakless` table. Tails' ferm.conf
// (docs/threat-model.md#tails-matrix) is reproduced
// rule for rule where it is sound, and tightened where docs/threat-model.md#measures says so:
//   - ct state invalid is dropped first (transparent-proxy RST/FIN leak);
//   - RELATED is accepted only for ICMP on lo (Tails 0f36175afc7), nowhere else;
//   - the internal netns range is refused before the LAN exception, and the LAN
//     exception only applies to packets that leave on a real interface, so no
//     user reaches a namespace or a host address "as LAN" (docs/threat-model.md#internal-range);
//   - the Tor daemon may use loopback (pluggable transports) but not Tor's own
//     listeners, so each listener is reachable by exactly its declared clients;
//   - IPv6 is refused by the first rule of every chain, whatever follows;
//   - every flow is bound to its owner (docs/threat-model.md#flow-ownership):
//     conntrack keys a flow by addresses and ports, so Tails' "ESTABLISHED
//     first" lets any local program that binds another user's source port ride
//     that user's flow. Here a flow's first packet stamps its owner on the
//     connection (ct mark), original-direction packets are accepted only from
//     that owner, and only tor answers on a Tor port.
// Rule order is the policy: first match wins, and the comments name the clause.
import type { Policy, ResolvedNamespace, TorListener, User } from '@leakless/policy';
import type { Chain, Owner, Rule, Table } from '@leakless/nft';

export const TABLE_NAME = 'leakless';
/** Tails allow-lists only 127.0.0.1 for the desktop user's generic loopback rule. */
export const LOOPBACK_ADDRESS = '127.0.0.1';
/** Pluggable transports listen on loopback; host and namespace addresses are not loopback. */
export const LOOPBACK_NET = '127.0.0.0/8';

/** Destinations no transport's peer can have: multicast and the limited broadcast. */
const NOT_UNICAST = ['224.0.0.0/4', '255.255.255.255'] as const;

const LO = { name: 'lo' } as const;
const NOT_LO = { name: 'lo', negate: true } as const;

const accept = { kind: 'accept' } as const;
const drop = { kind: 'drop' } as const;
const reject = { kind: 'reject' } as const;

const OWNERSHIP = 'docs/threat-model.md#flow-ownership';

/**
 * The connection marks that name a flow's owner. A policy user's flows carry
 * uid + 1 (so root's are not 0, the mark of a flow nobody stamped: one made
 * before this table loaded). Every uid the policy does not name gets one
 * shared mark: they all have the same grants, so riding each other's flows
 * gives them nothing. A namespace's flows are owned by its host-side veth:
 * forwarded and incoming packets have no socket uid.
 */
export interface FlowOwners {
  readonly users: readonly Owner[];
  readonly unnamed: number;
  /** namespace name → mark */
  readonly namespaces: ReadonlyMap<string, number>;
}

/** Marks from 0xffffffff down for the unnamed uids and the namespaces, skipping any a policy user's uid + 1 takes. */
export function flowOwners(policy: Policy): FlowOwners {
  const users = policy.users.map((u) => ({ uid: u.uid, mark: u.uid + 1 }));
  const taken = new Set(users.map((o) => o.mark));
  let next = 0xffffffff;
  const reserve = () => {
    while (taken.has(next)) next--;
    taken.add(next);
    return next;
  };
  const unnamed = reserve();
  return { users, unnamed, namespaces: new Map(policy.namespaces.map((n) => [n.name, reserve()])) };
}

/** A namespace's mark; every policy namespace has one. */
function nsMark(owners: FlowOwners, ns: ResolvedNamespace): number {
  const m = owners.namespaces.get(ns.name);
  if (m === undefined) throw new Error(`no flow owner mark for namespace ${ns.name}`);
  return m;
}

function userClause(policy: Policy, u: User): string {
  const i = policy.document.users.findIndex((x) => x.name === u.name);
  return `users[${i}] ${u.name} (${u.role})`;
}

/** Listeners on loopback (not on a namespace's host veth). */
function loopbackListeners(policy: Policy): TorListener[] {
  return policy.torListeners.filter((l) => l.netns === undefined);
}

function commonHead(clauseV6: string, v6: Rule['verdict'], logV6: boolean): Rule[] {
  return [
    // First, so no later accept can ever see an IPv6 packet (docs/threat-model.md#ipv6: Tails drops
    // all IPv6; never sysctl alone).
    { match: { nfproto: 'ipv6' }, verdict: v6, log: logV6, clause: clauseV6 },
    { match: { ctState: ['invalid'] }, verdict: drop, clause: 'docs/threat-model.md#ct-state-invalid: ct state invalid dropped' },
  ];
}

/**
 * Who owns each local flow, and who may send on it. Before the established
 * accept: in Tails' order a program of the desktop user that binds the
 * clearnet user's (or tor's) source port and sends to the same server is
 * "established" and leaves, and sweeping every ephemeral port is silent
 * because refused sends never reach the wire.
 */
function ownershipOutput(policy: Policy, owners: FlowOwners): Rule[] {
  const unowned = { marks: [0] };
  const policyUids = owners.users.map((o) => o.uid);
  const torUids = [...new Set([0, policy.torUser.uid])];
  const rules: Rule[] = [
    // Stamped only while nobody owns the flow: a NEW packet from another uid
    // on a flow still waiting for its reply must not take it over.
    {
      match: { ctMark: unowned, ctState: ['new'] },
      setCtMark: { byUid: owners.users },
      verdict: { kind: 'continue' },
      clause: `${OWNERSHIP}: a policy user's new flow is its own (mark uid + 1)`,
    },
    {
      match: { ctMark: unowned, ctState: ['new'] },
      setCtMark: { mark: owners.unnamed },
      verdict: { kind: 'continue' },
      clause: `${OWNERSHIP}: any other new flow belongs to the unnamed uids`,
    },
    // Packets without a socket uid (the kernel's TIME_WAIT ACKs and resets)
    // match neither uid test and go on as before.
    {
      match: { ctDirection: 'original', ctMark: { marks: [owners.unnamed], negate: true }, owner: { pairs: owners.users, negate: true } },
      verdict: drop,
      clause: `${OWNERSHIP}: a flow carries only its owner's packets`,
    },
    {
      match: { ctDirection: 'original', ctMark: { marks: [owners.unnamed] }, skuids: { uids: policyUids } },
      verdict: drop,
      clause: `${OWNERSHIP}: an unnamed uid's flow carries no policy user's packets`,
    },
  ];
  // The answering side of a Tor port is tor's: a program that listens on it
  // while tor is down (a fake ControlPort or SocksPort) gets no answer to its
  // clients. Debian's tor binds its ports as root before dropping to its user.
  for (const protocol of ['tcp', 'udp'] as const) {
    const ls = policy.torListeners.filter((l) => l.protocol === protocol);
    if (ls.length === 0) continue;
    rules.push({
      match: {
        saddr: { addrs: ls.map((l) => l.address) },
        protocol,
        sport: { ports: ls.map((l) => l.port) },
        ctDirection: 'reply',
        skuids: { uids: torUids, negate: true },
      },
      verdict: drop,
      clause: `${OWNERSHIP}: only tor answers on a Tor ${protocol} port`,
    });
  }
  return rules;
}

function outputChain(policy: Policy, owners: FlowOwners): Chain {
  const tor = policy.torUser;
  const desktop = policy.desktopUser;
  const lo = loopbackListeners(policy);
  const rules: Rule[] = [
    ...commonHead('ipv6.enabled=false: no IPv6 out', reject, true),
    ...ownershipOutput(policy, owners),
    // Tails accepts ESTABLISHED only (0c60a190d01): RELATED is attack surface.
    // After the ownership rules, an established original-direction packet is its owner's.
    { match: { ctState: ['established'] }, verdict: accept, clause: 'docs/threat-model.md#established-only: replies and owners (established only)' },
    // Lets the port-unreachable our own rejects send to local sockets through,
    // so refused applications fail fast (Tails 0f36175afc7).
    { match: { oif: LO, protocol: 'icmp', ctState: ['related'] }, verdict: accept, clause: 'docs/threat-model.md#related-icmp-lo: related ICMP on lo only' },
  ];

  // Each Tor listener: exactly its declared clients (policy tor.*.clients).
  for (const l of policy.torListeners) {
    for (const c of l.clients) {
      rules.push({
        match: { oif: LO, daddr: { addrs: [l.address] }, protocol: l.protocol, dport: { ports: [l.port] }, skuid: c.uid, ctState: ['new'] },
        verdict: accept,
        clause: `${l.clause}.clients`,
      });
    }
  }

  // The desktop user: refused on every Tor TCP listener it is not a client of
  // (ControlPort: a compromised app could reconfigure tor; the bulk SocksPort
  // has no isolation), before its generic loopback rule (docs/threat-model.md#loopback-blocklist).
  for (const l of lo.filter((x) => x.protocol === 'tcp' && !x.clients.some((c) => c.uid === desktop.uid))) {
    rules.push({
      match: { oif: LO, daddr: { addrs: [l.address] }, protocol: 'tcp', dport: { ports: [l.port] }, skuid: desktop.uid },
      verdict: reject,
      log: true,
      clause: `loopback.desktopUser is not a client of ${l.clause}`,
    });
  }
  const lb = policy.document.loopback;
  if (lb.mode === 'blocklist') {
    rules.push({
      match: { oif: LO, daddr: { addrs: [LOOPBACK_ADDRESS] }, protocol: 'tcp', skuid: desktop.uid, ctState: ['new'] },
      verdict: accept,
      clause: 'loopback.mode=blocklist: desktop user, any other 127.0.0.1 TCP port',
    });
  } else {
    lb.allowedTcpPorts.forEach((p, i) => {
      rules.push({
        match: { oif: LO, daddr: { addrs: [LOOPBACK_ADDRESS] }, protocol: 'tcp', dport: { ports: [p] }, skuid: desktop.uid, ctState: ['new'] },
        verdict: accept,
        clause: `loopback.allowedTcpPorts[${i}]`,
      });
    });
  }

  // tor talks to pluggable-transport listeners on loopback (docs/threat-model.md#tor-loopback: Tails'
  // tor rule has no interface restriction) but never to its own ports.
  const torTcpPorts = policy.torListeners.filter((l) => l.protocol === 'tcp').map((l) => l.port);
  rules.push({
    match: { oif: LO, daddr: { addrs: [LOOPBACK_NET] }, protocol: 'tcp', dport: { ports: torTcpPorts, negate: true }, skuid: tor.uid, ctState: ['new'] },
    verdict: accept,
    clause: `${userClause(policy, tor)}: loopback TCP but Tor's own ports`,
  });

  // Beyond Tails (docs/threat-model.md#internal-range): the namespaces' range is nobody's LAN.
  rules.push({ match: { daddr: { addrs: [policy.internalRange] } }, verdict: reject, log: true, clause: 'netns.internalRange is not LAN' });

  // The only principals whose packets may leave towards the Internet. They
  // come before the LAN rules so tor can use a LAN resolver in bridge mode
  // (Tails 1c588824279).
  rules.push(...torEgress(policy));
  for (const c of policy.clearnetUsers) {
    rules.push(
      { match: { oif: NOT_LO, protocol: 'tcp', skuid: c.uid, ctState: ['new'] }, verdict: accept, clause: `${userClause(policy, c)}: TCP out` },
      {
        match: { oif: NOT_LO, protocol: 'udp', dport: { ports: [53] }, skuid: c.uid, ctState: ['new'] },
        verdict: accept,
        clause: `${userClause(policy, c)}: DNS out`,
      },
    );
  }

  // LAN: every user, any protocol, except the services that leak (DNS, NetBIOS-ns).
  const lan = { addrs: policy.lanRanges };
  policy.lanBlockedServices.forEach((s, i) => {
    rules.push({
      match: { oif: NOT_LO, daddr: lan, protocol: s.protocol, dport: { ports: [s.port] } },
      verdict: reject,
      log: true,
      clause: `lan.blockedServices[${i}]`,
    });
  });
  rules.push({ match: { oif: NOT_LO, daddr: lan, ctState: ['new'] }, verdict: accept, clause: 'lan.ipv4Ranges' });

  rules.push({ match: {}, verdict: reject, log: true, clause: 'default: everything else is refused' });
  return { name: 'output', base: { type: 'filter', hook: 'output', priority: 'filter', policy: 'drop' }, rules };
}

/**
 * What the tor daemon (and the pluggable transport it starts, which runs as
 * the tor user) may send off loopback; it follows tor.bridges
 * (docs/threat-model.md#bridges):
 *   - pinned bridges (obfs4, vanilla): TCP to each bridge's address and port,
 *     nothing else, not even DNS: if the bridges are blocked tor cannot fall
 *     back to a relay, a directory authority or a resolver;
 *   - otherwise TCP as without bridges (any port, or tor.reachablePorts) and
 *     DNS (bridge and proxy names, snowflake's broker and STUN servers, through
 *     the clearnet resolver tor's unit sees), plus for snowflake the UDP of
 *     tor.bridges.udpPorts (STUN and the WebRTC peers): for the tor user only.
 */
export function torEgress(policy: Policy): Rule[] {
  const tor = policy.torUser;
  const b = policy.torBridges;
  const newTcp = { oif: NOT_LO, protocol: 'tcp', tcpSyn: true, skuid: tor.uid, ctState: ['new'] } as const;
  if (b?.pinned)
    return b.lines.map((l) => ({
      match: { ...newTcp, daddr: { addrs: [l.address] }, dport: { ports: [l.port] } },
      verdict: accept,
      clause: `${l.clause}: tor daemon, new TCP to its ${b.transport} bridge only`,
    }));
  const rules: Rule[] = [
    {
      // tor.reachablePorts (torrc ReachableAddresses) narrows it to those ports; absent, any port (Tails).
      match: { ...newTcp, ...(policy.torReachablePorts ? { dport: { ports: policy.torReachablePorts } } : {}) },
      verdict: accept,
      clause: policy.torReachablePorts ? 'tor.reachablePorts: tor daemon, new TCP out' : `${userClause(policy, tor)}: new TCP out`,
    },
    {
      match: { oif: NOT_LO, protocol: 'udp', dport: { ports: [53] }, skuid: tor.uid, ctState: ['new'] },
      verdict: accept,
      clause: `${userClause(policy, tor)}: DNS out`,
    },
  ];
  const udp = b?.udpPorts;
  if (udp)
    rules.push({
      // WebRTC peers and STUN servers are unicast: no multicast (mDNS candidates) or broadcast.
      match: {
        oif: NOT_LO,
        daddr: { addrs: [...NOT_UNICAST], negate: true },
        protocol: 'udp',
        ...(udp === 'any' ? {} : { dport: { ports: udp } }),
        skuid: tor.uid,
        ctState: ['new'],
      },
      verdict: accept,
      clause: `tor.bridges.udpPorts: tor daemon, new UDP out for ${b.transport} (${udp === 'any' ? 'any port' : udp.join(', ')})`,
    });
  return rules;
}

function inputChain(policy: Policy, owners: FlowOwners): Chain {
  const rules: Rule[] = [
    ...commonHead('ipv6.enabled=false: no IPv6 in', drop, false),
    // Only replies: the one flow that comes in in its original direction (a
    // namespace's, to its SocksPort) is accepted by its own rules.
    {
      match: { ctDirection: 'reply', ctState: ['established'] },
      verdict: accept,
      clause: 'docs/threat-model.md#established-only: replies (established only)',
    },
    // Loopback is filtered once, on the way out.
    { match: { iif: LO }, verdict: accept, clause: 'docs/threat-model.md#default-deny: loopback in (filtered on the way out)' },
  ];
  for (const ns of policy.namespaces) rules.push(...namespaceInput(ns, nsMark(owners, ns)));
  rules.push({ match: {}, verdict: drop, clause: 'default: unsolicited inbound dropped' });
  return { name: 'input', base: { type: 'filter', hook: 'input', priority: 'filter', policy: 'drop' }, rules };
}

function namespaceInput(ns: ResolvedNamespace, mark: number): Rule[] {
  const veth = { name: ns.hostVeth };
  if (ns.kind === 'tor-only') {
    const s = ns.socksPort!;
    const toSocks = {
      iifname: veth,
      saddr: { addrs: [ns.guestAddress] },
      daddr: { addrs: [ns.hostAddress] },
      protocol: 'tcp',
      dport: { ports: [s.port] },
    } as const;
    return [
      {
        match: { ...toSocks, ctMark: { marks: [0] }, ctState: ['new'] },
        setCtMark: { mark },
        verdict: accept,
        clause: `${ns.clause} -> ${s.clause}: a new flow, owned by ${ns.hostVeth}`,
      },
      {
        match: { ...toSocks, ctDirection: 'original', ctMark: { marks: [mark] }, ctState: ['established', 'new'] },
        verdict: accept,
        clause: `${ns.clause} -> ${s.clause}: its own flows`,
      },
      { match: { iifname: veth }, verdict: reject, clause: `${ns.clause} tor-only: nothing else on the host` },
    ];
  }
  // Tails 699c716428a only refused 10.200.1.0/24; here the clearnet namespace
  // reaches no host address at all (its traffic is forwarded, never local).
  return [{ match: { iifname: veth }, verdict: reject, clause: `${ns.clause} clearnet: no host services` }];
}

function forwardChain(policy: Policy, owners: FlowOwners): Chain {
  const rules: Rule[] = [...commonHead('ipv6.enabled=false: no IPv6 forwarded', drop, false)];
  for (const ns of policy.namespaces.filter((n) => n.kind === 'clearnet')) {
    const veth = { name: ns.hostVeth };
    const own = { marks: [nsMark(owners, ns)] };
    const out = { iifname: veth, saddr: { addrs: [ns.guestAddress] } };
    rules.push(
      { match: { iifname: veth, daddr: { addrs: [policy.internalRange] } }, verdict: reject, clause: `${ns.clause} clearnet: not the internal range` },
      // Tails accepted anything towards veth-clearnet; only replies to its own flows here.
      { match: { oifname: veth, ctDirection: 'reply', ctMark: own, ctState: ['established'] }, verdict: accept, clause: `${ns.clause} clearnet: replies` },
      {
        match: { ...out, ctMark: { marks: [0] }, ctState: ['new'] },
        setCtMark: { mark: own.marks[0]! },
        verdict: accept,
        clause: `${ns.clause} clearnet: routed out, a new flow owned by ${ns.hostVeth}`,
      },
      {
        match: { ...out, ctDirection: 'original', ctMark: own, ctState: ['established', 'new'] },
        verdict: accept,
        clause: `${ns.clause} clearnet: routed out, its own flows`,
      },
    );
  }
  rules.push({ match: {}, verdict: reject, clause: 'default: nothing else is forwarded' });
  return { name: 'forward', base: { type: 'filter', hook: 'forward', priority: 'filter', policy: 'drop' }, rules };
}

function natOutputChain(policy: Policy): Chain {
  const trans = policy.transPort;
  const dns = policy.dnsPort;
  return {
    name: 'nat_output',
    // -100 = dstnat; the name is only valid for prerouting (docs/design.md#nat-output-priority).
    base: { type: 'nat', hook: 'output', priority: -100, policy: 'accept' },
    rules: [
      {
        match: { daddr: { addrs: [policy.automapRange] }, protocol: 'tcp' },
        verdict: { kind: 'dnat', address: trans.address, port: trans.port },
        clause: 'tor.automapRange -> tor.transPort',
      },
      {
        match: { daddr: { addrs: [dns.address] }, protocol: 'udp', dport: { ports: [53] } },
        verdict: { kind: 'dnat', address: dns.address, port: dns.port },
        clause: 'tor.dnsPort: udp/53 redirect',
      },
    ],
  };
}

function natPostroutingChain(policy: Policy): Chain {
  return {
    name: 'nat_postrouting',
    base: { type: 'nat', hook: 'postrouting', priority: 'srcnat', policy: 'accept' },
    rules: policy.namespaces
      .filter((n) => n.kind === 'clearnet')
      .map((ns) => ({
        match: { oifname: { name: ns.hostVeth, negate: true }, saddr: { addrs: [ns.subnet] } },
        verdict: { kind: 'masquerade' } as const,
        clause: `${ns.clause} clearnet: masquerade`,
      })),
  };
}

/** The policy's ruleset as an AST (the object every check and the lab work on). */
export function ruleset(policy: Policy): Table {
  const owners = flowOwners(policy);
  return {
    family: 'inet',
    name: TABLE_NAME,
    chains: [inputChain(policy, owners), forwardChain(policy, owners), outputChain(policy, owners), natOutputChain(policy), natPostroutingChain(policy)],
  };
}

/**
 * What stays in force if the policy ruleset fails to load: the same table
 * name, loopback only. The unit loads it first, so a broken policy file (the
 * 2009 Tails bug: an unknown user made iptables-restore reject everything)
 * leaves a machine with no network rather than an open one.
 */
export function lockdownRuleset(): Table {
  const clause = 'lockdown: loopback only until the policy ruleset loads';
  const lo = (dir: 'iif' | 'oif'): Rule => ({ match: { nfproto: 'ipv4', [dir]: LO }, verdict: accept, clause });
  const end: Rule = { match: {}, verdict: drop, clause };
  return {
    family: 'inet',
    name: TABLE_NAME,
    chains: [
      { name: 'input', base: { type: 'filter', hook: 'input', priority: 'filter', policy: 'drop' }, rules: [lo('iif'), end] },
      { name: 'forward', base: { type: 'filter', hook: 'forward', priority: 'filter', policy: 'drop' }, rules: [end] },
      { name: 'output', base: { type: 'filter', hook: 'output', priority: 'filter', policy: 'drop' }, rules: [lo('oif'), end] },
    ],
  };
}

// The oracle: what the policy says should happen to each probe. Written from
// the policy and Tails' ferm matrix plus the items where leakless goes beyond
// Tails (no IPv6 at all, no LAN DNS), WITHOUT looking at the compiler or its AST, so
// a compiler bug and an oracle bug must coincide to go unnoticed. A unit test
// compares the two on every cell; the lab compares the oracle with the kernel.
import { addressIn, type Policy, parseCidr4 } from '@leakless/policy';
import type { Principal, Target } from './matrix.js';

export interface Expectation {
  readonly allow: boolean;
  /** The policy clause or Tails rule that decides it. */
  readonly why: string;
}

export interface LabFacts {
  /** Addresses that belong to the sut itself (its LAN address, the namespaces' host ends). */
  readonly sutAddresses: readonly string[];
}

const inCidr = (addr: string, cidr: string) => addressIn(addr, parseCidr4(cidr));
const allow = (why: string): Expectation => ({ allow: true, why });
const deny = (why: string): Expectation => ({ allow: false, why });

export function expectation(policy: Policy, facts: LabFacts, p: Principal, t: Target): Expectation {
  if (p.kind === 'inbound') return deny('nothing is reachable from outside (input drop; no forwarding into a namespace)');
  if (t.family === 6) return deny('ipv6.enabled=false: nothing over IPv6');
  if (t.kind === 'udp-closed') return deny('RELATED accepted only for ICMP on loopback');
  if (t.kind === 'tcp-invalid') return deny('ct state invalid is dropped');
  if (p.kind === 'netns') return namespaceExpectation(policy, facts, p, t);
  return uidExpectation(policy, facts, p.uid, t);
}

function namespaceExpectation(policy: Policy, facts: LabFacts, p: Extract<Principal, { kind: 'netns' }>, t: Target): Expectation {
  const ns = p.netns;
  if (ns.kind === 'tor-only') {
    const s = ns.socksPort!;
    if (t.dst === ns.hostAddress && t.port === s.port && t.kind === 'tcp') return allow(`${ns.clause}: its SocksPort ${s.clause}`);
    return deny(`${ns.clause} is tor-only: its SocksPort and nothing else`);
  }
  if (facts.sutAddresses.includes(t.dst)) return deny(`${ns.clause} clearnet: no host services`);
  if (inCidr(t.dst, policy.internalRange)) return deny(`${ns.clause} clearnet: not the internal range`);
  return allow(`${ns.clause} clearnet: routed out (any protocol, LAN included, as Tails)`);
}

function uidExpectation(policy: Policy, facts: LabFacts, uid: number, t: Target): Expectation {
  const isClient = (clients: readonly { uid: number }[]) => clients.some((c) => c.uid === uid);
  const proto = t.kind === 'tcp' ? 'tcp' : t.kind === 'udp' || t.kind === 'udp-bcast' ? 'udp' : t.kind === 'icmp' ? 'icmp' : 'other';
  const tor = policy.torUser.uid === uid;
  const clearnet = policy.clearnetUsers.some((u) => u.uid === uid);

  // Destination translations happen before filtering (Tails nat OUTPUT).
  let dst = t.dst;
  let port = t.port;
  if (proto === 'tcp' && inCidr(dst, policy.automapRange)) ({ address: dst, port } = policy.transPort);
  else if (proto === 'udp' && port === 53 && dst === policy.dnsPort.address) ({ address: dst, port } = policy.dnsPort);

  const local = inCidr(dst, '127.0.0.0/8') || facts.sutAddresses.includes(dst);
  if (local) {
    const l = policy.torListeners.find((x) => x.address === dst && x.port === port && x.protocol === proto);
    if (l) return isClient(l.clients) ? allow(`${l.clause}.clients`) : deny(`not a client of ${l.clause}`);
    const torPorts = policy.torListeners.filter((x) => x.protocol === 'tcp').map((x) => x.port);
    if (tor && proto === 'tcp' && inCidr(dst, '127.0.0.0/8') && !torPorts.includes(port!))
      return allow('tor daemon: loopback TCP (pluggable transports), not its own ports');
    if (uid === policy.desktopUser.uid && proto === 'tcp' && dst === '127.0.0.1') {
      const lb = policy.document.loopback;
      if (lb.mode === 'blocklist') return allow('loopback.mode=blocklist: the desktop user reaches other 127.0.0.1 TCP ports');
      return lb.allowedTcpPorts.includes(port!) ? allow('loopback.allowedTcpPorts') : deny('loopback.mode=allowlist');
    }
    return deny('local services only for the clients the policy names (only 127.0.0.1 for the desktop user)');
  }
  if (inCidr(dst, policy.internalRange)) return deny('netns.internalRange is not LAN');
  if (t.kind === 'raw' || proto === 'icmp') {
    // neither the tor daemon nor clearnet may send anything but TCP and DNS
    return inLan(policy, dst) ? allow('lan.ipv4Ranges: any protocol') : deny('only TCP/DNS for the Internet principals');
  }
  const torReachable = policy.document.tor.reachablePorts;
  if (tor && proto === 'tcp' && (torReachable === undefined || torReachable.includes(port!)))
    return allow(torReachable ? 'tor.reachablePorts' : 'tor daemon: new TCP anywhere');
  if (tor && proto === 'udp' && port === 53) return allow('tor daemon: DNS (bridge mode)');
  if (clearnet && (proto === 'tcp' || (proto === 'udp' && port === 53))) return allow(proto === 'tcp' ? 'clearnet user: TCP out' : 'clearnet user: DNS out');
  if (inLan(policy, dst)) {
    const blocked = policy.lanBlockedServices.find((s) => s.protocol === proto && s.port === port);
    return blocked ? deny(`lan.blockedServices ${blocked.protocol}/${blocked.port}`) : allow('lan.ipv4Ranges');
  }
  return deny('only the tor daemon and clearnet users reach the Internet');
}

function inLan(policy: Policy, addr: string): boolean {
  return policy.lanRanges.some((r) => inCidr(addr, r)) && !inCidr(addr, policy.internalRange);
}

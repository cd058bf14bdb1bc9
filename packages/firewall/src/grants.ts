// What the host table grants, read off the AST with the evaluator (so rule
// order counts): per Tor listener the uids and namespaces it lets in, and the
// flat loopback exceptions. The checks across modules compare these with
// what tor really listens on.
import type { Policy } from '@leakless/policy';
import { accepted, chainOf, evaluateHook, evaluateOutput, type L4Protocol, type Table } from '@leakless/nft';

/** A uid that no policy user has: whatever it is granted, every local user is. */
export function unnamedUid(policy: Policy): number {
  const used = new Set(policy.users.map((u) => u.uid));
  let uid = 59999;
  while (used.has(uid)) uid--;
  return uid;
}

export interface ListenerGrant {
  readonly listener: string;
  readonly kind: string;
  /** The listener's policy clause, e.g. tor.socksPorts[0]. */
  readonly clause: string;
  readonly address: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  /** Policy uids whose new connection to the listener the ruleset accepts (sorted). */
  readonly uids: readonly number[];
  /** True if a uid the policy does not name is accepted too (the port is open to every local user). */
  readonly openToAll: boolean;
  /** Namespaces whose guest end may open a connection to it. */
  readonly namespaces: readonly string[];
}

/** Per Tor listener, who the ruleset lets in; derived by evaluating the AST, so rule order counts. */
export function listenerGrants(table: Table, policy: Policy): ListenerGrant[] {
  const probeUid = unnamedUid(policy);
  return policy.torListeners.map((l) => {
    const fromUid = (uid: number) =>
      accepted(
        evaluateOutput(table, {
          family: 'ipv4',
          oif: 'lo',
          daddr: l.address,
          protocol: l.protocol,
          dport: l.port,
          ...(l.protocol === 'tcp' ? { tcpFlags: 'syn' as const } : {}),
          skuid: uid,
          ctState: 'new',
        }).decision,
      );
    // Namespaces reach listeners on a host veth address (any of them, if
    // routed); loopback listeners are out of reach (127.0.0.0/8 is martian on a veth).
    const onHostVeth = policy.namespaces.some((n) => n.hostAddress === l.address);
    const namespaces = policy.namespaces
      .filter(() => onHostVeth)
      .filter((ns) =>
        accepted(
          evaluateHook(table, 'input', {
            family: 'ipv4',
            iif: ns.hostVeth,
            saddr: ns.guestAddress,
            daddr: l.address,
            protocol: l.protocol,
            dport: l.port,
            ...(l.protocol === 'tcp' ? { tcpFlags: 'syn' as const } : {}),
            ctState: 'new',
          }),
        ),
      )
      .map((ns) => ns.name);
    return {
      listener: l.name,
      kind: l.kind,
      clause: l.clause,
      address: l.address,
      port: l.port,
      protocol: l.protocol,
      uids: policy.users
        .filter((u) => fromUid(u.uid))
        .map((u) => u.uid)
        .sort((a, b) => a - b),
      openToAll: fromUid(probeUid),
      namespaces,
    };
  });
}

/** A loopback accept rule for one uid, in flat form (for cross-module checks). */
export interface LoopbackGrant {
  readonly skuid: number;
  readonly protocol: L4Protocol;
  readonly daddr: string;
  readonly dport: number;
  readonly clause: string;
}

/** Every output accept rule that grants one uid one loopback address:port. */
export function loopbackGrants(table: Table): LoopbackGrant[] {
  const out: LoopbackGrant[] = [];
  for (const r of chainOf(table, 'output').rules) {
    const m = r.match;
    if (r.verdict.kind !== 'accept' || m.oif?.name !== 'lo' || m.oif.negate) continue;
    if (m.skuid === undefined || !m.protocol || m.daddr?.addrs.length !== 1 || m.daddr.negate || m.dport?.ports.length !== 1 || m.dport.negate) continue;
    out.push({ skuid: m.skuid, protocol: m.protocol, daddr: m.daddr.addrs[0]!, dport: m.dport.ports[0]!, clause: r.clause });
  }
  return out;
}

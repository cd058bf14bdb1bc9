// A packet interpreter for the AST: first matching rule wins, else the chain
// policy. It is how structural properties that depend on rule order ("the
// desktop user cannot reach the ControlPort", "each listener is reachable by
// exactly its clients") are checked on the model, and how other modules read
// what the firewall grants (listenerGrants) without parsing nft text.
// It models only what the AST can express; the lab checks the kernel.
import { addressIn, parseCidr4, type Policy } from '@leakless/policy';
import type { AddrMatch, Chain, CtState, Family, IfMatch, L4Protocol, Match, Rule, Table, Verdict } from './ast.js';
import { chainOf } from './ast.js';

export interface Packet {
  readonly family: Family;
  /** Interface names; local destinations go out (and come in) on lo. */
  readonly iif?: string;
  readonly oif?: string;
  readonly saddr?: string;
  readonly daddr: string;
  /** A name, or an IP protocol number for anything else. */
  readonly protocol: L4Protocol | number;
  readonly dport?: number;
  /** TCP only: a connection-opening SYN, or anything else. */
  readonly tcpFlags?: 'syn' | 'other';
  /** The sending socket's uid; undefined for forwarded or kernel-made packets. */
  readonly skuid?: number;
  readonly ctState: CtState;
}

export interface Decision {
  readonly verdict: Verdict | { readonly kind: 'policy-accept' } | { readonly kind: 'policy-drop' };
  readonly rule?: Rule;
  readonly index: number;
  readonly chain: string;
}

function ifMatches(m: IfMatch | undefined, name: string | undefined): boolean {
  if (!m) return true;
  if (name === undefined) return false;
  return (m.name === name) !== (m.negate ?? false);
}

function addrMatches(m: AddrMatch | undefined, p: Packet, which: 'saddr' | 'daddr'): boolean {
  if (!m) return true;
  const a = p[which];
  if (p.family !== 'ipv4' || a === undefined) return false;
  const inSet = m.addrs.some((x) => addressIn(a, parseCidr4(x.includes('/') ? x : `${x}/32`)));
  return inSet !== (m.negate ?? false);
}

export function matches(m: Match, p: Packet): boolean {
  if (m.nfproto && m.nfproto !== p.family) return false;
  if (!ifMatches(m.iif, p.iif) || !ifMatches(m.oif, p.oif) || !ifMatches(m.iifname, p.iif) || !ifMatches(m.oifname, p.oif)) return false;
  if (!addrMatches(m.saddr, p, 'saddr') || !addrMatches(m.daddr, p, 'daddr')) return false;
  if (m.protocol && m.protocol !== p.protocol) return false;
  if (m.dport) {
    if (p.dport === undefined) return false;
    if (m.dport.ports.includes(p.dport) === (m.dport.negate ?? false)) return false;
  }
  if (m.tcpSyn && !(p.protocol === 'tcp' && p.tcpFlags === 'syn')) return false;
  if (m.skuid !== undefined && m.skuid !== p.skuid) return false;
  if (m.ctState && !m.ctState.includes(p.ctState)) return false;
  return true;
}

export function evaluateChain(chain: Chain, p: Packet): Decision {
  const i = chain.rules.findIndex((r) => matches(r.match, p));
  if (i >= 0) return { verdict: chain.rules[i]!.verdict, rule: chain.rules[i]!, index: i, chain: chain.name };
  return { verdict: { kind: chain.base.policy === 'accept' ? 'policy-accept' : 'policy-drop' }, index: -1, chain: chain.name };
}

export function accepted(d: Decision): boolean {
  return d.verdict.kind === 'accept' || d.verdict.kind === 'policy-accept';
}

/** A locally generated packet: nat output (destination translation), then filter output. */
export function evaluateOutput(table: Table, p: Packet): { packet: Packet; decision: Decision } {
  let q = p;
  const nat = table.chains.find((c) => c.base.type === 'nat' && c.base.hook === 'output');
  if (nat && p.ctState === 'new') {
    const d = evaluateChain(nat, p);
    if (d.verdict.kind === 'dnat') q = { ...p, daddr: d.verdict.address, dport: d.verdict.port };
  }
  const filter = table.chains.find((c) => c.base.type === 'filter' && c.base.hook === 'output');
  if (!filter) throw new Error('no filter output chain');
  return { packet: q, decision: evaluateChain(filter, q) };
}

export function evaluateHook(table: Table, hook: 'input' | 'forward' | 'output', p: Packet): Decision {
  const c = table.chains.find((x) => x.base.type === 'filter' && x.base.hook === hook);
  if (!c) throw new Error(`no filter ${hook} chain`);
  return evaluateChain(c, p);
}

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
      uids: policy.users.filter((u) => fromUid(u.uid)).map((u) => u.uid).sort((a, b) => a - b),
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

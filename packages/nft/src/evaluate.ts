// A packet interpreter for the AST: first matching rule wins, else the chain
// policy. It is how structural properties that depend on rule order ("the
// desktop user cannot reach the ControlPort", "each listener is reachable by
// exactly its clients") are checked on the model, and how checks across
// modules read what a table grants without parsing nft text.
// It models only what the AST can express; the lab checks the kernel.
import { addressIn, parseCidr4 } from '@leakless/policy/net';
import type {
  AddrMatch,
  Chain,
  CtDirection,
  CtMarkSet,
  CtState,
  CtStatus,
  Family,
  IfMatch,
  L4Protocol,
  Match,
  PortMatch,
  Rule,
  Table,
  Verdict,
} from './ast.js';

export interface Packet {
  readonly family: Family;
  /** Interface names; local destinations go out (and come in) on lo. */
  readonly iif?: string;
  readonly oif?: string;
  readonly saddr?: string;
  readonly daddr: string;
  /** A name, or an IP protocol number for anything else. */
  readonly protocol: L4Protocol | number;
  readonly sport?: number;
  readonly dport?: number;
  /** TCP only: a connection-opening SYN, or anything else. */
  readonly tcpFlags?: 'syn' | 'other';
  /** The sending socket's uid; undefined for forwarded or kernel-made packets. */
  readonly skuid?: number;
  readonly ctState: CtState;
  /** Status bits of the packet's connection (none when absent). */
  readonly ctStatus?: readonly CtStatus[];
  /** Which way the packet travels on its connection (original when absent). */
  readonly ctDirection?: CtDirection;
  /** The connection's mark, its owner (0 when absent: a flow nobody stamped). */
  readonly ctMark?: number;
}

export interface Decision {
  readonly verdict: Verdict | { readonly kind: 'policy-accept' } | { readonly kind: 'policy-drop' };
  readonly rule?: Rule;
  readonly index: number;
  readonly chain: string;
  /** The connection's mark after the chain ran (a rule may have stamped it). */
  readonly ctMark?: number;
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

function portMatches(m: PortMatch | undefined, port: number | undefined): boolean {
  if (!m) return true;
  if (port === undefined) return false;
  return m.ports.includes(port) !== (m.negate ?? false);
}

export function matches(m: Match, p: Packet): boolean {
  if (m.nfproto && m.nfproto !== p.family) return false;
  if (!ifMatches(m.iif, p.iif) || !ifMatches(m.oif, p.oif) || !ifMatches(m.iifname, p.iif) || !ifMatches(m.oifname, p.oif)) return false;
  if (!addrMatches(m.saddr, p, 'saddr') || !addrMatches(m.daddr, p, 'daddr')) return false;
  if (m.protocol && m.protocol !== p.protocol) return false;
  if (!portMatches(m.sport, p.sport) || !portMatches(m.dport, p.dport)) return false;
  if (m.tcpSyn && !(p.protocol === 'tcp' && p.tcpFlags === 'syn')) return false;
  if (m.skuid !== undefined && m.skuid !== p.skuid) return false;
  // A packet without a socket uid matches no uid test, negated or not (nft breaks the rule).
  if (m.skuids && (p.skuid === undefined || m.skuids.uids.includes(p.skuid) === (m.skuids.negate ?? false))) return false;
  if (m.ctDirection && m.ctDirection !== (p.ctDirection ?? 'original')) return false;
  if (m.ctMark && m.ctMark.marks.includes(p.ctMark ?? 0) === (m.ctMark.negate ?? false)) return false;
  if (m.owner) {
    if (p.skuid === undefined) return false;
    const own = m.owner.pairs.some((o) => o.uid === p.skuid && o.mark === (p.ctMark ?? 0));
    if (own === (m.owner.negate ?? false)) return false;
  }
  if (m.ctState && !m.ctState.includes(p.ctState)) return false;
  if (m.ctStatus && !m.ctStatus.every((s) => p.ctStatus?.includes(s))) return false;
  return true;
}

/** The mark a stamp gives this packet's connection; undefined when a map has no entry for its uid (the rule ends there). */
function stamp(s: CtMarkSet, p: Packet): number | undefined {
  if ('mark' in s) return s.mark;
  return s.byUid.find((o) => o.uid === p.skuid)?.mark;
}

/** First matching rule with a verdict wins; rules without one only stamp the connection, and evaluation goes on. */
export function evaluateChain(chain: Chain, p: Packet): Decision {
  let q = p;
  for (const [i, r] of chain.rules.entries()) {
    if (!matches(r.match, q)) continue;
    if (r.setCtMark) {
      const m = stamp(r.setCtMark, q);
      if (m === undefined) continue;
      q = { ...q, ctMark: m };
    }
    if (r.verdict.kind !== 'continue') return { verdict: r.verdict, rule: r, index: i, chain: chain.name, ctMark: q.ctMark ?? 0 };
  }
  return { verdict: { kind: chain.base.policy === 'accept' ? 'policy-accept' : 'policy-drop' }, index: -1, chain: chain.name, ctMark: q.ctMark ?? 0 };
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
    if (d.verdict.kind === 'dnat') q = { ...p, daddr: d.verdict.address, dport: d.verdict.port, ctStatus: [...(p.ctStatus ?? []), 'dnat'] };
  }
  const filter = table.chains.find((c) => c.base.type === 'filter' && c.base.hook === 'output');
  if (!filter) throw new Error('no filter output chain');
  const decision = evaluateChain(filter, q);
  return { packet: { ...q, ctMark: decision.ctMark ?? 0 }, decision };
}

export function evaluateHook(table: Table, hook: 'input' | 'forward' | 'output', p: Packet): Decision {
  const c = table.chains.find((x) => x.base.type === 'filter' && x.base.hook === hook);
  if (!c) throw new Error(`no filter ${hook} chain`);
  return evaluateChain(c, p);
}

// A packet interpreter for the AST: first matching rule wins, else the chain
// policy. It is how structural properties that depend on rule order ("the
// desktop user cannot reach the ControlPort", "each listener is reachable by
// exactly its clients") are checked on the model, and how checks across
// modules read what a table grants without parsing nft text.
// It models only what the AST can express; the lab checks the kernel.
import { addressIn, parseCidr4 } from '@leakless/policy/net';
import type { AddrMatch, Chain, CtState, CtStatus, Family, IfMatch, L4Protocol, Match, PortMatch, Rule, Table, Verdict } from './ast.js';

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
  if (m.ctState && !m.ctState.includes(p.ctState)) return false;
  if (m.ctStatus && !m.ctStatus.every((s) => p.ctStatus?.includes(s))) return false;
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
    if (d.verdict.kind === 'dnat') q = { ...p, daddr: d.verdict.address, dport: d.verdict.port, ctStatus: [...(p.ctStatus ?? []), 'dnat'] };
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

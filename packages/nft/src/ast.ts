// A small typed model of the nftables tables leakless loads: the host table
// (the firewall module) and the table inside each network namespace (the
// netns module). The modules build it from the policy, the renderer
// (render.ts) is the only place that turns it into nft syntax, and structural
// checks, the packet evaluator (evaluate.ts) and the lab's planted leaks work
// on this model, never on text: a reviewer can trust that what was checked is
// what is loaded because the file is rendered from the very object that was
// checked.
//
// The model is deliberately smaller than nft: one match object per rule whose
// fields are ANDed, one verdict (or none, for a rule that only stamps its
// connection's owner), and every rule has a counter (what the lab and an
// administrator read to see which rule fired) and a comment naming the
// policy clause it implements.

export type Family = 'ipv4' | 'ipv6';
export type CtState = 'invalid' | 'established' | 'related' | 'new';
/** Connection-tracking status bits a rule may require (`ct status dnat`: the connection was destination-NATed). */
export type CtStatus = 'snat' | 'dnat';
export type L4Protocol = 'tcp' | 'udp' | 'icmp';
/** Which side of its connection a packet travels: `original` from the side that opened it, `reply` back to it. */
export type CtDirection = 'original' | 'reply';

/**
 * The connection mark as the flow's owner (docs/threat-model.md#flow-ownership):
 * conntrack keys a flow by addresses and ports, not by who opened it, so the
 * rules stamp the opener on the flow's first packet and compare later.
 */
export interface MarkMatch {
  readonly marks: readonly number[];
  readonly negate?: boolean;
}

/** A uid and the mark of the flows it owns. */
export interface Owner {
  readonly uid: number;
  readonly mark: number;
}

/** `meta skuid . ct mark`: the sender and the flow's owner, as pairs; with negate, a sender that is not the flow's owner. */
export interface OwnerMatch {
  readonly pairs: readonly Owner[];
  readonly negate?: boolean;
}

/** Several socket uids (`meta skuid { … }`); one uid is Match.skuid. */
export interface UidSetMatch {
  readonly uids: readonly number[];
  readonly negate?: boolean;
}

/**
 * What a rule stamps on its connection when it matches, before its verdict:
 * a constant, or the mark of the sending uid looked up in a map. A uid the
 * map lacks (or a packet without a socket) ends the rule there, as nft's map
 * lookup does: no stamp, no verdict.
 */
export type CtMarkSet = { readonly mark: number } | { readonly byUid: readonly Owner[] };

/** IPv4 addresses or CIDRs; with negate, the rule matches anything outside them. */
export interface AddrMatch {
  readonly addrs: readonly string[];
  readonly negate?: boolean;
}

export interface PortMatch {
  readonly ports: readonly number[];
  readonly negate?: boolean;
}

/** An interface by name. */
export interface IfMatch {
  readonly name: string;
  readonly negate?: boolean;
}

/**
 * All fields are ANDed; an absent field matches everything. Address and port
 * fields are IPv4 only: IPv6 is refused before any rule that could accept it.
 */
export interface Match {
  /** Only needed when no address field already implies the family. */
  readonly nfproto?: Family;
  /** `iif`/`oif` compare interface indexes: only for lo, which exists in every namespace before any rule loads. */
  readonly iif?: IfMatch;
  readonly oif?: IfMatch;
  /** `iifname`/`oifname` compare names: for veths that are created after the ruleset loads. */
  readonly iifname?: IfMatch;
  readonly oifname?: IfMatch;
  readonly saddr?: AddrMatch;
  readonly daddr?: AddrMatch;
  readonly protocol?: L4Protocol;
  /** Needs protocol tcp or udp. */
  readonly sport?: PortMatch;
  /** Needs protocol tcp or udp. */
  readonly dport?: PortMatch;
  /** TCP SYN without ACK/RST/FIN: a connection-opening packet (Tails' --syn). Needs protocol tcp. */
  readonly tcpSyn?: boolean;
  /** Numeric uid of the sending socket: names would be resolved on the loading host (docs/design.md#numeric-uids). */
  readonly skuid?: number;
  readonly skuids?: UidSetMatch;
  readonly ctDirection?: CtDirection;
  readonly ctMark?: MarkMatch;
  /** Needs no other uid match. */
  readonly owner?: OwnerMatch;
  readonly ctState?: readonly CtState[];
  /** All of these status bits set. */
  readonly ctStatus?: readonly CtStatus[];
}

export type Verdict =
  | { readonly kind: 'accept' }
  | { readonly kind: 'drop' }
  /**
   * An ICMP error to the sender: applications fail fast instead of hanging
   * (Tails 2024-03, 0a927285396). port-unreachable unless `icmpx` says
   * otherwise (admin-prohibited: "refused by policy", inside the namespaces).
   */
  | { readonly kind: 'reject'; readonly icmpx?: 'port-unreachable' | 'admin-prohibited' }
  | { readonly kind: 'dnat'; readonly address: string; readonly port: number }
  | { readonly kind: 'masquerade' }
  /** No verdict: the rule only stamps its connection (Rule.setCtMark) and the next rule decides. */
  | { readonly kind: 'continue' };

export interface Rule {
  readonly match: Match;
  readonly verdict: Verdict;
  /** Log with the sender's uid before the verdict (every refusal of a local socket is logged). */
  readonly log?: boolean;
  /** Stamp the connection's owner when the rule matches (docs/threat-model.md#flow-ownership). */
  readonly setCtMark?: CtMarkSet;
  /** The policy clause this rule implements; rendered as the nft comment. */
  readonly clause: string;
}

export type HookName = 'prerouting' | 'input' | 'output' | 'forward' | 'postrouting';

export interface BaseChainSpec {
  readonly type: 'filter' | 'nat';
  readonly hook: HookName;
  /** nft priority; nat output must be numeric (named dstnat only exists for prerouting, docs/design.md#nat-output-priority). */
  readonly priority: 'filter' | 'srcnat' | number;
  readonly policy: 'accept' | 'drop';
}

export interface Chain {
  readonly name: string;
  readonly base: BaseChainSpec;
  readonly rules: readonly Rule[];
  /** Why the chain is there, written as a `#` line above it in the file (not part of what nft lists). */
  readonly why?: string;
}

export interface Table {
  readonly family: 'inet';
  readonly name: string;
  readonly chains: readonly Chain[];
}

export const LOG_PREFIX = 'leakless reject: ';

// Immutable edits, used by the lab to plant leaks and by tests to prove each
// structural check can fail.

export function chainOf(table: Table, name: string): Chain {
  const c = table.chains.find((x) => x.name === name);
  if (!c) throw new Error(`table ${table.name} has no chain ${name}`);
  return c;
}

export function withChain(table: Table, name: string, edit: (rules: readonly Rule[]) => readonly Rule[]): Table {
  chainOf(table, name);
  return { ...table, chains: table.chains.map((c) => (c.name === name ? { ...c, rules: edit(c.rules) } : c)) };
}

export function withChainPolicy(table: Table, name: string, policy: 'accept' | 'drop'): Table {
  chainOf(table, name);
  return { ...table, chains: table.chains.map((c) => (c.name === name ? { ...c, base: { ...c.base, policy } } : c)) };
}

/** Replace every rule the predicate selects (in every chain); throws if none was selected, so an edit cannot silently miss. */
export function mapRules(table: Table, pick: (r: Rule, chain: Chain) => boolean, edit: (r: Rule) => Rule | readonly Rule[]): Table {
  let hits = 0;
  const chains = table.chains.map((c) => ({
    ...c,
    rules: c.rules.flatMap((r) => {
      if (!pick(r, c)) return [r];
      hits++;
      const out = edit(r);
      return Array.isArray(out) ? out : [out as Rule];
    }),
  }));
  if (hits === 0) throw new Error('mapRules: no rule matched');
  return { ...table, chains };
}

/** Insert rules before the first rule the predicate selects in a chain. */
export function insertBefore(table: Table, chain: string, pick: (r: Rule) => boolean, rules: readonly Rule[]): Table {
  return withChain(table, chain, (rs) => {
    const i = rs.findIndex(pick);
    if (i < 0) throw new Error(`insertBefore: no rule matched in ${chain}`);
    return [...rs.slice(0, i), ...rules, ...rs.slice(i)];
  });
}

export function ruleCount(table: Table): number {
  return table.chains.reduce((n, c) => n + c.rules.length, 0);
}

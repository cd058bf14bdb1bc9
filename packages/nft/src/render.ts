// The one renderer from the AST to nft syntax. It writes statements in the
// canonical form `nft list` prints them (statement order, sorted sets, implicit
// dependencies left out), so the table read back from the kernel can be
// compared with the emitted one (runtime assertion firewall.table-loaded).
import { parseCidr4 } from '@leakless/policy/net';
import {
  LOG_PREFIX,
  type AddrMatch,
  type BaseChainSpec,
  type Chain,
  type CtMarkSet,
  type CtState,
  type CtStatus,
  type IfMatch,
  type Match,
  type Owner,
  type PortMatch,
  type Rule,
  type Table,
  type Verdict,
} from './ast.js';

/** Where Debian's nftables package installs nft: the interpreter line of every file and the binary units run. */
export const NFT = '/usr/sbin/nft';

const CT_ORDER: readonly CtState[] = ['invalid', 'established', 'related', 'new'];
const CT_STATUS_ORDER: readonly CtStatus[] = ['snat', 'dnat'];
const COMMENT_MAX = 128; // nft 1.0.6 rejects longer rule comments
const SAFE_TEXT = /^[A-Za-z0-9 _.,:;()[\]{}<>=!/+*#@&'|-]*$/;

function text(s: string, what: string): string {
  // Comments and names are quoted nft strings: a quote or newline would end the
  // statement and let policy text inject a rule.
  if (!SAFE_TEXT.test(s)) throw new Error(`nft ${what} has a character nft strings cannot hold safely: ${JSON.stringify(s)}`);
  return s;
}

function addrKey(a: string): number {
  const c = parseCidr4(a.includes('/') ? a : `${a}/32`);
  return c.base * 64 + c.prefix;
}

function set<T>(items: readonly T[], show: (x: T) => string): string {
  if (items.length === 0) throw new Error('nft: empty set in a match');
  return items.length === 1 ? show(items[0]!) : `{ ${items.map(show).join(', ')} }`;
}

function addrs(field: 'saddr' | 'daddr', m: AddrMatch): string {
  const sorted = [...new Set(m.addrs)].sort((a, b) => addrKey(a) - addrKey(b));
  return `ip ${field} ${m.negate ? '!= ' : ''}${set(sorted, String)}`;
}

function ports(proto: string, field: 'sport' | 'dport', m: PortMatch): string {
  for (const p of m.ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`nft: bad port ${p}`);
  const sorted = [...new Set(m.ports)].sort((a, b) => a - b);
  return `${proto} ${field} ${m.negate ? '!= ' : ''}${set(sorted, String)}`;
}

function uid(u: number): string {
  if (!Number.isInteger(u) || u < 0 || u > 4294967294) throw new Error(`nft: bad uid ${u}`);
  return String(u);
}

/** A connection mark as nft lists it: 0x and eight hex digits. */
export function markText(m: number): string {
  if (!Number.isInteger(m) || m < 0 || m > 0xffffffff) throw new Error(`nft: bad mark ${m}`);
  return `0x${m.toString(16).padStart(8, '0')}`;
}

const byUidThenMark = (a: Owner, b: Owner) => a.uid - b.uid || a.mark - b.mark;

function uniqueSorted<T>(items: readonly T[], cmp: (a: T, b: T) => number, key: (x: T) => string): T[] {
  const seen = new Map(items.map((x) => [key(x), x]));
  return [...seen.values()].sort(cmp);
}

function owners(pairs: readonly Owner[]): Owner[] {
  if (pairs.length === 0) throw new Error('nft: empty owner set');
  return uniqueSorted(pairs, byUidThenMark, (o) => `${o.uid}.${o.mark}`);
}

function setCtMark(s: CtMarkSet): string {
  if ('mark' in s) return `ct mark set ${markText(s.mark)}`;
  const entries = owners(s.byUid);
  if (new Set(entries.map((o) => o.uid)).size !== entries.length) throw new Error('nft: a uid with two marks in a ct mark map');
  // A map keeps its braces in nft's listing, even with one entry.
  return `ct mark set meta skuid map { ${entries.map((o) => `${uid(o.uid)} : ${markText(o.mark)}`).join(', ')} }`;
}

function iface(kw: string, m: IfMatch): string {
  if (m.name.length === 0 || m.name.length > 15) throw new Error(`nft: bad interface name ${JSON.stringify(m.name)}`);
  return `${kw} ${m.negate ? '!= ' : ''}"${text(m.name, 'interface name')}"`;
}

function matchStatements(m: Match): string[] {
  const out: string[] = [];
  const hasAddr = m.saddr !== undefined || m.daddr !== undefined;
  if (hasAddr && m.nfproto === 'ipv6') throw new Error('nft: an ipv4 address match cannot be ipv6');
  if (m.nfproto && !hasAddr) out.push(`meta nfproto ${m.nfproto}`);
  if (m.iif) out.push(iface('iif', m.iif));
  if (m.oif) out.push(iface('oif', m.oif));
  if (m.iifname) out.push(iface('iifname', m.iifname));
  if (m.oifname) out.push(iface('oifname', m.oifname));
  if (m.saddr) out.push(addrs('saddr', m.saddr));
  if (m.daddr) out.push(addrs('daddr', m.daddr));
  const portMatch = m.sport !== undefined || m.dport !== undefined;
  if ((portMatch || m.tcpSyn) && m.protocol === undefined) throw new Error('nft: a port or tcp flag match needs a protocol');
  if (m.tcpSyn && m.protocol !== 'tcp') throw new Error('nft: tcpSyn needs protocol tcp');
  if (portMatch && m.protocol === 'icmp') throw new Error('nft: icmp has no ports');
  if (m.protocol && !portMatch && !m.tcpSyn) out.push(`meta l4proto ${m.protocol}`);
  if (m.sport) out.push(ports(m.protocol!, 'sport', m.sport));
  if (m.dport) out.push(ports(m.protocol!, 'dport', m.dport));
  if (m.tcpSyn) out.push('tcp flags syn / fin,syn,rst,ack');
  if (m.ctDirection) out.push(`ct direction ${m.ctDirection}`);
  if (m.ctMark) {
    const marks = [...new Set(m.ctMark.marks)].sort((a, b) => a - b);
    out.push(`ct mark ${m.ctMark.negate ? '!= ' : ''}${set(marks, markText)}`);
  }
  const uidMatches = [m.skuid, m.skuids, m.owner].filter((x) => x !== undefined).length;
  if (uidMatches > 1) throw new Error('nft: one uid match per rule (skuid, skuids or owner)');
  if (m.skuid !== undefined) out.push(`meta skuid ${uid(m.skuid)}`);
  if (m.skuids) {
    const uids = [...new Set(m.skuids.uids)].sort((a, b) => a - b);
    out.push(`meta skuid ${m.skuids.negate ? '!= ' : ''}${set(uids, uid)}`);
  }
  if (m.owner) {
    // A concatenation keeps its braces in nft's listing, even with one element.
    const pairs = owners(m.owner.pairs);
    out.push(`meta skuid . ct mark ${m.owner.negate ? '!= ' : ''}{ ${pairs.map((o) => `${uid(o.uid)} . ${markText(o.mark)}`).join(', ')} }`);
  }
  if (m.ctState) {
    if (m.ctState.length === 0) throw new Error('nft: empty ct state match');
    out.push(`ct state ${CT_ORDER.filter((s) => m.ctState!.includes(s)).join(',')}`);
  }
  if (m.ctStatus) {
    if (m.ctStatus.length === 0) throw new Error('nft: empty ct status match');
    out.push(`ct status ${CT_STATUS_ORDER.filter((s) => m.ctStatus!.includes(s)).join(',')}`);
  }
  return out;
}

export interface RenderOptions {
  /** Render as `nft list` prints it (counters with values, reject without its default argument). */
  readonly listing?: boolean;
}

function verdict(v: Verdict, listing: boolean): string {
  switch (v.kind) {
    case 'accept':
    case 'drop':
    case 'masquerade':
      return v.kind;
    case 'reject': {
      // Spelled out in the file so the meaning does not depend on the rule's
      // family context; nft lists port-unreachable (its inet default) as plain `reject`.
      const type = v.icmpx ?? 'port-unreachable';
      return listing && type === 'port-unreachable' ? 'reject' : `reject with icmpx ${type}`;
    }
    case 'dnat':
      return `dnat ip to ${v.address}:${v.port}`;
    case 'continue':
      return '';
  }
}

export function renderRule(r: Rule, opts: RenderOptions = {}): string {
  if (r.clause.length === 0) throw new Error('nft: every rule needs a clause comment');
  if (r.clause.length > COMMENT_MAX) throw new Error(`nft: comment longer than ${COMMENT_MAX}: ${r.clause}`);
  if (r.verdict.kind === 'continue' && !r.setCtMark) throw new Error(`nft: a rule with neither a verdict nor a statement: ${r.clause}`);
  const parts = [...matchStatements(r.match), opts.listing ? 'counter packets 0 bytes 0' : 'counter'];
  if (r.setCtMark) parts.push(setCtMark(r.setCtMark));
  if (r.log) parts.push(`log prefix "${LOG_PREFIX}" level debug flags skuid`);
  parts.push(verdict(r.verdict, opts.listing ?? false), `comment "${text(r.clause, 'comment')}"`);
  return parts.filter((x) => x !== '').join(' ');
}

/** A `#` comment line: anything but a line break (which would end the comment and start a statement). */
function commentLine(s: string, indent: string): string {
  if (/[\n\r]/.test(s)) throw new Error(`nft: a comment line cannot hold a line break: ${JSON.stringify(s)}`);
  return s === '' ? '' : `${indent}# ${s}`;
}

/** nft's standard priorities, in the order `nft list` looks them up. */
const STANDARD_PRIORITIES: readonly (readonly [string, number])[] = [
  ['raw', -300],
  ['mangle', -150],
  ['dstnat', -100],
  ['filter', 0],
  ['security', 50],
  ['srcnat', 100],
];

/**
 * A base chain's priority as written: the file keeps what the model says;
 * the listing spells a number near a standard priority the way `nft list`
 * does (0 → filter, 110 in postrouting → srcnat + 10; the nat names only on
 * their own hooks).
 */
function priority(b: BaseChainSpec, listing: boolean): string {
  const p = b.priority;
  if (typeof p === 'string' || !listing) return String(p);
  const std = STANDARD_PRIORITIES.find(([, v]) => Math.abs(p - v) <= 10);
  if (!std || (std[0] === 'dstnat' && b.hook !== 'prerouting') || (std[0] === 'srcnat' && b.hook !== 'postrouting')) return String(p);
  const offset = p - std[1];
  return offset === 0 ? std[0] : `${std[0]} ${offset > 0 ? '+' : '-'} ${Math.abs(offset)}`;
}

function renderChain(c: Chain, opts: RenderOptions): string[] {
  const b = c.base;
  return [
    ...(c.why !== undefined && !opts.listing ? [commentLine(c.why, '\t')] : []),
    `\tchain ${text(c.name, 'chain name')} {`,
    `\t\ttype ${b.type} hook ${b.hook} priority ${priority(b, opts.listing ?? false)}; policy ${b.policy};`,
    ...c.rules.map((r) => `\t\t${renderRule(r, opts)}`),
    '\t}',
  ];
}

/** The `table … { … }` block alone. */
export function renderTable(t: Table, opts: RenderOptions = {}): string {
  const chains = t.chains.map((c) => renderChain(c, opts));
  const body = chains.flatMap((lines, i) => (i === 0 || !opts.listing ? lines : ['', ...lines]));
  return [`table ${t.family} ${text(t.name, 'table name')} {`, ...body, '}', ''].join('\n');
}

/**
 * A complete `nft -f` file that replaces this one table atomically: the file is
 * one transaction, so either the new table is in force or the old one stays.
 * nft 1.0.6 has no `destroy table`, hence create-empty + delete + create
 * (docs/design.md#atomic-load). Other tables are left alone: a drop in any base
 * chain is final, so their rules cannot widen ours. Each header line becomes
 * a `#` comment ('' an empty line).
 */
export function renderNft(t: Table, header: readonly string[] = []): string {
  const name = `${t.family} ${text(t.name, 'table name')}`;
  return [`#!${NFT} -f`, ...header.map((h) => commentLine(h, '')), `table ${name} {}`, `delete table ${name}`, renderTable(t)].join('\n');
}

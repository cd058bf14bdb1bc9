// Structural checks on the AST: the Tails test suite's firewall assertions
// (Tails' features/step_definitions/tor.rb) plus the rules
// beyond Tails (docs/threat-model.md#measures). They read the model, never nft text, and several ask the
// evaluator (@leakless/nft) so rule order is taken into account. Each check is
// proven able to fail by a test that plants the defect it looks for.
import { checkResult, nthAddress, parseCidr4, cidrWithin, type CheckResult, type Policy } from '@leakless/policy';
import { LOG_PREFIX, accepted, chainOf, evaluateHook, evaluateOutput, type Chain, type Packet, type Rule, type Table } from '@leakless/nft';
import { listenerGrants, unnamedUid } from './grants.js';
import { type FlowOwners, flowOwners } from './ruleset.js';

export interface AstCheck {
  readonly id: string;
  readonly statement: string;
  check(table: Table, policy: Policy): CheckResult;
}

const FILTER_HOOKS = ['input', 'forward', 'output'] as const;

function filterChains(t: Table): Chain[] {
  return FILTER_HOOKS.map((h) => {
    const c = t.chains.find((x) => x.base.type === 'filter' && x.base.hook === h);
    if (!c) throw new Error(`no filter ${h} chain`);
    return c;
  });
}

/** The problems a per-chain check finds in input, forward and output, and in each rule of them. */
function perFilterChain(t: Table, chain: (c: Chain) => (string | false)[], rule: (r: Rule, c: Chain, i: number) => string | false = () => false): string[] {
  return filterChains(t).flatMap((c) => [...chain(c), ...c.rules.map((r, i) => rule(r, c, i))].filter((p): p is string => p !== false));
}

const where = (c: Chain, i: number, r: Rule) => `${c.name}[${i}] "${r.clause}"`;

const loScoped = (r: Rule) => (r.match.oif?.name === 'lo' && !r.match.oif.negate) || (r.match.iif?.name === 'lo' && !r.match.iif.negate);
const isCatchAll = (r: Rule) => Object.keys(r.match).length === 0;

function cidrOf(a: string) {
  return parseCidr4(a.includes('/') ? a : `${a}/32`);
}

function daddrWithinLan(r: Rule, policy: Policy): boolean {
  const d = r.match.daddr;
  if (!d || d.negate) return false;
  const internal = parseCidr4(policy.internalRange);
  return d.addrs.every((a) => policy.lanRanges.some((l) => cidrWithin(cidrOf(a), parseCidr4(l))) && !cidrWithin(cidrOf(a), internal));
}

export const structuralChecks: readonly AstCheck[] = [
  {
    id: 'firewall.policies-drop',
    statement: 'input, forward and output have policy drop and end with a catch-all refusal',
    check: (t) =>
      checkResult(
        perFilterChain(t, (c) => {
          const last = c.rules.at(-1);
          return [
            c.base.policy !== 'drop' && `${c.name} policy ${c.base.policy}`,
            (!last || !isCatchAll(last) || accepted({ verdict: last.verdict, index: 0, chain: c.name })) &&
              `${c.name} does not end with a catch-all drop/reject`,
          ];
        }),
        'all three filter chains drop by default',
      ),
  },
  {
    id: 'firewall.ipv6-refused',
    statement: 'the first rule of every filter chain refuses all IPv6, and no rule accepts IPv6',
    check: (t) =>
      checkResult(
        perFilterChain(
          t,
          (c) => {
            const m = c.rules[0]?.match;
            const refusesV6 = m?.nfproto === 'ipv6' && Object.keys(m).length === 1 && ['drop', 'reject'].includes(c.rules[0]!.verdict.kind);
            return [!refusesV6 && `${c.name}: first rule is not "meta nfproto ipv6 drop/reject"`];
          },
          (r, c, i) => r.match.nfproto === 'ipv6' && r.verdict.kind === 'accept' && `${where(c, i, r)} accepts IPv6`,
        ),
        'IPv6 refused first in input, forward and output',
      ),
  },
  {
    id: 'firewall.invalid-dropped',
    statement: 'ct state invalid is dropped before any accept in every filter chain',
    check: (t) =>
      checkResult(
        perFilterChain(t, (c) => {
          const inv = c.rules.findIndex(
            (r) => r.verdict.kind === 'drop' && r.match.ctState?.length === 1 && r.match.ctState[0] === 'invalid' && Object.keys(r.match).length === 1,
          );
          const firstAccept = c.rules.findIndex((r) => r.verdict.kind === 'accept');
          return [
            inv < 0 ? `${c.name}: no "ct state invalid drop"` : firstAccept >= 0 && firstAccept < inv && `${c.name}: an accept precedes the invalid drop`,
          ];
        }),
        'invalid dropped first in all filter chains',
      ),
  },
  {
    id: 'firewall.related-icmp-lo-only',
    statement: 'RELATED packets are accepted only for ICMP on loopback (every other accept requires new or established)',
    check: (t) =>
      checkResult(
        perFilterChain(
          t,
          () => [],
          (r, c, i) => {
            const ct = r.match.ctState;
            if (r.verdict.kind !== 'accept' || (ct !== undefined && !ct.includes('related'))) return false;
            if (!loScoped(r)) return `${where(c, i, r)} accepts RELATED off loopback`;
            return ct?.includes('related') === true && r.match.protocol !== 'icmp' && `${where(c, i, r)} accepts RELATED non-ICMP`;
          },
        ),
        'RELATED only as ICMP on lo',
      ),
  },
  {
    id: 'firewall.egress-principals',
    statement: 'only the tor daemon and clearnet users have accepts towards non-LAN destinations; forwarding only for clearnet namespaces',
    check(t, policy) {
      const allowed = new Set([policy.torUser.uid, ...policy.clearnetUsers.map((u) => u.uid)]);
      const problems: string[] = [];
      const out = chainOf(t, 'output');
      out.rules.forEach((r, i) => {
        if (r.verdict.kind !== 'accept' || loScoped(r)) return;
        const est = r.match.ctState?.every((s) => s === 'established') ?? false;
        if (est || daddrWithinLan(r, policy)) return;
        if (r.match.skuid === undefined || !allowed.has(r.match.skuid)) problems.push(`${where(out, i, r)} lets uid ${r.match.skuid ?? 'any'} out`);
      });
      const clearnetVeths = new Set(policy.namespaces.filter((n) => n.kind === 'clearnet').map((n) => n.hostVeth));
      const fwd = chainOf(t, 'forward');
      fwd.rules.forEach((r, i) => {
        if (r.verdict.kind !== 'accept') return;
        const byIn = r.match.iifname && !r.match.iifname.negate && clearnetVeths.has(r.match.iifname.name);
        const byOut =
          r.match.oifname && !r.match.oifname.negate && clearnetVeths.has(r.match.oifname.name) && r.match.ctState?.every((s) => s === 'established');
        if (!byIn && !byOut) problems.push(`${where(fwd, i, r)} forwards for something other than a clearnet namespace`);
      });
      return checkResult(problems, `non-LAN egress only for uids ${[...allowed].join(', ')} and clearnet namespaces`);
    },
  },
  {
    id: 'firewall.lan-exception',
    statement: 'the LAN exception covers exactly lan.ipv4Ranges, off loopback, after refusing each blocked service',
    check(t, policy) {
      const out = chainOf(t, 'output');
      const problems: string[] = [];
      const want = [...policy.lanRanges].sort().join(',');
      const lanAccepts = out.rules
        .map((r, i) => ({ r, i }))
        .filter(({ r }) => r.verdict.kind === 'accept' && r.match.skuid === undefined && !loScoped(r) && r.match.daddr);
      if (lanAccepts.length !== 1) problems.push(`expected one LAN accept, found ${lanAccepts.length}`);
      for (const { r, i } of lanAccepts) {
        if ([...r.match.daddr!.addrs].sort().join(',') !== want || r.match.daddr!.negate)
          problems.push(`${where(out, i, r)} covers ${r.match.daddr!.addrs.join(',')}, not ${want}`);
        if (r.match.oif?.name !== 'lo' || !r.match.oif.negate) problems.push(`${where(out, i, r)} is not limited to oif != lo`);
        // Each blocked service must be refused for every user before this accept.
        const probe = unnamedUid(policy);
        for (const s of policy.lanBlockedServices) {
          for (const range of policy.lanRanges) {
            const lanHost = nthAddress(parseCidr4(range), 1);
            const d = evaluateOutput(t, {
              family: 'ipv4',
              oif: 'lan0',
              daddr: lanHost,
              protocol: s.protocol,
              dport: s.port,
              ...(s.protocol === 'tcp' ? { tcpFlags: 'syn' as const } : {}),
              skuid: probe,
              ctState: 'new',
            }).decision;
            if (accepted(d)) problems.push(`${s.protocol}/${s.port} to ${lanHost} is accepted for an ordinary user`);
          }
        }
      }
      return checkResult(problems, `LAN = ${want}, minus ${policy.lanBlockedServices.map((s) => `${s.protocol}/${s.port}`).join(', ')}`);
    },
  },
  {
    id: 'firewall.internal-not-lan',
    statement: 'no user reaches the internal netns range except a SocksPort client at its host address; namespaces reach only what the policy grants',
    check(t, policy) {
      const problems: string[] = [];
      const uids = [...policy.users.map((u) => u.uid), unnamedUid(policy)];
      for (const ns of policy.namespaces) {
        const grantees = new Set((ns.socksPort?.clients ?? []).map((c) => c.uid));
        for (const uid of uids) {
          for (const [addr, oif, port] of [
            [ns.hostAddress, 'lo', ns.socksPort?.port ?? 1],
            [ns.hostAddress, 'lo', 1],
            [ns.guestAddress, ns.hostVeth, 1],
          ] as const) {
            const p: Packet = { family: 'ipv4', oif, daddr: addr, protocol: 'tcp', dport: port, tcpFlags: 'syn', skuid: uid, ctState: 'new' };
            const ok = accepted(evaluateOutput(t, p).decision);
            const allowed = addr === ns.hostAddress && port === ns.socksPort?.port && grantees.has(uid);
            if (ok && !allowed) problems.push(`uid ${uid} reaches ${addr}:${port} (${ns.name})`);
          }
        }
        // From inside each namespace: the host only at its SocksPort, the internal range never.
        for (const other of policy.namespaces) {
          const toHost: Packet = {
            family: 'ipv4',
            iif: ns.hostVeth,
            saddr: ns.guestAddress,
            daddr: other.hostAddress,
            protocol: 'tcp',
            dport: 1,
            tcpFlags: 'syn',
            ctState: 'new',
          };
          if (accepted(evaluateHook(t, 'input', toHost))) problems.push(`${ns.name} reaches host ${other.hostAddress}:1`);
          if (other !== ns) {
            const toGuest: Packet = {
              family: 'ipv4',
              iif: ns.hostVeth,
              oif: other.hostVeth,
              saddr: ns.guestAddress,
              daddr: other.guestAddress,
              protocol: 'tcp',
              dport: 1,
              tcpFlags: 'syn',
              ctState: 'new',
            };
            if (accepted(evaluateHook(t, 'forward', toGuest))) problems.push(`${ns.name} reaches ${other.name}'s guest ${other.guestAddress}`);
          }
        }
      }
      return checkResult(problems, `${policy.internalRange} is not LAN for ${uids.length} uids and ${policy.namespaces.length} namespaces`);
    },
  },
  {
    id: 'firewall.nat-output',
    statement: 'nat output holds exactly the automap → TransPort and udp/53 → DNSPort translations, each to a Tor listener',
    check(t, policy) {
      const nat = t.chains.filter((c) => c.base.type === 'nat' && c.base.hook === 'output');
      if (nat.length !== 1) return { ok: false, detail: `expected one nat output chain, found ${nat.length}` };
      const rules = nat[0]!.rules;
      const problems: string[] = [];
      if (rules.length !== 2) problems.push(`expected 2 rules, found ${rules.length}`);
      const listener = (a: string, p: number, proto: string) => policy.torListeners.find((l) => l.address === a && l.port === p && l.protocol === proto);
      const [automap, dns] = rules;
      if (
        automap?.verdict.kind !== 'dnat' ||
        automap.match.daddr?.addrs.join() !== policy.automapRange ||
        automap.match.protocol !== 'tcp' ||
        listener(automap.verdict.address, automap.verdict.port, 'tcp')?.kind !== 'trans'
      )
        problems.push('first rule is not automapRange tcp → TransPort');
      if (
        dns?.verdict.kind !== 'dnat' ||
        dns.match.protocol !== 'udp' ||
        dns.match.dport?.ports.join() !== '53' ||
        dns.match.daddr?.addrs.join() !== policy.dnsPort.address ||
        listener(dns.verdict.address, dns.verdict.port, 'udp')?.kind !== 'dns'
      )
        problems.push('second rule is not udp/53 → DNSPort');
      return checkResult(
        problems,
        `${policy.automapRange} → ${policy.transPort.address}:${policy.transPort.port}, udp/53 → ${policy.dnsPort.address}:${policy.dnsPort.port}`,
      );
    },
  },
  {
    id: 'firewall.nat-postrouting',
    statement: 'nat postrouting holds exactly one masquerade per clearnet namespace, from its subnet',
    check(t, policy) {
      const rules = t.chains.filter((c) => c.base.type === 'nat' && c.base.hook === 'postrouting').flatMap((c) => c.rules);
      const want = policy.namespaces.filter((n) => n.kind === 'clearnet');
      const problems: string[] = [];
      if (rules.length !== want.length) problems.push(`${rules.length} rules for ${want.length} clearnet namespaces`);
      for (const r of rules) {
        const ns = want.find((n) => r.match.saddr?.addrs.length === 1 && r.match.saddr.addrs[0] === n.subnet && !r.match.saddr.negate);
        if (r.verdict.kind !== 'masquerade' || !ns) problems.push(`"${r.clause}" is not a masquerade of a clearnet namespace subnet`);
      }
      return checkResult(problems, want.map((n) => `masquerade ${n.subnet}`).join(', ') || 'no clearnet namespace, no masquerade');
    },
  },
  {
    id: 'firewall.listener-grants',
    statement: 'every Tor listener is reachable by exactly its declared clients (and its namespace), by no one else',
    check(t, policy) {
      const problems: string[] = [];
      for (const g of listenerGrants(t, policy)) {
        const l = policy.torListeners.find((x) => x.clause === g.clause)!;
        const want = l.clients.map((c) => c.uid).sort((a, b) => a - b);
        if (g.uids.join() !== want.join())
          problems.push(`${g.clause} ${g.address}:${g.port} grants uids [${g.uids.join(',')}], clients are [${want.join(',')}]`);
        if (g.openToAll) problems.push(`${g.clause} is open to every local user`);
        const wantNs = l.netns ? [l.netns] : [];
        if (g.namespaces.join() !== wantNs.join())
          problems.push(`${g.clause} reachable from namespaces [${g.namespaces.join(',')}], expected [${wantNs.join(',')}]`);
      }
      return checkResult(problems, `${policy.torListeners.length} listeners, each exactly its clients`);
    },
  },
  {
    id: 'firewall.refusals-logged',
    statement: 'every refusal of a local socket (output reject) is logged with the sender uid before it is rejected',
    check(t) {
      const out = chainOf(t, 'output');
      const problems = out.rules.flatMap((r, i) => (r.verdict.kind === 'reject' && !r.log ? [where(out, i, r)] : []));
      const rejects = out.rules.filter((r) => r.verdict.kind === 'reject').length;
      if (rejects === 0) problems.push('output refuses nothing with reject');
      return checkResult(problems, `${rejects} output rejects, all logged (log prefix "${LOG_PREFIX}" flags skuid)`);
    },
  },
  {
    id: 'firewall.uids-known',
    statement: 'every uid in a rule is a policy user with that number (numeric uids only)',
    check(t, policy) {
      const known = new Set(policy.users.map((u) => u.uid));
      const uidsOf = (r: Rule) => [
        ...(r.match.skuid !== undefined ? [r.match.skuid] : []),
        ...(r.match.skuids?.uids ?? []),
        ...(r.match.owner?.pairs.map((o) => o.uid) ?? []),
        ...(r.setCtMark && 'byUid' in r.setCtMark ? r.setCtMark.byUid.map((o) => o.uid) : []),
      ];
      const problems = t.chains.flatMap((c) =>
        c.rules.flatMap((r) =>
          uidsOf(r)
            .filter((u) => !known.has(u))
            .map((u) => `"${r.clause}" uses unknown uid ${u}`),
        ),
      );
      return checkResult(problems, 'every skuid is a policy user');
    },
  },
  {
    id: 'firewall.flow-ownership',
    statement:
      'an original-direction packet on a flow is accepted only from its owner (the uid or namespace that opened it), a NEW packet never takes a flow over, and replies pass',
    check: (t, policy) => flowOwnershipProblems(t, policy),
  },
  {
    id: 'firewall.tor-answers',
    statement: 'on a Tor port only tor (root, which binds them, or the tor user) may answer; the kernel’s own packets pass',
    check(t, policy) {
      const problems: string[] = [];
      const others = [...policy.users.map((u) => u.uid), unnamedUid(policy)].filter((u) => u !== 0 && u !== policy.torUser.uid);
      for (const l of policy.torListeners) {
        const reply = (skuid: number | undefined): Packet => ({
          family: 'ipv4',
          oif: 'lo',
          saddr: l.address,
          daddr: l.address,
          protocol: l.protocol,
          sport: l.port,
          dport: 40000,
          ...(skuid !== undefined ? { skuid } : {}),
          ctState: 'established',
          ctDirection: 'reply',
          ctMark: policy.users[0]!.uid + 1,
        });
        for (const u of others) if (accepted(evaluateOutput(t, reply(u)).decision)) problems.push(`uid ${u} answers on ${l.clause} ${l.address}:${l.port}`);
        for (const u of [0, policy.torUser.uid, undefined])
          if (!accepted(evaluateOutput(t, reply(u)).decision)) problems.push(`${u === undefined ? 'the kernel' : `uid ${u}`} cannot answer on ${l.clause}`);
      }
      return checkResult(problems, `${policy.torListeners.length} Tor ports answer only as uid 0 or ${policy.torUser.uid}`);
    },
  },
  {
    id: 'firewall.clauses',
    statement: 'every rule names the policy clause (or a docs/ anchor) it implements',
    check(t) {
      const ok = /^(tor\.|users\[\d+\]|lan\.|loopback\.|netns\.|ipv6\.|docs\/[a-z-]+\.md#[a-z0-9.-]+|default: |lockdown: )/;
      const problems = t.chains
        .flatMap((c) => c.rules.map((r, i) => ({ c, r, i })))
        .filter(({ r }) => !ok.test(r.clause))
        .map(({ c, r, i }) => where(c, i, r));
      return checkResult(problems, `${t.chains.reduce((n, c) => n + c.rules.length, 0)} rules, all traced to a clause`);
    },
  },
  {
    id: 'firewall.loopback-only-127',
    statement: 'no user but the tor daemon reaches a loopback address other than the Tor listeners and 127.0.0.1',
    check(t, policy) {
      const problems: string[] = [];
      for (const u of [...policy.users.filter((x) => x.uid !== policy.torUser.uid).map((x) => x.uid), unnamedUid(policy)]) {
        const p: Packet = { family: 'ipv4', oif: 'lo', daddr: '127.0.1.1', protocol: 'tcp', dport: 80, tcpFlags: 'syn', skuid: u, ctState: 'new' };
        if (accepted(evaluateOutput(t, p).decision)) problems.push(`uid ${u} reaches 127.0.1.1:80`);
        const udp: Packet = { family: 'ipv4', oif: 'lo', daddr: '127.0.0.1', protocol: 'udp', dport: 9999, skuid: u, ctState: 'new' };
        if (accepted(evaluateOutput(t, udp).decision)) problems.push(`uid ${u} reaches 127.0.0.1 udp/9999`);
      }
      return checkResult(problems, 'loopback limited to 127.0.0.1 and the Tor listeners');
    },
  },
];

/** Every sender that is not a flow's owner, on every kind of flow, is refused; owners and replies are not. */
function flowOwnershipProblems(t: Table, policy: Policy): CheckResult {
  const owners: FlowOwners = flowOwners(policy);
  const problems: string[] = [];
  const unnamed = unnamedUid(policy);
  // A second unnamed uid: the unnamed uids share one owner mark on purpose.
  const senders = [...owners.users.map((o) => o.uid), unnamed];
  const flows: { owner: string; mark: number; ownUid?: number }[] = [
    ...owners.users.map((o) => ({ owner: `uid ${o.uid}`, mark: o.mark, ownUid: o.uid })),
    { owner: 'the unnamed uids', mark: owners.unnamed, ownUid: unnamed },
    ...[...owners.namespaces].map(([ns, mark]) => ({ owner: `namespace ${ns}`, mark })),
    { owner: 'nobody (made before the table loaded)', mark: 0 },
  ];
  const lanHost = nthAddress(parseCidr4(policy.lanRanges[0]!), 1);
  const dests = [
    { oif: 'eth0', daddr: '198.51.100.10', protocol: 'udp', dport: 53 },
    { oif: 'eth0', daddr: lanHost, protocol: 'udp', dport: 53 },
    { oif: 'eth0', daddr: '198.51.100.10', protocol: 'tcp', dport: 443 },
    { oif: 'eth0', daddr: lanHost, protocol: 'udp', dport: 5000 },
    { oif: 'eth0', daddr: '198.51.100.10', protocol: 'icmp' },
    { oif: 'lo', daddr: policy.controlPort.address, protocol: 'tcp', dport: policy.controlPort.port },
    { oif: 'lo', daddr: policy.dnsPort.address, protocol: 'udp', dport: policy.dnsPort.port },
  ] as const;
  for (const f of flows) {
    for (const d of dests) {
      // A NEW packet on a flow nobody stamped is simply a new flow of its sender.
      for (const ctState of f.mark === 0 ? (['established'] as const) : (['established', 'new'] as const)) {
        const base: Packet = { family: 'ipv4', ...d, ...(d.protocol === 'tcp' ? { tcpFlags: 'other' as const } : {}), ctState, ctMark: f.mark };
        for (const uid of senders) {
          if (uid === f.ownUid) continue;
          const r = evaluateOutput(t, { ...base, skuid: uid });
          if (accepted(r.decision)) problems.push(`uid ${uid} sends on ${f.owner}'s ${ctState} flow to ${d.daddr}:${'dport' in d ? d.dport : d.protocol}`);
          if (r.packet.ctMark !== f.mark) problems.push(`uid ${uid} restamps ${f.owner}'s flow to ${d.daddr}`);
        }
        if (ctState === 'established') {
          if (f.ownUid !== undefined && !accepted(evaluateOutput(t, { ...base, skuid: f.ownUid }).decision))
            problems.push(`${f.owner} cannot send on its own flow to ${d.daddr}`);
          if (!accepted(evaluateOutput(t, { ...base, ctDirection: 'reply' }).decision))
            problems.push(`a reply on ${f.owner}'s flow from ${d.daddr} is refused`);
        }
      }
    }
  }
  // Forwarded and incoming flows: only the namespace whose veth opened them.
  for (const ns of policy.namespaces) {
    const mine = owners.namespaces.get(ns.name)!;
    const hook = ns.kind === 'clearnet' ? 'forward' : 'input';
    const dst =
      ns.kind === 'clearnet'
        ? { oif: 'eth0', daddr: '198.51.100.10', protocol: 'tcp' as const, dport: 443 }
        : { daddr: ns.hostAddress, protocol: 'tcp' as const, dport: ns.socksPort!.port };
    const p = (ctMark: number): Packet => ({
      family: 'ipv4',
      iif: ns.hostVeth,
      saddr: ns.guestAddress,
      ...dst,
      tcpFlags: 'other',
      ctState: 'established',
      ctMark,
    });
    if (!accepted(evaluateHook(t, hook, p(mine)))) problems.push(`${ns.name} cannot send on its own flow`);
    for (const other of [0, owners.unnamed, ...owners.users.map((o) => o.mark)])
      if (accepted(evaluateHook(t, hook, p(other)))) problems.push(`${ns.name} sends on a flow with mark ${other}`);
  }
  return checkResult(problems, `${senders.length} senders × ${flows.length} owners × ${dests.length} destinations: only owners send, replies pass`);
}

export function checkRuleset(table: Table, policy: Policy): { id: string; statement: string; ok: boolean; detail: string }[] {
  return structuralChecks.map((c) => {
    try {
      return { id: c.id, statement: c.statement, ...c.check(table, policy) };
    } catch (e) {
      return { id: c.id, statement: c.statement, ok: false, detail: `could not tell: ${(e as Error).message}` };
    }
  });
}

/** The lockdown table: drop policies, accepts only on loopback, IPv4 only. */
export const lockdownCheck = {
  id: 'firewall.lockdown-loopback-only',
  statement: 'the lockdown ruleset drops everything but IPv4 loopback',
  check(t: Table): CheckResult {
    const problems = perFilterChain(
      t,
      (c) => [c.base.policy !== 'drop' && `${c.name} policy ${c.base.policy}`],
      (r, c, i) => r.verdict.kind === 'accept' && !(loScoped(r) && r.match.nfproto === 'ipv4') && `${where(c, i, r)} accepts off loopback`,
    );
    if (t.chains.some((c) => c.base.type === 'nat')) problems.push('lockdown has nat chains');
    return checkResult(problems, 'lockdown: loopback only');
  },
};

// torrc × firewall × resolv.conf: what tor really listens on (tor's own parse
// of the emitted tree), what the firewall grants (its AST, evaluated packet
// by packet, so rule order counts) and what resolv.conf names must agree.
// Each module checks its own output against the policy; this checks three
// modules' outputs against each other.
import { listenerGrants, loopbackGrants, unnamedUid } from '@leakless/firewall';
import { accepted, evaluateOutput, type Table } from '@leakless/nft';
import type { NamespacePlan } from '@leakless/netns';
import { PATHS, addressIn, nthAddress, parseCidr4, type Policy, type TreeReader } from '@leakless/policy';

export interface TorListening {
  readonly kind: 'socks' | 'control' | 'dns' | 'trans';
  readonly address: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
}

const KINDS = [
  ['SocksPort', 'socks', 'tcp'],
  ['ControlPort', 'control', 'tcp'],
  ['DNSPort', 'dns', 'udp'],
  ['TransPort', 'trans', 'tcp'],
] as const;

/** The IPv4 listeners in tor's effective configuration (`--dump-config full`). */
export function torListening(dump: Map<string, string[]>): TorListening[] {
  const out: TorListening[] = [];
  for (const [option, kind, protocol] of KINDS)
    for (const v of dump.get(option) ?? []) {
      const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)(\s|$)/.exec(v);
      if (m) out.push({ kind, address: m[1]!, port: Number(m[2]), protocol });
    }
  return out;
}

/** Ports tor's ReachableAddresses lets it connect to (undefined = any), from "accept *:N, …, reject *:*". */
export function reachablePorts(dump: Map<string, string[]>): number[] | undefined {
  const v = dump.get('ReachableAddresses');
  if (!v || v.length === 0) return undefined;
  return v
    .join(',')
    .split(',')
    .map((x) => /^accept \*:(\d+)$/.exec(x.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
}

/** The nameservers of a resolv.conf. */
export function nameservers(text: string | undefined): string[] {
  return (text ?? '')
    .split('\n')
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((x): x is string => x !== undefined);
}

const PUBLIC_PROBE = '203.0.113.1'; // documentation range: stands for any relay on the Internet

/** Every disagreement between tor's effective config, the firewall AST and resolv.conf. */
export function consistencyProblems(dump: Map<string, string[]>, table: Table, policy: Policy, tree: TreeReader): string[] {
  const problems: string[] = [];
  const listening = torListening(dump);
  const key = (a: string, p: number, proto: string) => `${proto} ${a}:${p}`;
  const isTor = new Set(listening.map((l) => key(l.address, l.port, l.protocol)));

  // 1. Each port tor listens on is reachable by exactly the policy's clients of that port.
  const grants = listenerGrants(table, policy);
  for (const l of listening) {
    const declared = policy.torListeners.find((x) => x.address === l.address && x.port === l.port && x.protocol === l.protocol);
    if (!declared) {
      problems.push(`tor listens on ${key(l.address, l.port, l.protocol)}, which the policy (and so the firewall) does not declare`);
      continue;
    }
    const g = grants.find((x) => x.clause === declared.clause)!;
    const want = declared.clients.map((c) => c.uid).sort((a, b) => a - b);
    if (g.uids.join() !== want.join())
      problems.push(
        `${declared.clause} (${key(l.address, l.port, l.protocol)}): firewall lets uids [${g.uids.join(',')}] in, its clients are [${want.join(',')}]`,
      );
    if (g.openToAll) problems.push(`${declared.clause}: the firewall lets every local user in`);
    const wantNs = declared.netns ? [declared.netns] : [];
    if (g.namespaces.join() !== wantNs.join())
      problems.push(`${declared.clause}: reachable from namespaces [${g.namespaces.join(',')}], expected [${wantNs.join(',')}]`);
  }
  // 2. No firewall exception made for a tor port points at a port tor does not listen on.
  for (const g of loopbackGrants(table).filter((x) => x.clause.startsWith('tor.')))
    if (!isTor.has(key(g.daddr, g.dport, g.protocol)))
      problems.push(`firewall "${g.clause}" opens ${key(g.daddr, g.dport, g.protocol)} for uid ${g.skuid}, but tor does not listen there`);

  // 3. The system resolver: udp/53 to each resolv.conf nameserver lands on tor's DNSPort, for its clients only.
  const dns = listening.filter((l) => l.kind === 'dns');
  const servers = nameservers(tree.read(PATHS.resolvConf));
  if (servers.length === 0) problems.push(`${PATHS.resolvConf} names no nameserver`);
  const dnsClients = new Set(policy.dnsPort.clients.map((c) => c.uid));
  for (const ns of servers) {
    for (const u of [...policy.users.map((x) => x.uid), unnamedUid(policy)]) {
      const r = evaluateOutput(table, { family: 'ipv4', oif: 'lo', daddr: ns, protocol: 'udp', dport: 53, skuid: u, ctState: 'new' });
      const onDnsPort = dns.some((d) => d.address === r.packet.daddr && d.port === r.packet.dport);
      if (!onDnsPort) {
        problems.push(
          `udp/53 to ${ns} goes to ${r.packet.daddr}:${r.packet.dport}, not to tor's DNSPort (${dns.map((d) => `${d.address}:${d.port}`).join(', ') || 'none'})`,
        );
        break;
      }
      if (accepted(r.decision) !== dnsClients.has(u))
        problems.push(
          `uid ${u}: a lookup via ${ns} is ${accepted(r.decision) ? 'accepted' : 'refused'}, the policy says ${dnsClients.has(u) ? 'accept' : 'refuse'}`,
        );
    }
  }

  // 4. The automap range tor hands out is exactly what the firewall sends to tor's TransPort.
  const trans = listening.filter((l) => l.kind === 'trans');
  const automap = dump.get('VirtualAddrNetworkIPv4')?.[0];
  if (!automap) problems.push('tor has no VirtualAddrNetworkIPv4');
  else {
    const c = parseCidr4(automap);
    const size = 2 ** (32 - c.prefix);
    for (const [addr, inside] of [
      [nthAddress(c, 1), true],
      [nthAddress(c, size - 2), true],
      [nthAddress(c, size), false],
      [nthAddress(c, -1), false],
    ] as const) {
      const r = evaluateOutput(table, {
        family: 'ipv4',
        oif: 'lo',
        daddr: addr,
        protocol: 'tcp',
        dport: 80,
        tcpFlags: 'syn',
        skuid: policy.desktopUser.uid,
        ctState: 'new',
      });
      const toTrans = trans.some((t) => t.address === r.packet.daddr && t.port === r.packet.dport);
      if (toTrans !== inside)
        problems.push(
          `tcp to ${addr} (${inside ? 'inside' : 'outside'} tor's automap range ${automap}) is ${toTrans ? '' : 'not '}redirected to the TransPort`,
        );
      if (!inside && addressIn(r.packet.daddr, c)) problems.push(`${addr} unexpectedly lies in ${automap}`);
    }
  }

  // 5. tor's own connections: the firewall lets the tor user out to exactly the ports tor may pick relays on
  // (with pinned bridges tor picks no relay: bridges.ts checks its egress instead).
  if (policy.torBridges?.pinned) return problems;
  const reach = reachablePorts(dump);
  const policyReach = policy.torReachablePorts;
  if (JSON.stringify(reach === undefined ? undefined : [...reach].sort((a, b) => a - b)) !== JSON.stringify(policyReach))
    problems.push(`tor's ReachableAddresses allow [${reach?.join(',') ?? 'any'}], tor.reachablePorts says [${policyReach?.join(',') ?? 'any'}]`);
  const samples = [...new Set([1, 80, 443, 8080, 9001, 9030, 65535, ...(reach ?? [])])].sort((a, b) => a - b);
  for (const port of samples) {
    const out = accepted(
      evaluateOutput(table, {
        family: 'ipv4',
        oif: 'uplink0',
        daddr: PUBLIC_PROBE,
        protocol: 'tcp',
        dport: port,
        tcpFlags: 'syn',
        skuid: policy.torUser.uid,
        ctState: 'new',
      }).decision,
    );
    const torMay = reach === undefined || reach.includes(port);
    if (out !== torMay)
      problems.push(`tcp ${PUBLIC_PROBE}:${port}: the firewall ${out ? 'lets' : 'stops'} the tor user, tor ${torMay ? 'may' : 'may not'} pick a relay there`);
  }
  return problems;
}

/** Each namespace's DNAT (read off its table) must land on a SocksPort tor listens on. */
export function namespaceSocksProblems(dump: Map<string, string[]>, plans: readonly NamespacePlan[]): string[] {
  const socks = new Set(
    torListening(dump)
      .filter((l) => l.kind === 'socks')
      .map((l) => `${l.address}:${l.port}`),
  );
  const problems: string[] = [];
  for (const p of plans)
    for (const c of p.table.chains)
      for (const r of c.rules)
        if (r.verdict.kind === 'dnat' && !socks.has(`${r.verdict.address}:${r.verdict.port}`))
          problems.push(`${p.nftPath}: "${r.clause}" DNATs to ${r.verdict.address}:${r.verdict.port}, where tor has no SocksPort`);
  return problems;
}

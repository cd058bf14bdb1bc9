// tor.bridges × torrc × firewall (docs/threat-model.md#bridges): the bridges
// and plugin tor really uses (its own parse of the emitted tree), what the
// firewall lets the tor user send (its AST, asked packet by packet) and what
// the policy says must agree, both ways: every bridge tor may use is
// reachable, and the firewall opens nothing for the tor user that tor's
// bridges do not need.
import { unnamedUid } from '@leakless/firewall';
import { accepted, chainOf, evaluateOutput, type Packet, type Table } from '@leakless/nft';
import { FRONTED_TRANSPORTS, type Policy } from '@leakless/policy';

export interface TorBridge {
  /** undefined: a vanilla bridge. */
  readonly transport: string | undefined;
  readonly address: string;
  readonly port: number;
  readonly value: string;
}

/** The bridges in tor's effective configuration (`Bridge [TRANSPORT] ADDRESS:PORT …`). */
export function torBridges(dump: Map<string, string[]>): TorBridge[] {
  return (dump.get('Bridge') ?? []).flatMap((value) => {
    const w = value.split(/\s+/);
    const transport = /^\d/.test(w[0] ?? '') ? undefined : w.shift();
    const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(w[0] ?? '');
    return m ? [{ transport, address: m[1]!, port: Number(m[2]), value }] : [];
  });
}

/** Stands for any relay, directory authority or resolver on the Internet (documentation range). */
const ELSEWHERE = '203.0.113.1';
/** UDP ports sampled: STUN's, Google's STUN, QUIC/HTTPS, DNS, one ephemeral. */
const UDP_SAMPLES = [53, 443, 3478, 19302, 40000];

const send = (t: Table, p: Omit<Packet, 'family' | 'ctState' | 'oif'>): boolean =>
  accepted(evaluateOutput(t, { family: 'ipv4', oif: 'uplink0', ctState: 'new', ...(p.protocol === 'tcp' ? { tcpFlags: 'syn' as const } : {}), ...p }).decision);

export function bridgeProblems(dump: Map<string, string[]>, table: Table, policy: Policy): string[] {
  const problems: string[] = [];
  const b = policy.torBridges;
  const tor = policy.torUser.uid;
  const bridges = torBridges(dump);
  const use = dump.get('UseBridges')?.[0] ?? '0';
  const plugins = dump.get('ClientTransportPlugin') ?? [];

  // 1. The policy and the torrc: the same bridges, the same plugin.
  const want = b?.lines.map((l) => l.torrc) ?? [];
  if (use !== (b ? '1' : '0')) problems.push(`tor has UseBridges ${use}, tor.bridges ${b ? 'is set' : 'is absent'}`);
  for (const x of bridges) if (!want.includes(x.value)) problems.push(`tor may use the bridge "${x.value}", which tor.bridges does not list`);
  for (const w of want) if (!bridges.some((x) => x.value === w)) problems.push(`tor.bridges lists "${w}", tor has no such Bridge line`);
  const wantPlugin = b?.plugin ? [`${b.plugin.transport} exec ${b.plugin.exec}`] : [];
  if (plugins.join('|') !== wantPlugin.join('|'))
    problems.push(`tor's ClientTransportPlugin is [${plugins.join(' | ') || 'unset'}], tor.bridges says [${wantPlugin.join(' | ') || 'none'}]`);

  // 2. torrc → firewall: every bridge tor may dial is open to the tor user (a fronted transport dials elsewhere).
  if (use === '1')
    for (const x of bridges.filter((y) => !FRONTED_TRANSPORTS.includes((y.transport ?? 'vanilla') as never)))
      if (!send(table, { daddr: x.address, protocol: 'tcp', dport: x.port, skuid: tor }))
        problems.push(`tor may use the bridge ${x.address}:${x.port}, the firewall stops the tor user there`);

  // 3. firewall → torrc: with pinned bridges every accept for the tor user off loopback is one of tor's bridges,
  // and nothing else (a relay, a resolver) is reachable for it.
  if (b?.pinned) {
    const dialled = new Set(bridges.map((x) => `${x.address}:${x.port}`));
    for (const r of chainOf(table, 'output').rules) {
      if (r.verdict.kind !== 'accept' || r.match.skuid !== tor || r.match.oif?.name !== 'lo' || r.match.oif.negate !== true) continue;
      const a = r.match.daddr?.addrs ?? [];
      const ports = r.match.dport?.ports ?? [];
      const one = a.length === 1 && ports.length === 1 && r.match.protocol === 'tcp' && !r.match.daddr!.negate && !r.match.dport!.negate;
      if (!one || !dialled.has(`${a[0]}:${ports[0]}`)) problems.push(`firewall "${r.clause}" lets the tor user out beyond tor's bridges`);
    }
    for (const [protocol, dport] of [
      ['tcp', 443],
      ['tcp', 9001],
      ['udp', 53],
    ] as const)
      if (send(table, { daddr: ELSEWHERE, protocol, dport, skuid: tor }))
        problems.push(`bridges are pinned, the firewall still lets the tor user send ${protocol}/${dport} to ${ELSEWHERE}`);
  }

  // 4. UDP beyond DNS: the tor user exactly the policy's ports (a snowflake plugin in the torrc), nobody else any.
  const udp = b?.udpPorts;
  const snowflake = plugins.some((p) => p.startsWith('snowflake '));
  if (udp !== undefined && !snowflake) problems.push('tor.bridges.udpPorts is set, tor runs no snowflake plugin to use it');
  if (snowflake && udp === undefined) problems.push('tor runs snowflake, tor.bridges.udpPorts gives it no UDP');
  const others = [...policy.users.map((u) => u.uid).filter((u) => u !== tor), unnamedUid(policy)];
  for (const dport of [...new Set([...UDP_SAMPLES, ...(Array.isArray(udp) ? udp : [])])]) {
    if (dport === 53) continue; // DNS: the resolver and firewall checks
    const torMay = udp === 'any' || (Array.isArray(udp) && udp.includes(dport));
    const got = send(table, { daddr: ELSEWHERE, protocol: 'udp', dport, skuid: tor });
    if (got !== torMay)
      problems.push(`udp/${dport}: the firewall ${got ? 'lets' : 'stops'} the tor user, tor.bridges.udpPorts says ${torMay ? 'allow' : 'refuse'}`);
    for (const uid of others)
      if (send(table, { daddr: ELSEWHERE, protocol: 'udp', dport, skuid: uid }))
        problems.push(`udp/${dport}: the firewall lets uid ${uid} out (only the tor user may)`);
  }
  return problems;
}

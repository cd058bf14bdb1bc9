// Safety invariants. They hold for EVERY policy, so they are written
// against the wire alone: what left the sut's uplink, and which principal's
// probe (if any) each packet belongs to. They know only the roles the policy
// gives (tor daemon, clearnet users and namespaces) and its LAN ranges; they
// never consult the compiler, its AST or the oracle.
import { addressIn, parseCidr4 } from '@leakless/policy';
import type { CapturedPacket } from './capture.js';

/** Who made a packet, as far as the lab can tell. */
export interface Maker {
  readonly principal: string;
  /** tor-daemon / clearnet / other, for uids; clearnet-netns / tor-only-netns for namespaces. */
  readonly role: 'tor-daemon' | 'clearnet' | 'clearnet-netns' | 'tor-only-netns' | 'other';
  /** An ICMP error the kernel made about someone's flow: nobody's own packet. */
  readonly kernelError?: boolean;
}

export interface InvariantFacts {
  readonly lanRanges: readonly string[];
  readonly internalRange: string;
}

export interface InvariantResult {
  readonly id: string;
  readonly statement: string;
  readonly ok: boolean;
  readonly offenders: readonly string[];
}

const describe = (p: CapturedPacket, m?: Maker) =>
  `${m ? `${m.principal}${m.kernelError ? ' (kernel ICMP error)' : ''}` : 'unattributed'}: IPv${p.family} proto ${p.proto} ${p.src}${p.sport !== undefined ? `:${p.sport}` : ''} → ${p.dst}${p.dport !== undefined ? `:${p.dport}` : ''}${p.icmpType !== undefined ? ` icmp type ${p.icmpType}` : ''}`;

export function checkInvariants(facts: InvariantFacts, packets: readonly { packet: CapturedPacket; maker?: Maker }[]): InvariantResult[] {
  const inRange = (a: string, r: string) => addressIn(a, parseCidr4(r));
  const internal = (a: string) => inRange(a, facts.internalRange);
  const lan = (a: string) => facts.lanRanges.some((r) => inRange(a, r)) && !internal(a);
  const egressOk = (m?: Maker) => m !== undefined && !m.kernelError && ['tor-daemon', 'clearnet', 'clearnet-netns'].includes(m.role);
  const ip = packets.filter((x) => x.packet.family !== 0 || x.packet.proto === -2);

  const results: InvariantResult[] = [];
  const add = (id: string, statement: string, bad: readonly { packet: CapturedPacket; maker?: Maker }[]) =>
    results.push({ id, statement, ok: bad.length === 0, offenders: bad.slice(0, 20).map((x) => describe(x.packet, x.maker)) });

  add(
    'no-ipv6',
    'nothing leaves the sut over IPv6',
    ip.filter((x) => x.packet.family === 6),
  );
  add(
    'unparsable',
    'every packet on the uplink parses (could-not-tell is a failure)',
    ip.filter((x) => x.packet.proto === -2),
  );
  add(
    'egress-principals',
    'only the tor daemon, clearnet users and clearnet namespaces send anything towards a non-LAN address',
    ip.filter((x) => x.packet.family === 4 && !lan(x.packet.dst) && !egressOk(x.maker)),
  );
  add(
    'no-lan-dns',
    'no DNS query goes to the LAN except from the tor daemon and clearnet principals',
    ip.filter(
      (x) => x.packet.family === 4 && lan(x.packet.dst) && (x.packet.proto === 6 || x.packet.proto === 17) && x.packet.dport === 53 && !egressOk(x.maker),
    ),
  );
  add(
    'namespaces-contained',
    'nothing from a tor-only namespace leaves, and no internal-range source address reaches the wire',
    ip.filter((x) => x.packet.family === 4 && (x.maker?.role === 'tor-only-netns' || internal(x.packet.src))),
  );
  add(
    'attributed',
    'every packet that leaves belongs to a probe (nothing else talks)',
    ip.filter((x) => x.maker === undefined),
  );
  return results;
}

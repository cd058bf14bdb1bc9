// The networked boot's oracle: every frame on the guest's tap, classified
// against an explicit allow-list (pure; docs/threat-model.md#network-observer).
//
// Allowed from the guest, and nothing else:
//   arp          ARP within the LAN;
//   dhcp         DHCP client messages (the LAN sees them; the classifier also
//                reports a host name, an FQDN, a client id or a source/chaddr
//                MAC equal to the NIC's own as findings);
//   pretor-dns   DNS to the LAN's resolver asking only for the pre-Tor check's
//                host (the clearnet user's consented lookup);
//   pretor-http  TCP to the check host's address and port, whose request (if
//                any payload) is exactly the check's GET;
//   tor-relay    TCP to a relay's ORPort from the consensus of the network
//                the guest uses (and, once there are bridges, the bridges);
//   control      the lab's positive control (UDP with this run's token to the
//                lab's control port on the LAN), only when the run names it.
// Every other frame from the guest is a leak, IPv6 included. A frame that
// cannot be decoded (truncated, a fragment whose ports cannot be seen, a DHCP
// or DNS message that does not parse) is "unparsable", which fails a run just
// like a leak: "could not tell" is never a pass.
import { addressIn, parseCidr4 } from '@leakless/policy';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface ClassifierFacts {
  /** MACs of the lab's side of the LAN: their frames are the lab's, not the guest's. */
  readonly labMacs: readonly string[];
  /** The NIC's own (permanent) MAC, as the hypervisor gave it. */
  readonly nicMac: string;
  readonly lanSubnet: string;
  /** The LAN's DNS server (DHCP's option 6). */
  readonly lanDns: string;
  readonly checkHost: { readonly name: string; readonly address: string; readonly port: number; readonly path: string };
  /** Relay ORPorts (consensus), and configured bridges. */
  readonly relays: readonly Endpoint[];
  readonly control?: Endpoint & { readonly token: string };
  /**
   * The self-test's active probes (given to it through the test settings):
   * its positive controls reach these, as the tor or clearnet user, which the
   * policy allows; UDP carries the self-test's payload.
   */
  readonly probes?: readonly (Endpoint & { readonly protocol: 'tcp' | 'udp' })[];
}

export type PacketClass = 'arp' | 'dhcp' | 'pretor-dns' | 'pretor-http' | 'tor-relay' | 'selftest-probe' | 'control' | 'lab' | 'leak' | 'unparsable';
export const ALLOWED_CLASSES: readonly PacketClass[] = ['arp', 'dhcp', 'pretor-dns', 'pretor-http', 'tor-relay', 'selftest-probe', 'control'];

export interface ClassifiedPacket {
  /** 1-based position in the capture. */
  readonly n: number;
  /** Seconds since the boot's time zero (QEMU started). */
  readonly t: number;
  readonly from: 'guest' | 'lab';
  readonly cls: PacketClass;
  /** The packet, one line: "tcp 192.168.78.120:41234 → 198.51.100.10:8080 [S] len 0". */
  readonly what: string;
  /** The flow it belongs to (guest address and port first), for TCP and UDP. */
  readonly flow?: string;
  /** TCP flags and payload length, for window rules (teardown of a flow is payload-less). */
  readonly tcpFlags?: string;
  readonly payload?: number;
  /** TCP: the sequence number after this segment's payload (seq + length, mod 2^32): a retransmission ends at or before what was already sent. */
  readonly seqEnd?: number;
  /** Why it is a leak or unparsable, or a detail of an allowed packet. */
  readonly note?: string;
}

export type FindingKind = 'nic-mac' | 'dhcp-hostname' | 'dhcp-fqdn' | 'dhcp-client-id';

export interface Finding {
  readonly kind: FindingKind;
  readonly detail: string;
  /** First time seen, seconds. */
  readonly t: number;
  readonly count: number;
}

export interface FlowSummary {
  readonly key: string;
  readonly cls: PacketClass;
  /** Packets the guest sent in it, and packets it got back from the far end. */
  readonly sent: number;
  readonly replies: number;
  readonly first: number;
  readonly last: number;
}

export interface Classification {
  readonly packets: readonly ClassifiedPacket[];
  readonly flows: readonly FlowSummary[];
  readonly leaks: readonly ClassifiedPacket[];
  readonly unparsable: readonly ClassifiedPacket[];
  readonly findings: readonly Finding[];
  readonly counts: Readonly<Record<PacketClass, number>>;
}

// ---------------------------------------------------------------------------
// Decoding (Ethernet, ARP, IPv4, TCP, UDP, ICMP; DHCP and DNS bodies)

const mac = (b: Buffer, o: number) => [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
const ip4 = (b: Buffer, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

interface Ipv4 {
  readonly src: string;
  readonly dst: string;
  readonly proto: number;
  readonly body: Buffer;
  readonly fragment: boolean;
}

export interface DecodedFrame {
  readonly srcMac: string;
  readonly dstMac: string;
  readonly ethertype: number;
  readonly arp?: { readonly op: number; readonly senderMac: string; readonly senderIp: string; readonly targetIp: string };
  readonly ipv4?: Ipv4;
  readonly tcp?: { readonly sport: number; readonly dport: number; readonly flags: string; readonly seq: number; readonly payload: Buffer };
  readonly udp?: { readonly sport: number; readonly dport: number; readonly payload: Buffer };
  readonly icmp?: { readonly type: number; readonly code: number };
  /** Set when the frame could not be decoded. */
  readonly error?: string;
}

const TCP_FLAGS = 'FSRPAUEC';

export function decodeFrame(f: Buffer): DecodedFrame {
  if (f.length < 14) return { srcMac: '', dstMac: '', ethertype: 0, error: `frame of ${f.length} bytes` };
  const base = { dstMac: mac(f, 0), srcMac: mac(f, 6), ethertype: f.readUInt16BE(12) };
  if (base.ethertype === 0x8100) return { ...base, error: 'VLAN-tagged frame' };
  if (base.ethertype === 0x0806) {
    if (f.length < 42) return { ...base, error: 'truncated ARP' };
    return { ...base, arp: { op: f.readUInt16BE(20), senderMac: mac(f, 22), senderIp: ip4(f, 28), targetIp: ip4(f, 38) } };
  }
  if (base.ethertype !== 0x0800) return base;
  const o = 14;
  if (f.length < o + 20 || f[o]! >> 4 !== 4) return { ...base, error: 'truncated or not IPv4' };
  const ihl = (f[o]! & 0x0f) * 4;
  const total = f.readUInt16BE(o + 2);
  if (ihl < 20 || total < ihl || f.length < o + total) return { ...base, error: 'IPv4 header or length invalid, or frame cut short' };
  const fragOff = f.readUInt16BE(o + 6) & 0x1fff;
  const more = (f.readUInt16BE(o + 6) & 0x2000) !== 0;
  const ipv4: Ipv4 = { src: ip4(f, o + 12), dst: ip4(f, o + 16), proto: f[o + 9]!, body: f.subarray(o + ihl, o + total), fragment: fragOff !== 0 || more };
  if (ipv4.fragment) return { ...base, ipv4, error: `IPv4 fragment (offset ${fragOff * 8}${more ? ', more follow' : ''})` };
  const b = ipv4.body;
  if (ipv4.proto === 6) {
    if (b.length < 20 || (b[12]! >> 4) * 4 < 20 || b.length < (b[12]! >> 4) * 4) return { ...base, ipv4, error: 'truncated TCP header' };
    const flags = [...TCP_FLAGS].filter((_, i) => (b[13]! >> i) & 1).join('');
    return {
      ...base,
      ipv4,
      tcp: { sport: b.readUInt16BE(0), dport: b.readUInt16BE(2), flags, seq: b.readUInt32BE(4), payload: b.subarray((b[12]! >> 4) * 4) },
    };
  }
  if (ipv4.proto === 17) {
    if (b.length < 8) return { ...base, ipv4, error: 'truncated UDP header' };
    return { ...base, ipv4, udp: { sport: b.readUInt16BE(0), dport: b.readUInt16BE(2), payload: b.subarray(8) } };
  }
  if (ipv4.proto === 1) {
    if (b.length < 4) return { ...base, ipv4, error: 'truncated ICMP' };
    return { ...base, ipv4, icmp: { type: b[0]!, code: b[1]! } };
  }
  return { ...base, ipv4 };
}

export interface DhcpMessage {
  readonly op: number;
  readonly chaddr: string;
  /** Option 53. */
  readonly type?: number;
  readonly options: ReadonlyMap<number, Buffer>;
}

const DHCP_TYPES = ['', 'DISCOVER', 'OFFER', 'REQUEST', 'DECLINE', 'ACK', 'NAK', 'RELEASE', 'INFORM'];

export function decodeDhcp(p: Buffer): DhcpMessage | undefined {
  if (p.length < 240 || p.readUInt32BE(236) !== 0x63825363) return undefined;
  const options = new Map<number, Buffer>();
  let o = 240;
  while (o < p.length) {
    const code = p[o]!;
    if (code === 255) break;
    if (code === 0) {
      o++;
      continue;
    }
    if (o + 1 >= p.length) return undefined;
    const len = p[o + 1]!;
    if (o + 2 + len > p.length) return undefined;
    options.set(code, p.subarray(o + 2, o + 2 + len));
    o += 2 + len;
  }
  if (o >= p.length) return undefined; // no end option: truncated
  const t = options.get(53);
  return { op: p[0]!, chaddr: mac(p, 28), ...(t?.length === 1 ? { type: t[0]! } : {}), options };
}

export interface DnsQuestion {
  readonly name: string;
  readonly type: number;
}

/** The questions of a DNS query; undefined if it does not parse. */
export function decodeDnsQuestions(p: Buffer): DnsQuestion[] | undefined {
  if (p.length < 12) return undefined;
  const qd = p.readUInt16BE(4);
  const out: DnsQuestion[] = [];
  let o = 12;
  for (let q = 0; q < qd; q++) {
    const labels: string[] = [];
    for (let hops = 0; ; hops++) {
      if (o >= p.length || hops > 127) return undefined;
      const len = p[o]!;
      if (len === 0) {
        o++;
        break;
      }
      // a query's question is never compressed: a pointer here is not something this oracle can vouch for
      if (len & 0xc0 || o + 1 + len > p.length) return undefined;
      labels.push(p.subarray(o + 1, o + 1 + len).toString('latin1'));
      o += 1 + len;
    }
    if (o + 4 > p.length) return undefined;
    out.push({ name: labels.join('.').toLowerCase(), type: p.readUInt16BE(o) });
    o += 4;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Classification

const CHECK_REQUEST = (path: string) => `GET ${path} HTTP/1.1\r\n`;
/** What the self-test's UDP probe sends (packages/selftest evaluate.ts). */
const SELFTEST_PAYLOAD = 'leakless-selftest\n';

export function classify(records: readonly { readonly ms: number; readonly frame: Buffer }[], facts: ClassifierFacts, t0Ms: number): Classification {
  const lab = new Set(facts.labMacs.map((m) => m.toLowerCase()));
  const nic = facts.nicMac.toLowerCase();
  const lanNet = parseCidr4(facts.lanSubnet);
  const relays = new Set(facts.relays.map((r) => `${r.address}:${r.port}`));
  const packets: ClassifiedPacket[] = [];
  const findings = new Map<string, { kind: FindingKind; detail: string; t: number; count: number }>();
  const flows = new Map<string, { key: string; cls: PacketClass; sent: number; replies: number; first: number; last: number }>();
  const find = (kind: FindingKind, detail: string, t: number) => {
    const k = `${kind} ${detail}`;
    const f = findings.get(k);
    if (f) f.count++;
    else findings.set(k, { kind, detail, t, count: 1 });
  };

  for (const [i, r] of records.entries()) {
    const t = Math.round(r.ms - t0Ms) / 1000;
    const d = decodeFrame(r.frame);
    const from: 'guest' | 'lab' = lab.has(d.srcMac) ? 'lab' : 'guest';
    const push = (cls: PacketClass, what: string, extra: Partial<ClassifiedPacket> = {}) => {
      packets.push({ n: i + 1, t, from, cls: from === 'lab' && cls !== 'unparsable' ? 'lab' : cls, what, ...extra });
    };
    if (d.error) {
      push('unparsable', `${d.srcMac} → ${d.dstMac} ethertype 0x${d.ethertype.toString(16)}`, { note: d.error });
      continue;
    }
    if (from === 'guest' && d.srcMac === nic) find('nic-mac', `source MAC ${d.srcMac} is the NIC's own`, t);
    if (d.arp) {
      const a = d.arp;
      const what = `arp ${a.op === 1 ? 'who-has' : a.op === 2 ? 'is-at' : `op ${a.op}`} ${a.targetIp} tell ${a.senderIp} (${a.senderMac})`;
      if (from === 'guest' && a.senderMac === nic) find('nic-mac', `ARP sender MAC ${a.senderMac} is the NIC's own`, t);
      const inLan = (x: string) => x === '0.0.0.0' || addressIn(x, lanNet);
      const ok = inLan(a.senderIp) && inLan(a.targetIp);
      push(ok ? 'arp' : 'leak', what, ok ? {} : { note: 'ARP outside the LAN' });
      continue;
    }
    if (d.ethertype === 0x86dd) {
      push('leak', `IPv6 frame ${d.srcMac} → ${d.dstMac}`, { note: 'IPv6 must be absent' });
      continue;
    }
    if (!d.ipv4) {
      push('leak', `ethertype 0x${d.ethertype.toString(16)} ${d.srcMac} → ${d.dstMac}`, { note: 'not ARP or IPv4' });
      continue;
    }
    const ip = d.ipv4;
    const guestSide = from === 'guest';
    const [gAddr, gPort, rAddr, rPort] = guestSide
      ? [ip.src, d.tcp?.sport ?? d.udp?.sport, ip.dst, d.tcp?.dport ?? d.udp?.dport]
      : [ip.dst, d.tcp?.dport ?? d.udp?.dport, ip.src, d.tcp?.sport ?? d.udp?.sport];
    const proto = d.tcp ? 'tcp' : d.udp ? 'udp' : d.icmp ? 'icmp' : `ip proto ${ip.proto}`;
    const flowKey = d.tcp || d.udp ? `${proto} ${gAddr}:${gPort} ⇄ ${rAddr}:${rPort}` : undefined;
    const arrow = `${ip.src}${d.tcp || d.udp ? `:${d.tcp?.sport ?? d.udp?.sport}` : ''} → ${ip.dst}${d.tcp || d.udp ? `:${d.tcp?.dport ?? d.udp?.dport}` : ''}`;
    const tcpInfo = d.tcp
      ? ` [${d.tcp.flags}] len ${d.tcp.payload.length}`
      : d.udp
        ? ` len ${d.udp.payload.length}`
        : d.icmp
          ? ` type ${d.icmp.type} code ${d.icmp.code}`
          : '';
    const what = `${proto} ${arrow}${tcpInfo}`;
    const extra = {
      ...(flowKey ? { flow: flowKey } : {}),
      ...(d.tcp ? { tcpFlags: d.tcp.flags, payload: d.tcp.payload.length, seqEnd: (d.tcp.seq + d.tcp.payload.length) >>> 0 } : {}),
    };
    const verdict = ((): { cls: PacketClass; note?: string } => {
      if (!guestSide) return { cls: 'lab' };
      if (d.udp && d.udp.sport === 68 && d.udp.dport === 67) {
        const m = decodeDhcp(d.udp.payload);
        if (!m) return { cls: 'unparsable', note: 'DHCP message does not parse' };
        if (m.chaddr === nic) find('nic-mac', `DHCP chaddr ${m.chaddr} is the NIC's own`, t);
        const host = m.options.get(12);
        if (host) find('dhcp-hostname', `DHCP ${DHCP_TYPES[m.type ?? 0] ?? m.type} sends host name "${host.toString('latin1')}"`, t);
        const fqdn = m.options.get(81);
        if (fqdn) find('dhcp-fqdn', `DHCP ${DHCP_TYPES[m.type ?? 0] ?? m.type} sends an FQDN option (${fqdn.subarray(3).toString('latin1')})`, t);
        const cid = m.options.get(61);
        if (cid?.toString('hex').includes(nic.replace(/:/g, ''))) find('dhcp-client-id', `DHCP client id ${cid.toString('hex')} contains the NIC's MAC`, t);
        return { cls: 'dhcp', note: DHCP_TYPES[m.type ?? 0] ?? `type ${m.type}` };
      }
      if (d.udp && ip.dst === facts.lanDns && d.udp.dport === 53) {
        const qs = decodeDnsQuestions(d.udp.payload);
        if (!qs || qs.length === 0) return { cls: 'unparsable', note: 'DNS query does not parse' };
        const other = qs.filter((q) => q.name !== facts.checkHost.name.toLowerCase() || (q.type !== 1 && q.type !== 28));
        return other.length
          ? { cls: 'leak', note: `DNS to the LAN for ${other.map((q) => `${q.name} (type ${q.type})`).join(', ')}` }
          : { cls: 'pretor-dns', note: qs.map((q) => `${q.name} type ${q.type}`).join(', ') };
      }
      if (d.tcp && ip.dst === facts.checkHost.address && d.tcp.dport === facts.checkHost.port) {
        const p = d.tcp.payload;
        if (p.length && !p.toString('latin1').startsWith(CHECK_REQUEST(facts.checkHost.path)))
          return { cls: 'leak', note: `not the pre-Tor check's request: ${JSON.stringify(p.subarray(0, 60).toString('latin1'))}` };
        return { cls: 'pretor-http' };
      }
      if (d.tcp && relays.has(`${ip.dst}:${d.tcp.dport}`)) return { cls: 'tor-relay' };
      const probe = (facts.probes ?? []).find(
        (x) => x.address === ip.dst && x.port === (d.tcp?.dport ?? d.udp?.dport) && x.protocol === (d.tcp ? 'tcp' : d.udp ? 'udp' : ''),
      );
      if (probe) {
        if (d.tcp?.payload.length) return { cls: 'leak', note: "payload to the self-test's TCP destination (its probe only connects)" };
        if (d.udp && !d.udp.payload.toString('latin1').startsWith(SELFTEST_PAYLOAD)) return { cls: 'leak', note: "not the self-test's probe datagram" };
        return { cls: 'selftest-probe' };
      }
      if (d.udp && facts.control && ip.dst === facts.control.address && d.udp.dport === facts.control.port) {
        return d.udp.payload.toString('latin1').startsWith(facts.control.token)
          ? { cls: 'control' }
          : { cls: 'leak', note: "to the control port without this run's token" };
      }
      return { cls: 'leak' };
    })();
    push(verdict.cls, what, { ...extra, ...(verdict.note ? { note: verdict.note } : {}) });
    if (flowKey) {
      const f = flows.get(flowKey) ?? { key: flowKey, cls: verdict.cls, sent: 0, replies: 0, first: t, last: t };
      if (guestSide) {
        f.sent++;
        if (f.sent === 1 || f.cls === 'lab') f.cls = verdict.cls;
        else if (verdict.cls === 'leak' || verdict.cls === 'unparsable') f.cls = verdict.cls;
      } else if (ip.src === rAddr) f.replies++;
      f.last = t;
      flows.set(flowKey, f);
    }
  }

  const counts = Object.fromEntries(
    (['arp', 'dhcp', 'pretor-dns', 'pretor-http', 'tor-relay', 'selftest-probe', 'control', 'lab', 'leak', 'unparsable'] as const).map((c) => [
      c,
      packets.filter((p) => p.cls === c).length,
    ]),
  ) as Record<PacketClass, number>;
  return {
    packets,
    flows: [...flows.values()].filter((f) => f.sent > 0),
    leaks: packets.filter((p) => p.cls === 'leak'),
    unparsable: packets.filter((p) => p.cls === 'unparsable'),
    findings: [...findings.values()],
    counts,
  };
}

/** A leak or unparsable packet as the report prints it: the second it was sent, and the packet. */
export function describePacket(p: ClassifiedPacket): string {
  return `${p.t.toFixed(3)} s  #${p.n}  ${p.what}${p.note ? `  (${p.note})` : ''}`;
}

/**
 * Whether a guest's TCP segment carries only bytes its flow had already sent
 * before `beforeMs` (a retransmission: the kernel still delivers what a
 * process wrote before it died), judged by sequence numbers (mod 2^32).
 */
export function onlyResent(p: ClassifiedPacket, earlier: readonly ClassifiedPacket[], beforeMs: number): boolean {
  if (p.seqEnd === undefined || !p.flow) return false;
  const sent = earlier.filter((x) => x.from === 'guest' && x.flow === p.flow && x.t * 1000 <= beforeMs && x.seqEnd !== undefined);
  // "a at or before b" in sequence space: b − a, as an unsigned 32-bit difference, is less than half the space
  return sent.some((x) => (x.seqEnd! - p.seqEnd!) >>> 0 < 0x80000000);
}

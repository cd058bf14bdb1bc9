// Capture on the sut's uplink (the "observed on the wire" half of each
// verdict) and a small pcap parser: Ethernet, IPv4, IPv6 (+ extension
// headers), TCP, UDP, ICMP/ICMPv6 including the packet quoted in an ICMP error.
// A packet that cannot be parsed is kept as such, never dropped silently.
import { startProcess } from './process.js';

export interface Inner {
  readonly proto: number;
  readonly src: string;
  readonly dst: string;
  readonly sport?: number;
  readonly dport?: number;
}

export interface CapturedPacket {
  readonly family: 4 | 6 | 0;
  /** IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6 …); -1 if not IP, -2 if truncated. */
  readonly proto: number;
  readonly src: string;
  readonly dst: string;
  readonly sport?: number;
  readonly dport?: number;
  /** TCP flags byte. */
  readonly tcpFlags?: number;
  readonly icmpType?: number;
  readonly icmpCode?: number;
  /** ICMP echo identifier. */
  readonly icmpId?: number;
  /** The packet an ICMP error quotes. */
  readonly inner?: Inner;
  /** First line of the L4 payload (probe token), if printable. */
  readonly token?: string;
  readonly ethertype: number;
}

export const PROTO = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58 } as const;

function ipv4(b: Buffer, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

function ipv6(b: Buffer, o: number): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(b.readUInt16BE(o + i).toString(16));
  // compress the longest run of zero groups, as inet_ntop does
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (parts[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && parts[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return parts.join(':');
  return `${parts.slice(0, best).join(':')}::${parts.slice(best + bestLen).join(':')}`;
}

function token(b: Buffer, o: number): string | undefined {
  if (o >= b.length) return undefined;
  const s = b
    .subarray(o, Math.min(b.length, o + 80))
    .toString('latin1')
    .split('\n')[0]!;
  return /^[\x20-\x7e]+$/.test(s) ? s : undefined;
}

function l4(b: Buffer, o: number, proto: number, family: 4 | 6): Partial<CapturedPacket> {
  if (proto === PROTO.tcp && o + 20 <= b.length) {
    const off = (b[o + 12]! >> 4) * 4;
    return { sport: b.readUInt16BE(o), dport: b.readUInt16BE(o + 2), tcpFlags: b[o + 13]!, token: token(b, o + off) };
  }
  if (proto === PROTO.udp && o + 8 <= b.length) return { sport: b.readUInt16BE(o), dport: b.readUInt16BE(o + 2), token: token(b, o + 8) };
  if ((proto === PROTO.icmp || proto === PROTO.icmpv6) && o + 8 <= b.length) {
    const type = b[o]!;
    const code = b[o + 1]!;
    const echo = family === 4 ? type === 8 || type === 0 : type === 128 || type === 129;
    const error = family === 4 ? [3, 4, 5, 11, 12].includes(type) : type < 128;
    const out: Partial<CapturedPacket> = { icmpType: type, icmpCode: code };
    if (echo) return { ...out, icmpId: b.readUInt16BE(o + 4), token: token(b, o + 8) };
    if (error) {
      const inner = family === 4 ? parseIpv4(b, o + 8) : parseIpv6(b, o + 8);
      if (inner && inner.proto >= 0)
        return {
          ...out,
          inner: { proto: inner.proto, src: inner.src, dst: inner.dst, ...(inner.sport !== undefined ? { sport: inner.sport, dport: inner.dport! } : {}) },
        };
    }
    return out;
  }
  // any other protocol: the probe's token starts the payload
  return { token: token(b, o) };
}

function parseIpv4(b: Buffer, o: number): Omit<CapturedPacket, 'ethertype'> | undefined {
  if (o + 20 > b.length) return undefined;
  const ihl = (b[o]! & 0x0f) * 4;
  const proto = b[o + 9]!;
  return { family: 4, proto, src: ipv4(b, o + 12), dst: ipv4(b, o + 16), ...l4(b, o + ihl, proto, 4) };
}

function parseIpv6(b: Buffer, o: number): Omit<CapturedPacket, 'ethertype'> | undefined {
  if (o + 40 > b.length) return undefined;
  let next = b[o + 6]!;
  let p = o + 40;
  // hop-by-hop (MLD carries one), routing, fragment, destination options
  while ([0, 43, 44, 60].includes(next) && p + 8 <= b.length) {
    const len = next === 44 ? 8 : (b[p + 1]! + 1) * 8;
    next = b[p]!;
    p += len;
  }
  return { family: 6, proto: next, src: ipv6(b, o + 8), dst: ipv6(b, o + 24), ...l4(b, p, next, 6) };
}

/** One Ethernet frame: what parsePcap keeps of each record. */
export function parseFrame(frame: Buffer): CapturedPacket {
  if (frame.length < 14) return { family: 0, proto: -2, src: '', dst: '', ethertype: 0 };
  const ethertype = frame.readUInt16BE(12);
  const ip = ethertype === 0x0800 ? parseIpv4(frame, 14) : ethertype === 0x86dd ? parseIpv6(frame, 14) : undefined;
  if (ip) return { ...ip, ethertype };
  return { family: 0, proto: ethertype === 0x0800 || ethertype === 0x86dd ? -2 : -1, src: '', dst: '', ethertype };
}

/** The records of a classic pcap (tcpdump -w) of Ethernet frames, with their capture time (epoch ms, µs precision). */
export function pcapRecords(buf: Buffer): { readonly ms: number; readonly frame: Buffer }[] {
  if (buf.length < 24) return [];
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && buf.readUInt32BE(0) !== 0xa1b2c3d4 && buf.readUInt32BE(0) !== 0xa1b23c4d) throw new Error('capture: not a pcap file');
  const nano = (le ? magic : buf.readUInt32BE(0)) === 0xa1b23c4d;
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linktype = u32(20);
  if (linktype !== 1) throw new Error(`capture: link type ${linktype}, expected Ethernet (1)`);
  const out: { ms: number; frame: Buffer }[] = [];
  let o = 24;
  while (o + 16 <= buf.length) {
    const incl = u32(o + 8);
    // a record still being written (a capture read while tcpdump runs) ends the list
    if (o + 16 + incl > buf.length) break;
    out.push({ ms: u32(o) * 1000 + u32(o + 4) / (nano ? 1e6 : 1e3), frame: buf.subarray(o + 16, o + 16 + incl) });
    o += 16 + incl;
  }
  return out;
}

/** Parse a classic pcap (tcpdump -w) of Ethernet frames. */
export function parsePcap(buf: Buffer): CapturedPacket[] {
  return pcapRecords(buf).map((r) => parseFrame(r.frame));
}

export interface Capture {
  /** Stop and return every packet captured. */
  stop(): Promise<CapturedPacket[]>;
}

/**
 * tcpdump on one interface of a namespace, outgoing packets only (-Q out), to
 * stdout. Resolves once tcpdump is capturing.
 */
export async function startCapture(ns: string, iface: string, opts: { direction?: 'out' | 'inout'; readyTimeoutMs?: number } = {}): Promise<Capture> {
  const chunks: Buffer[] = [];
  const proc = await startProcess(
    ['ip', 'netns', 'exec', ns, 'tcpdump', '-i', iface, '-Q', opts.direction ?? 'out', '-n', '-U', '--immediate-mode', '-s', '512', '-Z', 'root', '-w', '-'],
    {
      label: `tcpdump on ${iface} in ${ns}`,
      ready: /listening on/,
      readyTimeoutMs: opts.readyTimeoutMs ?? 5000,
      onData: (d) => chunks.push(d),
    },
  );
  return {
    stop: async () => {
      const r = await proc.stop('SIGINT');
      const stderr = proc.stderr();
      if (r.exitCode !== 0 && r.signal !== 'SIGINT') throw new Error(`tcpdump failed (${r.exitCode ?? r.signal}): ${stderr.trim()}`);
      if (/packets? dropped by kernel/.test(stderr) && !/\b0 packets dropped by kernel/.test(stderr))
        throw new Error(`tcpdump dropped packets: ${stderr.trim()}`);
      return parsePcap(Buffer.concat(chunks));
    },
  };
}

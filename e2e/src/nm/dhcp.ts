// What a DHCP client tells the LAN, read from the Ethernet frame the LAN
// sees: the frame's source MAC, BOOTP's client hardware address, and the
// options that can identify the machine (host name 12, FQDN 81, client
// identifier 61, vendor class 60). Anything that is not a BOOTP request from
// UDP 68 to 67 over IPv4 is not a client packet (undefined).

export interface DhcpClientPacket {
  /** Ethernet source address, aa:bb:cc:dd:ee:ff. */
  readonly srcMac: string;
  /** BOOTP chaddr (its first 6 bytes). */
  readonly chaddr: string;
  readonly xid: number;
  /** Option 53: 1 DISCOVER, 3 REQUEST, 7 RELEASE, 8 INFORM … */
  readonly messageType: number | undefined;
  /** Option 12, as text. */
  readonly hostname: string | undefined;
  /** Option 81's domain name part, as text (flags and RCODEs dropped). */
  readonly fqdn: string | undefined;
  /** Option 61, hex. */
  readonly clientId: string | undefined;
  /** Option 60, as text. */
  readonly vendorClass: string | undefined;
  /** The whole frame, to look for any identifier anywhere in it. */
  readonly frame: Buffer;
}

export const DHCP_TYPE = { discover: 1, request: 3 } as const;

export const macString = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
export const macBytes = (mac: string): Buffer => Buffer.from(mac.replace(/:/g, ''), 'hex');

const MAGIC = 0x63825363;

export function parseDhcpClientFrame(frame: Buffer): DhcpClientPacket | undefined {
  if (frame.length < 14 + 20 + 8 + 240 || frame.readUInt16BE(12) !== 0x0800) return undefined;
  const ip = 14;
  const ihl = (frame[ip]! & 0x0f) * 4;
  if (frame[ip + 9] !== 17) return undefined;
  const udp = ip + ihl;
  if (frame.readUInt16BE(udp) !== 68 || frame.readUInt16BE(udp + 2) !== 67) return undefined;
  const bootp = udp + 8;
  if (frame[bootp] !== 1 || frame.length < bootp + 240 || frame.readUInt32BE(bootp + 236) !== MAGIC) return undefined;
  const opts = new Map<number, Buffer>();
  for (let o = bootp + 240; o < frame.length; ) {
    const code = frame[o]!;
    if (code === 255) break;
    if (code === 0) {
      o++;
      continue;
    }
    const len = frame[o + 1];
    if (len === undefined || o + 2 + len > frame.length) break;
    // a repeated option is concatenated (RFC 3396)
    opts.set(code, Buffer.concat([opts.get(code) ?? Buffer.alloc(0), frame.subarray(o + 2, o + 2 + len)]));
    o += 2 + len;
  }
  const text = (code: number) => opts.get(code)?.toString('latin1');
  const fqdn = opts.get(81);
  return {
    srcMac: macString(frame.subarray(6, 12)),
    chaddr: macString(frame.subarray(bootp + 28, bootp + 34)),
    xid: frame.readUInt32BE(bootp + 4),
    messageType: opts.get(53)?.[0],
    hostname: text(12),
    fqdn: fqdn && fqdn.length > 3 ? fqdn.subarray(3).toString('latin1') : undefined,
    clientId: opts.get(61)?.toString('hex'),
    vendorClass: text(60),
    frame,
  };
}

/** Why a client packet identifies the machine (its MAC anywhere in the frame, any host name, or the given names), or undefined. */
export function identifies(p: DhcpClientPacket, nicMac: string, names: readonly string[]): string | undefined {
  if (p.srcMac === nicMac) return `sent from the NIC's own MAC ${nicMac}`;
  if (p.chaddr === nicMac) return `BOOTP chaddr is the NIC's own MAC ${nicMac}`;
  if (p.frame.includes(macBytes(nicMac))) return `the NIC's own MAC ${nicMac} is in the frame (client id ${p.clientId ?? 'none'})`;
  if (p.hostname !== undefined) return `host name option 12: ${JSON.stringify(p.hostname)}`;
  if (p.fqdn !== undefined) return `FQDN option 81: ${JSON.stringify(p.fqdn)}`;
  const named = names.find((n) => p.frame.includes(Buffer.from(n, 'latin1')));
  if (named !== undefined) return `${JSON.stringify(named)} is in the frame`;
  return undefined;
}

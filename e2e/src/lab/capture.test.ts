// The pcap parser and the invariants on hand-built packets (no root needed).
import { describe, expect, it } from 'vitest';
import { type CapturedPacket, parsePcap } from './capture.js';
import { checkInvariants } from './invariants.js';

const ETH = (type: number) => Buffer.concat([Buffer.alloc(12, 0xaa), Buffer.from([type >> 8, type & 255])]);
const v4 = (a: string) => Buffer.from(a.split('.').map(Number));

function ip4(proto: number, src: string, dst: string, l4: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + l4.length, 2);
  h[8] = 64;
  h[9] = proto;
  v4(src).copy(h, 12);
  v4(dst).copy(h, 16);
  return Buffer.concat([h, l4]);
}

function udp(sport: number, dport: number, payload: string): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, Buffer.from(payload)]);
}

function tcpSyn(sport: number, dport: number): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h[12] = 5 << 4;
  h[13] = 0x02;
  return h;
}

function pcap(frames: Buffer[]): Buffer {
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeUInt32LE(65535, 16);
  g.writeUInt32LE(1, 20);
  return Buffer.concat([
    g,
    ...frames.flatMap((f) => {
      const r = Buffer.alloc(16);
      r.writeUInt32LE(f.length, 8);
      r.writeUInt32LE(f.length, 12);
      return [r, f];
    }),
  ]);
}

describe('parsePcap', () => {
  const reply = ip4(17, '198.51.100.10', '192.168.77.2', udp(53, 40000, 'x'));
  const icmpErr = Buffer.concat([Buffer.from([3, 3, 0, 0, 0, 0, 0, 0]), reply]);
  const echo = Buffer.concat([Buffer.from([8, 0, 0, 0, 0x12, 0x34, 0, 1]), Buffer.from('lk-token-1\n')]);
  // IPv6 with a hop-by-hop header in front of ICMPv6 (an MLD report looks like this)
  const v6 = Buffer.alloc(40 + 8 + 8);
  v6[0] = 0x60;
  v6.writeUInt16BE(16, 4);
  v6[6] = 0; // hop-by-hop
  v6[7] = 1;
  v6[23] = 1; // src ::1
  v6[24] = 0xff;
  v6[25] = 0x02;
  v6[39] = 0x16; // dst ff02::16
  v6[40] = 58; // next: icmpv6, hdr ext len 0
  v6[48] = 143; // MLDv2 report
  const packets = parsePcap(
    pcap([
      Buffer.concat([ETH(0x0800), ip4(6, '192.168.77.2', '198.51.100.10', tcpSyn(40001, 80))]),
      Buffer.concat([ETH(0x0800), ip4(17, '192.168.77.2', '192.168.77.1', udp(40002, 53, 'lk-tok\nrest'))]),
      Buffer.concat([ETH(0x0800), ip4(1, '192.168.77.2', '198.51.100.10', echo)]),
      Buffer.concat([ETH(0x0800), ip4(1, '192.168.77.2', '198.51.100.10', icmpErr)]),
      Buffer.concat([ETH(0x86dd), v6]),
      Buffer.concat([ETH(0x0806), Buffer.alloc(28)]),
      Buffer.concat([ETH(0x0800), Buffer.alloc(10)]),
    ]),
  );

  it('reads TCP, UDP (with the probe token), ICMP echo ids and the packet an ICMP error quotes', () => {
    expect(packets[0]).toMatchObject({ family: 4, proto: 6, src: '192.168.77.2', dst: '198.51.100.10', sport: 40001, dport: 80, tcpFlags: 2 });
    expect(packets[1]).toMatchObject({ proto: 17, sport: 40002, dport: 53, token: 'lk-tok' });
    expect(packets[2]).toMatchObject({ proto: 1, icmpType: 8, icmpId: 0x1234, token: 'lk-token-1' });
    expect(packets[3]).toMatchObject({
      proto: 1,
      icmpType: 3,
      icmpCode: 3,
      inner: { proto: 17, src: '198.51.100.10', dst: '192.168.77.2', sport: 53, dport: 40000 },
    });
  });

  it('walks IPv6 extension headers, keeps non-IP frames apart and flags truncated ones', () => {
    expect(packets[4]).toMatchObject({ family: 6, proto: 58, src: '::1', dst: 'ff02::16', icmpType: 143 });
    expect(packets[5]).toMatchObject({ family: 0, proto: -1, ethertype: 0x0806 });
    expect(packets[6]).toMatchObject({ family: 0, proto: -2 });
  });

  it('rejects what is not a pcap', () => {
    expect(() => parsePcap(Buffer.alloc(40, 7))).toThrow(/not a pcap/);
  });
});

describe('safety invariants', () => {
  const facts = { lanRanges: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'], internalRange: '10.200.1.0/24' };
  const pk = (x: Partial<CapturedPacket>): CapturedPacket => ({ family: 4, proto: 6, src: '192.168.77.2', dst: '198.51.100.10', ethertype: 0x0800, ...x });
  const broken = (list: Parameters<typeof checkInvariants>[1]) =>
    checkInvariants(facts, list)
      .filter((i) => !i.ok)
      .map((i) => i.id)
      .sort();

  it('hold for the tor daemon and clearnet principals going out', () => {
    expect(
      broken([
        { packet: pk({ dport: 443 }), maker: { principal: 'debian-tor', role: 'tor-daemon' } },
        { packet: pk({ proto: 17, dport: 53 }), maker: { principal: 'clearnet', role: 'clearnet' } },
        { packet: pk({ dst: '192.168.77.1', proto: 17, dport: 53 }), maker: { principal: 'debian-tor', role: 'tor-daemon' } },
        { packet: pk({ dst: '192.168.77.1', dport: 80 }), maker: { principal: 'amnesia', role: 'other' } },
        { packet: pk({ family: 0, proto: -1, ethertype: 0x0806 }) },
      ]),
    ).toEqual([]);
  });

  it('break on a desktop packet to the Internet, any IPv6, LAN DNS, a kernel ICMP error, a tor-only namespace, an unattributed packet', () => {
    expect(broken([{ packet: pk({ dport: 443 }), maker: { principal: 'amnesia', role: 'other' } }])).toEqual(['egress-principals']);
    expect(broken([{ packet: pk({ family: 6, src: '2001:db8::2', dst: '2001:db8::1' }), maker: { principal: 'debian-tor', role: 'tor-daemon' } }])).toEqual([
      'no-ipv6',
    ]);
    expect(broken([{ packet: pk({ dst: '192.168.77.1', proto: 17, dport: 53 }), maker: { principal: 'amnesia', role: 'other' } }])).toEqual(['no-lan-dns']);
    expect(broken([{ packet: pk({ proto: 1, icmpType: 3 }), maker: { principal: 'debian-tor', role: 'tor-daemon', kernelError: true } }])).toEqual([
      'egress-principals',
    ]);
    expect(broken([{ packet: pk({ src: '10.200.1.2', dst: '192.168.77.1' }), maker: { principal: 'netns:tbb', role: 'tor-only-netns' } }])).toEqual([
      'namespaces-contained',
    ]);
    expect(broken([{ packet: pk({ dst: '192.168.77.1' }) }])).toEqual(['attributed']);
    expect(broken([{ packet: pk({ family: 0, proto: -2, ethertype: 0x0800 }) }])).toEqual(['attributed', 'unparsable']);
  });
});

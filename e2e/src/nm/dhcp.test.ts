import { describe, expect, it } from 'vitest';
import { identifies, macBytes, parseDhcpClientFrame } from './dhcp.js';

const NIC = '52:54:00:4c:4b:01';

/** A DHCP client frame as the wire carries it: Ethernet, IPv4, UDP 68 → 67, BOOTP, options. */
function frame(opts: { src: string; chaddr?: string; options: [number, Buffer][]; sport?: number }): Buffer {
  const eth = Buffer.concat([Buffer.alloc(6, 0xff), macBytes(opts.src), Buffer.from([0x08, 0x00])]);
  const bootp = Buffer.alloc(240);
  bootp[0] = 1; // BOOTREQUEST
  bootp[1] = 1;
  bootp[2] = 6;
  bootp.writeUInt32BE(0x1dbe32cb, 4);
  macBytes(opts.chaddr ?? opts.src).copy(bootp, 28);
  bootp.writeUInt32BE(0x63825363, 236);
  const options = Buffer.concat([...opts.options.map(([c, v]) => Buffer.concat([Buffer.from([c, v.length]), v])), Buffer.from([255])]);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(opts.sport ?? 68, 0);
  udp.writeUInt16BE(67, 2);
  udp.writeUInt16BE(8 + bootp.length + options.length, 4);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip[9] = 17;
  return Buffer.concat([eth, ip, udp, bootp, options]);
}

describe('DHCP client frames', () => {
  it('reads the MACs, the message type and the identifying options', () => {
    const p = parseDhcpClientFrame(
      frame({
        src: NIC,
        options: [
          [53, Buffer.from([1])],
          [61, Buffer.concat([Buffer.from([1]), macBytes(NIC)])],
          [12, Buffer.from('amnesia')],
          [81, Buffer.concat([Buffer.from([0, 0, 0]), Buffer.from('amnesia.lan')])],
        ],
      }),
    )!;
    expect([p.srcMac, p.chaddr, p.messageType, p.hostname, p.fqdn, p.clientId, p.xid]).toEqual([
      NIC,
      NIC,
      1,
      'amnesia',
      'amnesia.lan',
      `01${NIC.replace(/:/g, '')}`,
      0x1dbe32cb,
    ]);
    expect(identifies(p, NIC, [])).toMatch(/NIC's own MAC/);
  });
  it('a random MAC and no host name identify nothing; the NIC’s MAC or a name anywhere in the frame does', () => {
    const random = '4a:0b:6f:4a:69:69';
    const clean = parseDhcpClientFrame(frame({ src: random, options: [[53, Buffer.from([1])]] }))!;
    expect(identifies(clean, NIC, ['amnesia'])).toBeUndefined();
    const idInOption = parseDhcpClientFrame(frame({ src: random, options: [[61, Buffer.concat([Buffer.from([1]), macBytes(NIC)])]] }))!;
    expect(identifies(idInOption, NIC, [])).toMatch(/in the frame/);
    const named = parseDhcpClientFrame(frame({ src: random, options: [[60, Buffer.from('amnesia-vendor')]] }))!;
    expect(identifies(named, NIC, ['amnesia'])).toMatch(/"amnesia" is in the frame/);
    expect(identifies(parseDhcpClientFrame(frame({ src: random, options: [[12, Buffer.from('localhost')]] }))!, NIC, [])).toMatch(/option 12/);
  });
  it('anything else is not a client packet', () => {
    expect(parseDhcpClientFrame(frame({ src: NIC, options: [], sport: 67 }))).toBeUndefined();
    expect(parseDhcpClientFrame(Buffer.alloc(40))).toBeUndefined();
  });
});

// The classifier is a pure function of frames and facts: proven here on
// crafted frames (each allowed class, each kind of leak, each undecodable
// frame) and on a capture recorded from a real networked boot. A classifier
// that let any of the crafted leaks through would fail here, not in the lab.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { pcapRecords } from '../lab/index.js';
import { type ClassifiedPacket, type ClassifierFacts, classify, decodeDhcp, decodeDnsQuestions, describePacket, onlyResent } from './classify.js';

const GUEST_MAC = '02:11:22:33:44:55';
const NIC_MAC = '52:54:00:aa:bb:cc';
const LAB_MAC = '02:6c:6b:00:00:01';
const GUEST = '192.168.78.120';
const ROUTER = '192.168.78.1';
const facts: ClassifierFacts = {
  labMacs: [LAB_MAC],
  nicMac: NIC_MAC,
  lanSubnet: '192.168.78.0/24',
  lanDns: ROUTER,
  checkHost: { name: 'fedoraproject.org', address: '198.51.100.90', port: 80, path: '/static/hotspot.txt' },
  relays: [{ address: '198.51.100.21', port: 9001 }],
  control: { address: ROUTER, port: 9999, token: 'lk01-control' },
  probes: [
    { protocol: 'tcp', address: '198.51.100.10', port: 8081 },
    { protocol: 'udp', address: '192.168.78.53', port: 53 },
  ],
};

// ---- frame builders --------------------------------------------------------------------------------

const macBytes = (m: string) => Buffer.from(m.split(':').map((x) => Number.parseInt(x, 16)));
const ipBytes = (a: string) => Buffer.from(a.split('.').map(Number));
const eth = (src: string, dst: string, type: number, payload: Buffer) =>
  Buffer.concat([macBytes(dst), macBytes(src), Buffer.from([type >> 8, type & 0xff]), payload]);
function ipv4(src: string, dst: string, proto: number, body: Buffer, frag = 0): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + body.length, 2);
  h.writeUInt16BE(frag, 6);
  h[8] = 64;
  h[9] = proto;
  ipBytes(src).copy(h, 12);
  ipBytes(dst).copy(h, 16);
  return Buffer.concat([h, body]);
}
function udp(sport: number, dport: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}
function tcp(sport: number, dport: number, flags: number, payload = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h[12] = 5 << 4;
  h[13] = flags;
  return Buffer.concat([h, payload]);
}
const SYN = 0x02;
const ACK = 0x10;
const PSHACK = 0x18;
const FINACK = 0x11;
function dhcp(type: number, chaddr: string, options: [number, Buffer][] = []): Buffer {
  const b = Buffer.alloc(240);
  b[0] = 1;
  b[1] = 1;
  b[2] = 6;
  macBytes(chaddr).copy(b, 28);
  b.writeUInt32BE(0x63825363, 236);
  const opts = [[53, Buffer.from([type])] as [number, Buffer], ...options].map(([c, v]) => Buffer.concat([Buffer.from([c, v.length]), v]));
  return Buffer.concat([b, ...opts, Buffer.from([255])]);
}
function dnsQuery(names: string[], type = 1): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0x1234, 0);
  h.writeUInt16BE(0x0100, 2);
  h.writeUInt16BE(names.length, 4);
  const qs = names.map((n) =>
    Buffer.concat([...n.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0, type >> 8, type & 0xff, 0, 1])]),
  );
  return Buffer.concat([h, ...qs]);
}
function arp(op: number, senderMac: string, senderIp: string, targetIp: string): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(1, 0);
  b.writeUInt16BE(0x0800, 2);
  b[4] = 6;
  b[5] = 4;
  b.writeUInt16BE(op, 6);
  macBytes(senderMac).copy(b, 8);
  ipBytes(senderIp).copy(b, 14);
  ipBytes(targetIp).copy(b, 24);
  return b;
}
const BCAST = 'ff:ff:ff:ff:ff:ff';
const fromGuest = (l3: Buffer, type = 0x0800, mac = GUEST_MAC) => eth(mac, LAB_MAC, type, l3);
const fromLab = (l3: Buffer) => eth(LAB_MAC, GUEST_MAC, 0x0800, l3);
const GET = Buffer.from('GET /static/hotspot.txt HTTP/1.1\r\nHost: fedoraproject.org\r\n\r\n');

/** A pcap file of the frames, one every 10 ms from t0. */
function pcap(frames: Buffer[], t0s = 1_700_000_000): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(65535, 16);
  head.writeUInt32LE(1, 20);
  const recs = frames.map((f, i) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(t0s + Math.floor((i * 10) / 1000), 0);
    r.writeUInt32LE(((i * 10) % 1000) * 1000, 4);
    r.writeUInt32LE(f.length, 8);
    r.writeUInt32LE(f.length, 12);
    return Buffer.concat([r, f]);
  });
  return Buffer.concat([head, ...recs]);
}
const T0 = 1_700_000_000_000;
const run = (frames: Buffer[], f: ClassifierFacts = facts) => classify(pcapRecords(pcap(frames)), f, T0);

// ---- the allowed sequence --------------------------------------------------------------------------

const cleanFrames = (): Buffer[] => [
  fromGuest(ipv4('0.0.0.0', '255.255.255.255', 17, udp(68, 67, dhcp(1, GUEST_MAC, [[55, Buffer.from([1, 3, 6])]])))),
  eth(LAB_MAC, BCAST, 0x0800, ipv4(ROUTER, '255.255.255.255', 17, udp(67, 68, dhcp(2, GUEST_MAC)))),
  fromGuest(arp(1, GUEST_MAC, GUEST, ROUTER), 0x0806),
  fromGuest(ipv4(GUEST, ROUTER, 17, udp(40000, 53, dnsQuery(['FedoraProject.org'])))),
  fromGuest(ipv4(GUEST, '198.51.100.90', 6, tcp(41000, 80, SYN))),
  fromLab(ipv4('198.51.100.90', GUEST, 6, tcp(80, 41000, SYN | ACK))),
  fromGuest(ipv4(GUEST, '198.51.100.90', 6, tcp(41000, 80, PSHACK, GET))),
  fromGuest(ipv4(GUEST, '198.51.100.21', 6, tcp(42000, 9001, SYN))),
  fromLab(ipv4('198.51.100.21', GUEST, 6, tcp(9001, 42000, SYN | ACK))),
  fromGuest(ipv4(GUEST, '198.51.100.21', 6, tcp(42000, 9001, PSHACK, Buffer.from([0x16, 3, 1, 0, 5])))),
  fromGuest(ipv4(GUEST, ROUTER, 17, udp(43000, 9999, Buffer.from('lk01-control-w1\n')))),
  fromGuest(ipv4(GUEST, '198.51.100.21', 6, tcp(42000, 9001, FINACK))),
];

describe('the networked boot’s classifier', () => {
  it('classifies every allowed kind of packet, and nothing of it is a leak', () => {
    const c = run(cleanFrames());
    expect(c.leaks).toEqual([]);
    expect(c.unparsable).toEqual([]);
    expect(c.findings).toEqual([]);
    expect(c.packets.map((p) => p.cls)).toEqual([
      'dhcp',
      'lab',
      'arp',
      'pretor-dns',
      'pretor-http',
      'lab',
      'pretor-http',
      'tor-relay',
      'lab',
      'tor-relay',
      'control',
      'tor-relay',
    ]);
    const relay = c.flows.find((f) => f.cls === 'tor-relay')!;
    expect(relay).toMatchObject({ key: `tcp ${GUEST}:42000 ⇄ 198.51.100.21:9001`, sent: 3, replies: 1 });
    expect(c.packets[0]).toMatchObject({ t: 0, from: 'guest', note: 'DISCOVER' });
    expect(c.packets.at(-1)).toMatchObject({ tcpFlags: 'FA', payload: 0 });
  });

  const leaks: [string, Buffer, RegExp][] = [
    [
      'a direct TCP connection to the Internet',
      fromGuest(ipv4(GUEST, '198.51.100.10', 6, tcp(44000, 8080, SYN))),
      /tcp 192\.168\.78\.120:44000 → 198\.51\.100\.10:8080 \[S\]/,
    ],
    ['UDP to the Internet', fromGuest(ipv4(GUEST, '198.51.100.10', 17, udp(44001, 8053, Buffer.from('x')))), /udp .* → 198\.51\.100\.10:8053/],
    [
      'a DNS query to the LAN for another name',
      fromGuest(ipv4(GUEST, ROUTER, 17, udp(40001, 53, dnsQuery(['www.example.org'])))),
      /DNS to the LAN for www\.example\.org/,
    ],
    [
      'a DNS query naming the check host and another',
      fromGuest(ipv4(GUEST, ROUTER, 17, udp(40001, 53, dnsQuery(['fedoraproject.org', 'leak.example'])))),
      /leak\.example/,
    ],
    ['a TXT query for the check host', fromGuest(ipv4(GUEST, ROUTER, 17, udp(40001, 53, dnsQuery(['fedoraproject.org'], 16)))), /type 16/],
    ['DNS to another resolver', fromGuest(ipv4(GUEST, '198.51.100.91', 17, udp(40001, 53, dnsQuery(['fedoraproject.org'])))), /→ 198\.51\.100\.91:53/],
    [
      'another request to the check host',
      fromGuest(ipv4(GUEST, '198.51.100.90', 6, tcp(41000, 80, PSHACK, Buffer.from('GET /track?id=1 HTTP/1.1\r\n\r\n')))),
      /not the pre-Tor check's request/,
    ],
    ['a relay address on a port that is not its ORPort', fromGuest(ipv4(GUEST, '198.51.100.21', 6, tcp(42001, 9030, SYN))), /9030/],
    ['UDP to a relay’s ORPort', fromGuest(ipv4(GUEST, '198.51.100.21', 17, udp(42002, 9001, Buffer.from('x')))), /udp/],
    ['an ICMP echo', fromGuest(ipv4(GUEST, ROUTER, 1, Buffer.from([8, 0, 0, 0, 0, 1, 0, 1]))), /icmp .* type 8/],
    ['an IPv6 frame', fromGuest(Buffer.alloc(40), 0x86dd), /IPv6 frame/],
    ['ARP for an address off the LAN', fromGuest(arp(1, GUEST_MAC, GUEST, '198.51.100.10'), 0x0806), /who-has 198\.51\.100\.10/],
    ['the control port without the run’s token', fromGuest(ipv4(GUEST, ROUTER, 17, udp(43000, 9999, Buffer.from('hello')))), /without this run's token/],
    ['LLDP (another ethertype)', fromGuest(Buffer.alloc(20), 0x88cc), /ethertype 0x88cc/],
  ];
  for (const [what, frame, shown] of leaks) {
    it(`reports ${what} as a leak, with the packet and the second it was sent`, () => {
      const c = run([...cleanFrames(), frame]);
      expect(c.leaks).toHaveLength(1);
      expect(c.leaks[0]!.n).toBe(13);
      expect(c.leaks[0]!.t).toBe(0.12);
      expect(`${c.leaks[0]!.what} ${c.leaks[0]!.note ?? ''}`).toMatch(shown);
      expect(describePacket(c.leaks[0]!)).toMatch(/^0\.120 s {2}#13 {2}/);
    });
  }

  const undecodable: [string, Buffer][] = [
    ['a frame shorter than an Ethernet header', Buffer.alloc(10)],
    ['a VLAN-tagged frame', fromGuest(Buffer.alloc(30), 0x8100)],
    ['a truncated IPv4 header', fromGuest(Buffer.alloc(10))],
    ['an IPv4 length beyond the frame', fromGuest(ipv4(GUEST, ROUTER, 17, udp(1, 2, Buffer.alloc(4))).subarray(0, 24))],
    ['a truncated TCP header', fromGuest(ipv4(GUEST, '198.51.100.21', 6, Buffer.alloc(8)))],
    ['an IPv4 fragment (its ports cannot be seen)', fromGuest(ipv4(GUEST, '198.51.100.21', 6, tcp(1, 9001, SYN), 0x2000))],
    ['a DHCP message without its magic cookie', fromGuest(ipv4('0.0.0.0', '255.255.255.255', 17, udp(68, 67, Buffer.alloc(300))))],
    ['a DHCP message without an end option', fromGuest(ipv4('0.0.0.0', '255.255.255.255', 17, udp(68, 67, dhcp(1, GUEST_MAC).subarray(0, 243))))],
    ['a DNS query cut short', fromGuest(ipv4(GUEST, ROUTER, 17, udp(40000, 53, dnsQuery(['fedoraproject.org']).subarray(0, 20))))],
    [
      'a DNS query with a compression pointer in its question',
      fromGuest(ipv4(GUEST, ROUTER, 17, udp(40000, 53, Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1])))),
    ],
  ];
  for (const [what, frame] of undecodable) {
    it(`fails on ${what}: could not tell is not a pass`, () => {
      const c = run([...cleanFrames(), frame]);
      expect(c.unparsable).toHaveLength(1);
      expect(c.leaks).toEqual([]);
    });
  }

  it('allows the self-test’s positive controls to its destinations, and nothing else there', () => {
    const ok = run([
      fromGuest(ipv4(GUEST, '198.51.100.10', 6, tcp(45000, 8081, SYN))),
      fromGuest(ipv4(GUEST, '198.51.100.10', 6, tcp(45000, 8081, FINACK))),
      fromGuest(ipv4(GUEST, '192.168.78.53', 17, udp(45001, 53, Buffer.from('leakless-selftest\n')))),
    ]);
    expect(ok.packets.map((p) => p.cls)).toEqual(['selftest-probe', 'selftest-probe', 'selftest-probe']);
    const bad = run([
      fromGuest(ipv4(GUEST, '198.51.100.10', 6, tcp(45000, 8081, PSHACK, Buffer.from('GET / HTTP/1.1\r\n\r\n')))),
      fromGuest(ipv4(GUEST, '192.168.78.53', 17, udp(45001, 53, dnsQuery(['example.org'])))),
      fromGuest(ipv4(GUEST, '198.51.100.10', 17, udp(45002, 8081, Buffer.from('leakless-selftest\n')))),
      fromGuest(ipv4(GUEST, '198.51.100.10', 6, tcp(45003, 8080, SYN))),
    ]);
    expect(bad.leaks).toHaveLength(4);
  });

  it('judges only the guest’s frames, but an undecodable frame from the lab still fails', () => {
    const answer = fromLab(ipv4('198.51.100.10', GUEST, 6, tcp(8080, 44000, SYN | ACK)));
    expect(run([answer]).packets[0]).toMatchObject({ from: 'lab', cls: 'lab' });
    expect(run([eth(LAB_MAC, GUEST_MAC, 0x0800, Buffer.alloc(10))]).unparsable).toHaveLength(1);
  });

  it('reports what identifies the machine to the LAN: its own MAC, a DHCP host name, an FQDN, a client id with the MAC', () => {
    const c = run([
      fromGuest(
        ipv4(
          '0.0.0.0',
          '255.255.255.255',
          17,
          udp(
            68,
            67,
            dhcp(1, NIC_MAC, [
              [12, Buffer.from('amnesia')],
              [81, Buffer.from('\x00\x00\x00amnesia.lan')],
              [61, Buffer.concat([Buffer.from([1]), macBytes(NIC_MAC)])],
            ]),
          ),
        ),
        0x0800,
        NIC_MAC,
      ),
      fromGuest(arp(1, NIC_MAC, GUEST, ROUTER), 0x0806, NIC_MAC),
    ]);
    expect(c.leaks).toEqual([]);
    expect(c.findings.map((f) => [f.kind, f.count])).toEqual([
      ['nic-mac', 2],
      ['nic-mac', 1],
      ['dhcp-hostname', 1],
      ['dhcp-fqdn', 1],
      ['dhcp-client-id', 1],
      ['nic-mac', 1],
    ]);
    expect(c.findings.find((f) => f.kind === 'dhcp-hostname')!.detail).toContain('"amnesia"');
  });

  it('an empty allow-list turns every relay connection into a leak (the relays come from the consensus, never assumed)', () => {
    const c = run(cleanFrames(), { ...facts, relays: [] });
    expect(c.leaks.map((p) => p.what)).toEqual([
      `tcp ${GUEST}:42000 → 198.51.100.21:9001 [S] len 0`,
      `tcp ${GUEST}:42000 → 198.51.100.21:9001 [PA] len 5`,
      `tcp ${GUEST}:42000 → 198.51.100.21:9001 [FA] len 0`,
    ]);
  });

  it('decodes DHCP options and DNS questions', () => {
    const d = decodeDhcp(dhcp(3, GUEST_MAC, [[50, ipBytes(GUEST)]]))!;
    expect(d).toMatchObject({ op: 1, chaddr: GUEST_MAC, type: 3 });
    expect([...d.options.get(50)!]).toEqual([192, 168, 78, 120]);
    expect(decodeDnsQuestions(dnsQuery(['a.example', 'B.example'], 28))).toEqual([
      { name: 'a.example', type: 28 },
      { name: 'b.example', type: 28 },
    ]);
  });
});

describe('the classifier on a capture recorded from a real networked boot', () => {
  const load = () => ({
    recorded: JSON.parse(readFileSync(new URL('./fixtures/recorded-boot.json', import.meta.url), 'utf8')) as {
      facts: ClassifierFacts;
      t0: number;
      expected: Record<string, number>;
    },
    records: pcapRecords(readFileSync(new URL('./fixtures/recorded-boot.pcap', import.meta.url))),
  });

  it('has no leak and nothing unparsable, and every class where the boot had it', () => {
    const { recorded, records } = load();
    const c = classify(records, recorded.facts, recorded.t0);
    expect(c.leaks.map(describePacket)).toEqual([]);
    expect(c.unparsable.map(describePacket)).toEqual([]);
    expect(c.counts).toMatchObject(recorded.expected);
    // that boot's NIC kept the MAC the hypervisor gave it: reported, not hidden
    expect(c.findings.filter((f) => f.kind === 'nic-mac').length).toBeGreaterThan(0);
  });

  it('anti-test: the same capture judged without the private network’s relays is full of leaks', () => {
    const { recorded, records } = load();
    const c = classify(records, { ...recorded.facts, relays: [] }, recorded.t0);
    expect(c.leaks.length).toBe(recorded.expected['tor-relay']);
  });
});

describe('after tor is killed: a resent segment is not new traffic', () => {
  const flow = 'tcp 192.168.78.102:44706 ⇄ 198.51.100.21:9001';
  const seg = (t: number, seqEnd: number, f = flow): ClassifiedPacket => ({
    n: 1,
    t,
    from: 'guest',
    cls: 'tor-relay',
    what: 'tcp',
    flow: f,
    tcpFlags: 'PA',
    payload: 536,
    seqEnd,
  });
  const before = [seg(10, 5000), seg(11, 5536)];
  it('data the flow had sent before the kill may be sent again; a byte beyond it may not', () => {
    expect(onlyResent(seg(30, 5536), before, 20_000)).toBe(true);
    expect(onlyResent(seg(30, 5000), before, 20_000)).toBe(true);
    expect(onlyResent(seg(30, 6072), before, 20_000)).toBe(false);
  });
  it('counts only what the same flow sent, before the kill', () => {
    expect(onlyResent(seg(30, 5536, 'tcp 192.168.78.102:1 ⇄ 198.51.100.21:9001'), before, 20_000)).toBe(false);
    expect(onlyResent(seg(30, 5536), [seg(25, 5536)], 20_000)).toBe(false);
  });
  it('across the wrap of the sequence space', () => {
    expect(onlyResent(seg(30, 0xfffffff0), [seg(10, 0x10)], 20_000)).toBe(true);
    expect(onlyResent(seg(30, 0x20), [seg(10, 0x10)], 20_000)).toBe(false);
  });
});

// The tor user's egress per transport (docs/threat-model.md#bridges), asked of
// the packet evaluator so rule order counts, for every uid of the policy and
// an unnamed one.
import { accepted, chainOf, evaluateOutput, type Packet } from '@leakless/nft';
import type { Policy } from '@leakless/policy';
import { policyWith } from '@leakless/policy/testing';
import { describe, expect, it } from 'vitest';
import { checkRuleset, ruleset, torEgress, unnamedUid } from './index.js';

const CERT = 'AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tng5+71/AMKERgfJi00O0JJUFdeZQ';
const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const BRIDGE = { address: '198.51.100.40', port: 443 };
const OBFS4 = `obfs4 ${BRIDGE.address}:${BRIDGE.port} ${FP} cert=${CERT} iat-mode=0`;
const SNOWFLAKE = `snowflake 192.0.2.3:80 ${FP} url=https://broker.example/ front=cdn.example ice=stun:stun.example:3478`;
const RELAY = '203.0.113.31';
const RESOLVER = '192.168.1.1';

const bridged = (bridges: Record<string, unknown>): Policy =>
  policyWith((d) => {
    d.tor.bridges = bridges;
    d.loopback.mode = bridges.transport === 'vanilla' ? d.loopback.mode : 'allowlist';
  });

const variants: Record<string, Policy> = {
  none: policyWith(),
  'obfs4 pinned': bridged({ transport: 'obfs4', lines: [OBFS4] }),
  'obfs4 unpinned': bridged({ transport: 'obfs4', lines: [OBFS4], pinEgress: false }),
  'vanilla pinned': bridged({ transport: 'vanilla', lines: [`${BRIDGE.address}:${BRIDGE.port} ${FP}`] }),
  'snowflake udp 3478': bridged({ transport: 'snowflake', lines: [SNOWFLAKE], udpPorts: [3478] }),
  'snowflake udp any': bridged({ transport: 'snowflake', lines: [SNOWFLAKE], udpPorts: 'any' }),
};

function out(p: Policy, uid: number, daddr: string, protocol: 'tcp' | 'udp', dport: number, oif = 'eth0'): boolean {
  const pkt: Packet = { family: 'ipv4', oif, daddr, protocol, dport, skuid: uid, ctState: 'new', ...(protocol === 'tcp' ? { tcpFlags: 'syn' as const } : {}) };
  return accepted(evaluateOutput(ruleset(p), pkt).decision);
}

describe('the tor user’s egress per transport', () => {
  it.each(Object.entries(variants))('%s: every structural check of the ruleset still passes', (_, p) => {
    expect(checkRuleset(ruleset(p), p).filter((c) => !c.ok)).toEqual([]);
  });

  it('pinned obfs4 and vanilla: TCP to the bridge’s address and port only; no relay, no other port, no DNS', () => {
    for (const name of ['obfs4 pinned', 'vanilla pinned']) {
      const p = variants[name]!;
      const tor = p.torUser.uid;
      expect(out(p, tor, BRIDGE.address, 'tcp', BRIDGE.port), `${name}: the bridge`).toBe(true);
      expect(out(p, tor, BRIDGE.address, 'tcp', 9001), `${name}: another port of the bridge`).toBe(false);
      expect(out(p, tor, RELAY, 'tcp', 443), `${name}: a relay`).toBe(false);
      expect(out(p, tor, RELAY, 'udp', 53), `${name}: DNS`).toBe(false);
      expect(out(p, tor, RESOLVER, 'udp', 53), `${name}: the LAN resolver`).toBe(false);
      // the plugin's SOCKS listener on loopback (any port but tor's own)
      expect(out(p, tor, '127.0.0.1', 'tcp', 40000, 'lo'), `${name}: tor to the plugin`).toBe(true);
    }
  });

  it('unpinned obfs4: TCP and DNS as without bridges', () => {
    const p = variants['obfs4 unpinned']!;
    const tor = p.torUser.uid;
    expect([out(p, tor, RELAY, 'tcp', 443), out(p, tor, RELAY, 'udp', 53), out(p, tor, RELAY, 'udp', 3478)]).toEqual([true, true, false]);
    expect(torEgress(p)).toEqual(torEgress(variants.none!));
  });

  it('snowflake: the policy’s UDP for the tor user, unicast only; no other uid gets any UDP off the LAN', () => {
    for (const [name, ports, allowed] of [
      ['snowflake udp 3478', [3478, 19302, 443], [true, false, false]],
      ['snowflake udp any', [3478, 19302, 443], [true, true, true]],
    ] as const) {
      const p = variants[name]!;
      const tor = p.torUser.uid;
      expect(
        ports.map((port) => out(p, tor, RELAY, 'udp', port)),
        name,
      ).toEqual(allowed);
      expect(out(p, tor, '224.0.0.251', 'udp', 3478), `${name}: multicast`).toBe(false);
      expect(out(p, tor, '255.255.255.255', 'udp', 3478), `${name}: broadcast`).toBe(false);
      expect(out(p, tor, RELAY, 'tcp', 443), `${name}: the broker's front, TCP as today`).toBe(true);
      expect(out(p, tor, RESOLVER, 'udp', 53), `${name}: the broker's name through the clearnet resolver`).toBe(true);
      for (const uid of [...p.users.map((u) => u.uid).filter((u) => u !== tor), unnamedUid(p)])
        for (const port of ports) expect(out(p, uid, RELAY, 'udp', port), `${name}: uid ${uid} udp/${port}`).toBe(false);
    }
    // without snowflake the tor user has no UDP but DNS
    const none = variants.none!;
    expect(out(none, none.torUser.uid, RELAY, 'udp', 3478)).toBe(false);
  });

  it('the tor user’s rules per transport (measured)', () => {
    const counts = Object.fromEntries(
      Object.entries(variants).map(([name, p]) => [
        name,
        chainOf(ruleset(p), 'output')
          .rules.filter((r) => r.match.skuid === p.torUser.uid && r.match.oif?.negate === true)
          .map((r) => r.clause),
      ]),
    );
    console.log(`tor user egress rules per transport: ${JSON.stringify(counts, null, 1)}`);
    expect(Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v.length]))).toEqual({
      none: 2,
      'obfs4 pinned': 1,
      'obfs4 unpinned': 2,
      'vanilla pinned': 1,
      'snowflake udp 3478': 3,
      'snowflake udp any': 3,
    });
  });
});

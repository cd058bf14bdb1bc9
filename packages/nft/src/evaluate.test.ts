import { describe, expect, it } from 'vitest';
import type { Table } from './ast.js';
import { accepted, evaluateHook, evaluateOutput, matches, type Packet } from './evaluate.js';

// A namespace-like table: 127.0.0.1:9050 is DNATed to the host side, and only
// DNATed connections may leave; replies come back from the SocksPort only.
const t: Table = {
  family: 'inet',
  name: 't',
  chains: [
    {
      name: 'nat_output',
      base: { type: 'nat', hook: 'output', priority: -100, policy: 'accept' },
      rules: [
        {
          match: { oifname: { name: 'lo' }, daddr: { addrs: ['127.0.0.1'] }, protocol: 'tcp', dport: { ports: [9050] } },
          verdict: { kind: 'dnat', address: '10.200.1.1', port: 9050 },
          clause: 'dnat',
        },
      ],
    },
    {
      name: 'output',
      base: { type: 'filter', hook: 'output', priority: 0, policy: 'drop' },
      rules: [
        {
          match: { daddr: { addrs: ['10.200.1.1'] }, protocol: 'tcp', dport: { ports: [9050] }, ctStatus: ['dnat'] },
          verdict: { kind: 'accept' },
          clause: 'the one way out',
        },
      ],
    },
    {
      name: 'input',
      base: { type: 'filter', hook: 'input', priority: 0, policy: 'drop' },
      rules: [
        {
          match: { saddr: { addrs: ['10.200.1.1'] }, protocol: 'tcp', sport: { ports: [9050] }, ctState: ['established'] },
          verdict: { kind: 'accept' },
          clause: 'replies',
        },
      ],
    },
  ],
};

const syn = (daddr: string, dport: number, oif = 'lo'): Packet => ({ family: 'ipv4', oif, daddr, protocol: 'tcp', dport, tcpFlags: 'syn', ctState: 'new' });

describe('evaluator', () => {
  it('follows a DNAT into the filter chain with the connection marked dnat', () => {
    const r = evaluateOutput(t, syn('127.0.0.1', 9050));
    expect(r.packet).toMatchObject({ daddr: '10.200.1.1', dport: 9050, ctStatus: ['dnat'] });
    expect(accepted(r.decision)).toBe(true);
  });

  it('refuses the same destination reached without the DNAT (ct status)', () => {
    expect(accepted(evaluateOutput(t, syn('10.200.1.1', 9050, 'veth0')).decision)).toBe(false);
  });

  it('matches source ports: replies from the SocksPort only', () => {
    const reply = (sport: number): Packet => ({
      family: 'ipv4',
      iif: 'veth0',
      saddr: '10.200.1.1',
      daddr: '10.200.1.2',
      protocol: 'tcp',
      sport,
      dport: 40000,
      ctState: 'established',
    });
    expect(accepted(evaluateHook(t, 'input', reply(9050)))).toBe(true);
    expect(accepted(evaluateHook(t, 'input', reply(22)))).toBe(false);
    expect(matches({ protocol: 'tcp', sport: { ports: [22], negate: true } }, reply(9050))).toBe(true);
    expect(matches({ protocol: 'tcp', sport: { ports: [22] } }, { ...reply(22), sport: undefined })).toBe(false);
  });
});

// Flow ownership (docs/threat-model.md#flow-ownership): stamp the opener, then
// refuse an original-direction packet from anyone else.
const owned: Table = {
  family: 'inet',
  name: 'owned',
  chains: [
    {
      name: 'output',
      base: { type: 'filter', hook: 'output', priority: 0, policy: 'drop' },
      rules: [
        {
          match: { ctState: ['new'], ctMark: { marks: [0] } },
          setCtMark: { byUid: [{ uid: 106, mark: 107 }] },
          verdict: { kind: 'continue' },
          clause: 'stamp a policy user',
        },
        { match: { ctState: ['new'], ctMark: { marks: [0] } }, setCtMark: { mark: 0xffffffff }, verdict: { kind: 'continue' }, clause: 'stamp the rest' },
        {
          match: { ctDirection: 'original', ctMark: { marks: [0xffffffff], negate: true }, owner: { pairs: [{ uid: 106, mark: 107 }], negate: true } },
          verdict: { kind: 'drop' },
          clause: 'not the owner',
        },
        { match: { ctState: ['established'] }, verdict: { kind: 'accept' }, clause: 'established' },
        { match: { skuid: 106, ctState: ['new'] }, verdict: { kind: 'accept' }, clause: 'tor' },
      ],
    },
  ],
};

describe('evaluator: connection marks', () => {
  const udp = (skuid: number | undefined, ctState: 'new' | 'established', ctMark?: number): Packet => ({
    family: 'ipv4',
    oif: 'eth0',
    daddr: '198.51.100.10',
    protocol: 'udp',
    dport: 53,
    ...(skuid !== undefined ? { skuid } : {}),
    ctState,
    ...(ctMark !== undefined ? { ctMark } : {}),
  });
  it('stamps the opener by its uid, and everyone else with the fallback mark', () => {
    expect(evaluateOutput(owned, udp(106, 'new')).decision).toMatchObject({ verdict: { kind: 'accept' }, ctMark: 107 });
    expect(evaluateOutput(owned, udp(1000, 'new')).decision).toMatchObject({ verdict: { kind: 'policy-drop' }, ctMark: 0xffffffff });
  });
  it('refuses another uid on the owner’s flow, and a NEW packet from it does not restamp', () => {
    expect(accepted(evaluateOutput(owned, udp(106, 'established', 107)).decision)).toBe(true);
    expect(evaluateOutput(owned, udp(1000, 'established', 107)).decision.rule?.clause).toBe('not the owner');
    expect(evaluateOutput(owned, udp(1000, 'new', 107)).decision).toMatchObject({ rule: { clause: 'not the owner' }, ctMark: 107 });
  });
  it('lets replies and packets without a socket uid through (a negated uid test does not match them)', () => {
    expect(accepted(evaluateOutput(owned, { ...udp(1000, 'established', 107), ctDirection: 'reply' }).decision)).toBe(true);
    expect(accepted(evaluateOutput(owned, udp(undefined, 'established', 107)).decision)).toBe(true);
    expect(matches({ skuids: { uids: [0], negate: true } }, udp(undefined, 'new'))).toBe(false);
    expect(matches({ skuids: { uids: [0], negate: true } }, udp(5, 'new'))).toBe(true);
  });
  it('ends a rule whose map has no entry for the uid: no stamp, no verdict', () => {
    const t: Table = {
      ...owned,
      chains: [
        {
          ...owned.chains[0]!,
          rules: [
            { match: {}, setCtMark: { byUid: [{ uid: 106, mark: 107 }] }, verdict: { kind: 'accept' }, clause: 'stamp and accept' },
            { match: {}, verdict: { kind: 'drop' }, clause: 'rest' },
          ],
        },
      ],
    };
    expect(evaluateOutput(t, udp(106, 'new')).decision).toMatchObject({ verdict: { kind: 'accept' }, ctMark: 107 });
    expect(evaluateOutput(t, udp(1000, 'new')).decision).toMatchObject({ verdict: { kind: 'drop' }, ctMark: 0 });
  });
});

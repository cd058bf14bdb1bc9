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

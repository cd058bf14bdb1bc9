import { describe, expect, it } from 'vitest';
import type { Chain, Rule, Table } from './ast.js';
import { kernelModules } from './modules.js';

const rule = (r: Partial<Rule>): Rule => ({ match: {}, verdict: { kind: 'accept' }, clause: 'test', ...r });
const chain = (rules: Rule[], type: 'filter' | 'nat' = 'filter'): Chain => ({
  name: 'c',
  base: { type, hook: 'output', priority: type === 'nat' ? -100 : 'filter', policy: 'drop' },
  rules,
});
const table = (...chains: Chain[]): Table => ({ family: 'inet', name: 't', chains });

describe('kernelModules', () => {
  it('a table of plain matches needs nf_tables only (addresses, ports, skuid, counters are in it)', () => {
    expect(kernelModules([table(chain([rule({ match: { daddr: { addrs: ['192.0.2.1'] }, protocol: 'tcp', dport: { ports: [9050] }, skuid: 0 } })]))])).toEqual([
      'nf_tables',
    ]);
  });
  it.each([
    ['ct state', rule({ match: { ctState: ['established'] } }), ['nf_tables', 'nft_ct']],
    ['ct status', rule({ match: { ctStatus: ['dnat'] } }), ['nf_tables', 'nft_ct']],
    ['ct direction', rule({ match: { ctDirection: 'reply' } }), ['nf_tables', 'nft_ct']],
    ['ct mark', rule({ match: { ctMark: { marks: [1] } } }), ['nf_tables', 'nft_ct']],
    ['the owner pair', rule({ match: { owner: { pairs: [{ uid: 1000, mark: 2 }] } } }), ['nf_tables', 'nft_ct']],
    ['ct mark set', rule({ setCtMark: { mark: 3 }, verdict: { kind: 'continue' } }), ['nf_tables', 'nft_ct']],
    ['log', rule({ log: true, verdict: { kind: 'drop' } }), ['nf_log_syslog', 'nf_tables', 'nft_log']],
    ['reject', rule({ verdict: { kind: 'reject' } }), ['nf_tables', 'nft_reject_inet']],
  ])('%s', (_, r, mods) => {
    expect(kernelModules([table(chain([r]))])).toEqual(mods);
  });
  it('nat chains, dnat and masquerade', () => {
    const nat = chain([rule({ verdict: { kind: 'dnat', address: '127.0.0.1', port: 9040 } }), rule({ verdict: { kind: 'masquerade' } })], 'nat');
    expect(kernelModules([table(nat)])).toEqual(['nf_tables', 'nft_chain_nat', 'nft_masq', 'nft_nat']);
  });
  it('the union over tables, sorted, each once', () => {
    const a = table(chain([rule({ verdict: { kind: 'reject' } })]));
    const b = table(chain([rule({ match: { ctState: ['new'] } }), rule({ verdict: { kind: 'reject' } })]));
    expect(kernelModules([a, b])).toEqual(['nf_tables', 'nft_ct', 'nft_reject_inet']);
    expect(kernelModules([])).toEqual([]);
  });
});

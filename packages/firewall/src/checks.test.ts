// Every structural check must be able to fail: each case plants the defect the
// check looks for into the compiled AST and expects that check to report it.
import { describe, expect, it } from 'vitest';
import { checkRuleset, lockdownCheck, lockdownRuleset, ruleset, structuralChecks } from './index.js';
import { insertBefore, mapRules, withChain, withChainPolicy, type Rule, type Table } from '@leakless/nft';
import { policyOf } from './testing/policies.js';

const policy = policyOf();
const base = ruleset(policy);
const byClause = (s: string) => (r: Rule) => r.clause.startsWith(s);
const accept = { kind: 'accept' } as const;
const finalReject = (r: Rule) => r.clause.startsWith('default:');

const defects: Record<string, (t: Table) => Table> = {
  'firewall.policies-drop': (t) => withChainPolicy(t, 'output', 'accept'),
  'firewall.ipv6-refused': (t) =>
    mapRules(
      t,
      (r, c) => c.name === 'output' && r.match.nfproto === 'ipv6',
      (r) => ({ ...r, verdict: accept }),
    ),
  'firewall.invalid-dropped': (t) =>
    mapRules(
      t,
      (r, c) => c.name === 'input' && r.match.ctState?.[0] === 'invalid',
      () => [],
    ),
  'firewall.related-icmp-lo-only': (t) =>
    mapRules(
      t,
      (r, c) => c.name === 'output' && r.clause.includes('established only'),
      (r) => ({ ...r, match: { ctState: ['established', 'related'] } }),
    ),
  'firewall.egress-principals': (t) =>
    insertBefore(t, 'output', finalReject, [{ match: { oif: { name: 'lo', negate: true }, skuid: 1000 }, verdict: accept, clause: 'users[1] planted' }]),
  'firewall.lan-exception': (t) =>
    mapRules(
      t,
      (r) => r.clause === 'lan.blockedServices[1]',
      () => [],
    ),
  'firewall.internal-not-lan': (t) => mapRules(t, byClause('netns.internalRange'), () => []),
  'firewall.nat-output': (t) =>
    withChain(t, 'nat_output', (rs) => [
      ...rs,
      {
        match: { daddr: { addrs: ['127.0.0.1'] }, protocol: 'tcp', dport: { ports: [80] } },
        verdict: { kind: 'dnat', address: '127.0.0.1', port: 8080 },
        clause: 'tor.planted',
      },
    ]),
  'firewall.nat-postrouting': (t) =>
    withChain(t, 'nat_postrouting', (rs) => [
      ...rs,
      { match: { saddr: { addrs: ['10.200.1.0/30'] } }, verdict: { kind: 'masquerade' }, clause: 'netns.planted' },
    ]),
  'firewall.listener-grants': (t) =>
    mapRules(
      t,
      (r) => r.clause === 'tor.transPort.clients',
      (r) => ({ ...r, match: { ...r.match, skuid: undefined } }),
    ),
  'firewall.refusals-logged': (t) =>
    mapRules(
      t,
      (r) => r.clause === 'lan.blockedServices[2]',
      (r) => ({ ...r, log: false }),
    ),
  'firewall.uids-known': (t) =>
    mapRules(
      t,
      (r) => r.clause === 'tor.controlPort.clients',
      (r) => ({ ...r, match: { ...r.match, skuid: 4242 } }),
    ),
  'firewall.clauses': (t) =>
    mapRules(
      t,
      (r) => r.clause === 'lan.ipv4Ranges',
      (r) => ({ ...r, clause: 'allow lan' }),
    ),
  'firewall.loopback-only-127': (t) => mapRules(t, byClause('loopback.mode'), (r) => ({ ...r, match: { ...r.match, daddr: { addrs: ['127.0.0.0/8'] } } })),
  // Tails' order: the established accept answers before anyone asks whose flow it is.
  'firewall.flow-ownership': (t) =>
    mapRules(
      t,
      (r) => r.clause.startsWith('docs/threat-model.md#flow-ownership') && r.match.ctDirection === 'original',
      () => [],
    ),
  'firewall.tor-answers': (t) => mapRules(t, byClause('docs/threat-model.md#flow-ownership: only tor answers'), () => []),
};

// More ways to get ownership wrong, each of which the check must see.
const ownershipDefects: Record<string, (t: Table) => Table> = {
  'a NEW packet restamps a flow still waiting for its reply': (t) =>
    mapRules(
      t,
      (r) => r.setCtMark !== undefined && r.verdict.kind === 'continue',
      (r) => ({ ...r, match: { ctState: ['new'] } }),
    ),
  'the unnamed uids’ flows take policy users’ packets': (t) => mapRules(t, byClause("docs/threat-model.md#flow-ownership: an unnamed uid's flow"), () => []),
  'the clearnet namespace’s flows take any mark': (t) =>
    mapRules(
      t,
      (r, c) => c.name === 'forward' && r.clause.endsWith('its own flows'),
      (r) => ({ ...r, match: { ...r.match, ctMark: undefined } }),
    ),
  'the tor-only namespace’s flows take any mark': (t) =>
    mapRules(
      t,
      (r, c) => c.name === 'input' && r.clause.endsWith('its own flows'),
      (r) => ({ ...r, match: { ...r.match, ctMark: undefined } }),
    ),
};

describe('structural checks can fail', () => {
  it('has a planted defect for every check', () => {
    expect(Object.keys(defects).sort()).toEqual(structuralChecks.map((c) => c.id).sort());
  });

  it.each(Object.entries(defects))('%s reports its planted defect', (id, plant) => {
    const results = checkRuleset(plant(base), policy);
    const r = results.find((x) => x.id === id)!;
    expect(r.ok, r.detail).toBe(false);
    expect(r.detail).not.toMatch(/^could not tell/);
  });

  it.each(Object.entries(ownershipDefects))('firewall.flow-ownership reports: %s', (_, plant) => {
    const r = checkRuleset(plant(base), policy).find((x) => x.id === 'firewall.flow-ownership')!;
    expect(r.ok, r.detail).toBe(false);
  });

  it('the lockdown check reports a lockdown that lets something out', () => {
    const weak = mapRules(
      lockdownRuleset(),
      (r, c) => c.name === 'output' && r.verdict.kind === 'drop',
      (r) => ({ ...r, verdict: accept }),
    );
    expect(lockdownCheck.check(weak).ok).toBe(false);
  });

  it('AST edits that select nothing throw instead of silently planting nothing', () => {
    expect(() =>
      mapRules(
        base,
        () => false,
        (r) => r,
      ),
    ).toThrow(/no rule matched/);
  });
});

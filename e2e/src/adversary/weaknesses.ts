// Planted weaknesses more than one attack plays against: each is the emitted
// ruleset with one AST edit, the way a careless change to the compiler would
// make it (docs/threat-model.md#hostile-local-programs-tests).
import { mapRules, type Rule } from '@leakless/nft';
import { rulesetWeakness } from './framework.js';

const ownership = (r: Rule) => r.clause.startsWith('docs/threat-model.md#flow-ownership');

/** Tails' order, and leakless' before flow ownership: established accepted first, whoever sends, and anyone may answer on a Tor port. */
export const tailsRuleOrder = rulesetWeakness(
  'tails-rule-order',
  'the ruleset without flow ownership: ESTABLISHED accepted first whoever sends (Tails’ OUTPUT chain), anyone may answer on a Tor port',
  (t) => mapRules(t, ownership, () => []),
);

/** IPv6 accepted instead of refused by the first rule of every chain. */
export const ipv6Accepted = rulesetWeakness('ipv6-accepted', 'the first rule of every chain accepts IPv6 instead of refusing it', (t) =>
  mapRules(
    t,
    (r) => r.match.nfproto === 'ipv6',
    (r) => ({ ...r, verdict: { kind: 'accept' }, log: false }),
  ),
);

/** The LAN exception widened to extra destinations (broadcast, multicast), as a careless range edit would. */
export function lanWidened(id: string, what: string, extra: readonly string[]) {
  return rulesetWeakness(id, what, (t) =>
    mapRules(
      t,
      (r) => r.clause === 'lan.ipv4Ranges',
      (r) => ({ ...r, match: { ...r.match, daddr: { addrs: [...(r.match.daddr?.addrs ?? []), ...extra] } } }),
    ),
  );
}

/** One lan.blockedServices entry (by port) no longer refused. */
export function lanServiceUnblocked(id: string, what: string, port: number) {
  return rulesetWeakness(id, what, (t, policy) =>
    mapRules(
      t,
      (r) => policy.lanBlockedServices.some((s, i) => s.port === port && r.clause === `lan.blockedServices[${i}]`),
      () => [],
    ),
  );
}

// Anti-tests: the policy ruleset with one planted leak each (an AST edit, the
// same edit a careless change to the compiler would make). The lab must report
// each as a violation in the cell where the leak is; a lab that cannot fail is
// worthless. Also the control ruleset: no filtering at all, the same
// address translations, to prove each path works.

import { chainOf, insertBefore, mapRules, type Rule, type Table, withChain, withChainPolicy } from '@leakless/nft';
import type { Policy } from '@leakless/policy';
import type { DestClass, Probe } from './matrix.js';

export interface AntiTest {
  readonly id: string;
  readonly leak: string;
  readonly plant: (t: Table, policy: Policy) => Table;
  /** The cell that must show the planted leak as a violation. */
  readonly cell: { readonly principal: (p: Probe['principal'], policy: Policy) => boolean; readonly class: DestClass; readonly label?: RegExp };
}

const accept = { kind: 'accept' } as const;
const isFinal = (r: Rule) => r.clause.startsWith('default:');
const uidOf = (name: (policy: Policy) => number) => (p: Probe['principal'], policy: Policy) => p.kind === 'uid' && p.uid === name(policy);

/** The policy's LAN block for one port, removed. */
const unblockLanPort = (port: number) => (t: Table, policy: Policy) =>
  mapRules(
    t,
    (r) => policy.lanBlockedServices.some((s, i) => s.port === port && r.clause === `lan.blockedServices[${i}]`),
    () => [],
  );

export const antiTests: readonly AntiTest[] = [
  {
    id: 'desktop-user-out',
    leak: 'the desktop user may send anything off loopback',
    plant: (t, policy) =>
      insertBefore(t, 'output', isFinal, [
        { match: { oif: { name: 'lo', negate: true }, skuid: policy.desktopUser.uid }, verdict: accept, clause: 'users[1] ANTI-TEST' },
      ]),
    cell: { principal: uidOf((p) => p.desktopUser.uid), class: 'internet-v4', label: /tcp\/80/ },
  },
  {
    id: 'ipv6-accepted',
    leak: 'IPv6 is accepted instead of refused',
    plant: (t) =>
      mapRules(
        t,
        (r) => r.match.nfproto === 'ipv6',
        (r) => ({ ...r, verdict: accept, log: false }),
      ),
    cell: { principal: uidOf((p) => p.desktopUser.uid), class: 'internet-v6', label: /tcp/ },
  },
  {
    id: 'lan-dns-allowed',
    leak: 'DNS to the LAN is not refused',
    plant: unblockLanPort(53),
    cell: { principal: uidOf((p) => p.desktopUser.uid), class: 'lan-dns', label: /udp\/53/ },
  },
  {
    id: 'netbios-allowed',
    leak: 'NetBIOS name service to the LAN is not refused',
    plant: unblockLanPort(137),
    cell: { principal: uidOf((p) => p.desktopUser.uid), class: 'lan-netbios' },
  },
  {
    id: 'clearnet-user-on-loopback',
    leak: 'the clearnet user may use loopback (and so the Tor ports)',
    plant: (t, policy) =>
      insertBefore(t, 'output', (r) => r.clause.endsWith('.clients'), [
        { match: { oif: { name: 'lo' }, skuid: policy.clearnetUsers[0]!.uid }, verdict: accept, clause: 'users[3] ANTI-TEST' },
      ]),
    cell: { principal: uidOf((p) => p.clearnetUsers[0]!.uid), class: 'loopback-tor', label: /SocksPort/ },
  },
  {
    id: 'automap-open-to-all',
    leak: 'the TransPort (automap) is open to every user',
    plant: (t) =>
      mapRules(
        t,
        (r) => r.clause === 'tor.transPort.clients',
        (r) => ({ ...r, match: { ...r.match, skuid: undefined } }),
      ),
    cell: {
      principal: (p, policy) => p.kind === 'uid' && !policy.transPort.clients.some((c) => c.uid === p.uid) && p.uid !== policy.torUser.uid,
      class: 'automap',
    },
  },
  {
    id: 'related-everywhere',
    leak: 'RELATED is accepted everywhere, not only ICMP on lo',
    plant: (t) =>
      mapRules(
        t,
        (r, c) => c.name !== 'forward' && r.match.ctState?.length === 1 && r.match.ctState[0] === 'established' && Object.keys(r.match).length === 1,
        (r) => ({ ...r, match: { ctState: ['established', 'related'] } }),
      ),
    cell: { principal: uidOf((p) => p.torUser.uid), class: 'related-icmp' },
  },
  {
    id: 'invalid-accepted',
    leak: 'ct state invalid is accepted instead of dropped',
    plant: (t) =>
      mapRules(
        t,
        (r, c) => c.name === 'output' && r.match.ctState?.[0] === 'invalid',
        (r) => ({ ...r, verdict: accept }),
      ),
    cell: { principal: (p) => p.kind === 'uid' && p.role === 'admin', class: 'invalid-state', label: /Internet/ },
  },
  {
    id: 'internal-range-as-lan',
    leak: 'the internal netns range is treated as LAN',
    plant: (t) =>
      mapRules(
        t,
        (r) => r.clause === 'netns.internalRange is not LAN',
        () => [],
      ),
    cell: { principal: uidOf((p) => p.desktopUser.uid), class: 'internal-range', label: /in tbb/ },
  },
  {
    id: 'controlport-open-to-desktop',
    leak: 'the desktop user may reach the ControlPort',
    plant: (t, policy) =>
      mapRules(
        t,
        (r) => r.clause === `loopback.desktopUser is not a client of ${policy.controlPort.clause}`,
        () => [],
      ),
    cell: { principal: uidOf((p) => p.desktopUser.uid), class: 'loopback-tor', label: /controlPort/ },
  },
  {
    id: 'tor-any-udp',
    leak: 'the tor daemon may send any UDP, not only DNS',
    plant: (t) =>
      mapRules(
        t,
        (r) => r.clause.endsWith('(tor-daemon): DNS out'),
        (r) => ({ ...r, match: { ...r.match, dport: undefined } }),
      ),
    cell: { principal: uidOf((p) => p.torUser.uid), class: 'internet-v4', label: /udp\/9999/ },
  },
  {
    id: 'tor-only-namespace-forwarded',
    leak: 'a tor-only namespace is forwarded to the outside',
    plant: (t, policy) =>
      insertBefore(
        t,
        'forward',
        isFinal,
        policy.namespaces
          .filter((n) => n.kind === 'tor-only')
          .map((n) => ({ match: { iifname: { name: n.hostVeth } }, verdict: accept, clause: `${n.clause} ANTI-TEST` })),
      ),
    cell: { principal: (p) => p.kind === 'netns' && p.netns.kind === 'tor-only', class: 'internet-v4', label: /tcp\/80/ },
  },
  {
    id: 'clearnet-namespace-reaches-host',
    leak: 'the clearnet namespace reaches host services',
    plant: (t) =>
      mapRules(
        t,
        (r, c) => c.name === 'input' && r.clause.endsWith('clearnet: no host services'),
        (r) => ({ ...r, verdict: accept }),
      ),
    cell: { principal: (p) => p.kind === 'netns' && p.netns.kind === 'clearnet', class: 'host-address' },
  },
];

/** No filtering, same translations: the control run that proves each path works. */
export function controlRuleset(t: Table): Table {
  let out = t;
  for (const c of t.chains.filter((x) => x.base.type === 'filter'))
    out = withChainPolicy(
      withChain(out, c.name, () => []),
      c.name,
      'accept',
    );
  chainOf(out, 'output');
  return out;
}

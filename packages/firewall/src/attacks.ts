// Runtime checks that can see a hostile program's way around the firewall
// (docs/threat-model.md#hostile-local-programs-tests), beside the check that
// our table is loaded:
//   - the inventory of every nftables table, chain and hook: our table equal to
//     the emitted one proves nothing if another table (or a netdev ingress
//     chain) with a hook of its own sits beside it;
//   - active negative probes as the desktop user and as a uid the policy does
//     not name (the Internet, a LAN resolver, another user's flow), each with a
//     positive control from a principal the ruleset lets through to the same
//     destination in the same run, so a dead network cannot pass for a refusal.
// The controls are chosen by evaluating the ruleset, not assumed: with pinned
// bridges tor may reach no arbitrary host, and the clearnet user stands in.
import { nthAddress, parseCidr4, type Policy, type RuntimeAssertion, type User } from '@leakless/policy';
import { accepted, evaluateOutput, type Packet, type Table } from '@leakless/nft';
import { unnamedUid } from './grants.js';

/** nft's named priorities for the inet family, as `nft -j` prints them (numbers). */
const PRIORITY: Readonly<Record<string, number>> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };

/** The lines the nft-inventory check compares (the contract says the form): our one table and each of its base chains. */
export function inventoryOf(t: Table): string[] {
  return [
    `table ${t.family} ${t.name}`,
    ...t.chains.map((c) => {
      const prio = typeof c.base.priority === 'number' ? c.base.priority : PRIORITY[c.base.priority];
      if (prio === undefined) throw new Error(`no number for priority ${c.base.priority}`);
      return `chain ${t.family} ${t.name} ${c.name}: ${c.base.type} hook ${c.base.hook} priority ${prio} policy ${c.base.policy}`;
    }),
  ];
}

/** Where the probes go: names the self-test is given addresses for at run time (leakless-selftest --destination). */
export const PROBE_DESTINATIONS = {
  internet: 'an Internet host with a TCP server on the port (80 unless given)',
  'lan-resolver': 'a resolver on the LAN that answers UDP on port 53',
  'internet-resolver': 'a resolver on the Internet that answers UDP on port 53',
} as const;

/** Addresses for evaluating who may reach a destination class (documentation and policy ranges only). */
const INTERNET_HOST = '198.51.100.10';

/** The first candidate the ruleset lets send `p` (a new flow), or undefined. */
function allowedSender(t: Table, candidates: readonly User[], p: Omit<Packet, 'skuid' | 'ctState'>): User | undefined {
  return candidates.find((u) => accepted(evaluateOutput(t, { ...p, skuid: u.uid, ctState: 'new' }).decision));
}

export function attackAssertions(policy: Policy, t: Table): RuntimeAssertion[] {
  const inventory: RuntimeAssertion = {
    id: 'firewall.nft-inventory',
    statement: `the only nftables tables, chains and hooks are the emitted table ${t.family} ${t.name} and its ${t.chains.length} base chains (no foreign table with a hook, no netdev ingress chain)`,
    check: { kind: 'nft-inventory', expected: inventoryOf(t) },
    scope: 'netns',
  };
  const egress = [policy.torUser, ...policy.clearnetUsers];
  const tcpPort = policy.torReachablePorts && !policy.torReachablePorts.includes(80) ? policy.torReachablePorts[0]! : 80;
  const lanHost = nthAddress(parseCidr4(policy.lanRanges[0]!), 1);
  const out = { family: 'ipv4' as const, oif: 'eth0' };
  const classes = [
    {
      key: 'internet',
      to: 'internet' as const,
      protocol: 'tcp' as const,
      port: tcpPort,
      control: allowedSender(t, egress, { ...out, daddr: INTERNET_HOST, protocol: 'tcp', dport: tcpPort, tcpFlags: 'syn' }),
      what: 'a TCP connection to the Internet',
    },
    {
      key: 'lan-dns',
      to: 'lan-resolver' as const,
      protocol: 'udp' as const,
      port: 53,
      control: allowedSender(t, egress, { ...out, daddr: lanHost, protocol: 'udp', dport: 53 }),
      what: 'a DNS query to a LAN resolver (lan.blockedServices)',
    },
    {
      key: 'flow-reuse',
      to: 'internet-resolver' as const,
      protocol: 'udp' as const,
      port: 53,
      ride: true,
      // the victim: whose DNS flow a hostile program would ride (the clearnet user's pre-Tor lookups first)
      control: allowedSender(t, [...policy.clearnetUsers, policy.torUser], { ...out, daddr: INTERNET_HOST, protocol: 'udp', dport: 53 }),
      what: 'a datagram on another user’s DNS flow, from its source port (docs/threat-model.md#flow-ownership)',
    },
  ];
  const unnamed = unnamedUid(policy);
  const attackers = [
    { key: 'desktop', uid: policy.desktopUser.uid, gid: policy.desktopUser.gid, who: `${policy.desktopUser.name} (the desktop user)` },
    { key: 'unnamed', uid: unnamed, gid: unnamed, who: `uid ${unnamed} (not in the policy)` },
  ];
  const probes = classes.flatMap((c) =>
    // without a principal the ruleset lets through there is no positive control, and no probe that could tell
    c.control === undefined
      ? []
      : attackers.map(
          (a): RuntimeAssertion => ({
            id: `firewall.refused.${c.key}.${a.key}`,
            statement: `${a.who} is refused ${c.what} by this host, where ${c.control!.name} gets through in the same run`,
            check: {
              kind: 'refused-probe',
              to: c.to,
              protocol: c.protocol,
              port: c.port,
              control: { uid: c.control!.uid, gid: c.control!.gid },
              attacker: { uid: a.uid, gid: a.gid },
              ...(c.ride ? { ride: true } : {}),
            },
            scope: 'network',
          }),
        ),
  );
  return [inventory, ...probes];
}

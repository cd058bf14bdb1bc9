// The self-test's attack checks the firewall emits, asked of the packet
// evaluator: each active probe's control really gets through the ruleset and
// its attacker really does not, so a probe that passes in the booted image
// says something; the flow-reuse probe sees Tails' rule order; the inventory
// is the emitted table's. The probes themselves are proven against real
// packets in the lab (e2e/src/lab/selftest-checks.test.ts).
import { accepted, evaluateOutput, mapRules, type Packet, type Table } from '@leakless/nft';
import { nthAddress, parseCidr4, type Policy, type RuntimeAssertion } from '@leakless/policy';
import { evaluateRuntime } from '@leakless/selftest';
import { needTool, skipUnless } from '@leakless/testing';
import { describe, expect, it } from 'vitest';
import { attackAssertions, flowOwners, inventoryOf, rulesetFile, ruleset, unnamedUid } from './index.js';
import { policyOf } from './testing/policies.js';
import { run } from './testing/tools.js';

type Probe = Extract<RuntimeAssertion['check'], { kind: 'refused-probe' }>;

const INTERNET = '198.51.100.10';
const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const CERT = 'AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tng5+71/AMKERgfJi00O0JJUFdeZQ';

const probesOf = (p: Policy, t: Table = ruleset(p)) =>
  attackAssertions(p, t).flatMap((a) => (a.check.kind === 'refused-probe' ? [{ id: a.id, check: a.check as Probe }] : []));

function packetFor(p: Policy, c: Probe, uid: number, extra: Partial<Packet> = {}): Packet {
  const daddr = c.to === 'lan-resolver' ? nthAddress(parseCidr4(p.lanRanges[0]!), 1) : INTERNET;
  return {
    family: 'ipv4',
    oif: 'eth0',
    daddr,
    protocol: c.protocol,
    dport: c.port,
    skuid: uid,
    ctState: 'new',
    ...(c.protocol === 'tcp' ? { tcpFlags: 'syn' as const } : {}),
    ...extra,
  };
}

const passes = (t: Table, pkt: Packet) => accepted(evaluateOutput(t, pkt).decision);

/** Tails' order: the ownership rules gone, established accepted whoever sends. */
const tailsOrder = (t: Table) =>
  mapRules(
    t,
    (r) => r.clause.startsWith('docs/threat-model.md#flow-ownership'),
    () => [],
  );

describe('the firewall’s attack checks for the self-test', () => {
  const policy = policyOf();
  const t = ruleset(policy);

  it('probe the Internet, a LAN resolver and another user’s DNS flow, as the desktop user and an unnamed uid', () => {
    const probes = probesOf(policy);
    expect(probes.map((p) => p.id)).toEqual([
      'firewall.refused.internet.desktop',
      'firewall.refused.internet.unnamed',
      'firewall.refused.lan-dns.desktop',
      'firewall.refused.lan-dns.unnamed',
      'firewall.refused.flow-reuse.desktop',
      'firewall.refused.flow-reuse.unnamed',
    ]);
    expect(new Set(probes.map((p) => p.check.attacker.uid))).toEqual(new Set([policy.desktopUser.uid, unnamedUid(policy)]));
    expect(probes.filter((p) => p.check.ride).map((p) => p.id)).toEqual(['firewall.refused.flow-reuse.desktop', 'firewall.refused.flow-reuse.unnamed']);
    // the clearnet user's pre-Tor lookups are the flow a hostile program would ride first
    expect(probes.find((p) => p.check.ride)!.check.control.uid).toBe(policy.clearnetUsers[0]!.uid);
  });

  it('each control gets through the ruleset and each attacker is refused, also on the control’s own flow', () => {
    const owners = new Map(flowOwners(policy).users.map((o) => [o.uid, o.mark]));
    for (const { id, check } of probesOf(policy)) {
      expect(passes(t, packetFor(policy, check, check.control.uid)), `${id}: control`).toBe(true);
      expect(passes(t, packetFor(policy, check, check.attacker.uid)), `${id}: attacker`).toBe(false);
      if (!check.ride) continue;
      const onFlow: Partial<Packet> = { ctState: 'established', ctDirection: 'original', ctMark: owners.get(check.control.uid)!, sport: 40000 };
      expect(passes(t, packetFor(policy, check, check.attacker.uid, onFlow)), `${id}: riding`).toBe(false);
      // the same probe sees Tails' rule order: there the ride leaves
      expect(passes(tailsOrder(t), packetFor(policy, check, check.attacker.uid, onFlow)), `${id}: riding, Tails' order`).toBe(true);
    }
  });

  it('choose controls by the ruleset: with pinned bridges tor reaches no arbitrary host, so the clearnet user stands in', () => {
    const pinned = policyOf((d) => {
      d.tor.bridges = { transport: 'obfs4', lines: [`obfs4 198.51.100.40:443 ${FP} cert=${CERT} iat-mode=0`] };
      d.loopback.mode = 'allowlist';
    });
    const probes = probesOf(pinned);
    expect(probes.find((p) => p.id === 'firewall.refused.internet.desktop')!.check.control.uid).toBe(pinned.clearnetUsers[0]!.uid);
    for (const { id, check } of probes) expect(passes(ruleset(pinned), packetFor(pinned, check, check.control.uid)), `${id}: control`).toBe(true);
  });

  it('leave a probe out when no principal may reach its destination (no control, no probe that could tell)', () => {
    // tor and the clearnet user lose their way out: nobody may reach the Internet or a LAN resolver any more
    const closed = mapRules(
      t,
      (r) => / \((tor-daemon|clearnet)\): (new TCP|TCP|DNS) out$/.test(r.clause),
      () => [],
    );
    expect(probesOf(policy, closed)).toEqual([]);
    expect(attackAssertions(policy, closed).map((a) => a.id)).toEqual(['firewall.nft-inventory']);
  });

  it('inventory: the emitted table and each base chain, priorities as nft -j prints them (numbers)', () => {
    const inv = attackAssertions(policy, t).find((a) => a.id === 'firewall.nft-inventory')!;
    expect(inv.check).toEqual({ kind: 'nft-inventory', expected: inventoryOf(t) });
    expect(inventoryOf(t)[0]).toBe('table inet leakless');
    expect(inventoryOf(t).slice(1)).toHaveLength(t.chains.length);
    expect(inventoryOf(t)).toContain('chain inet leakless output: filter hook output priority 0 policy drop');
    for (const line of inventoryOf(t).slice(1)) expect(line).toMatch(/^chain inet leakless \S+: (filter|nat) hook \S+ priority -?\d+ policy (accept|drop)$/);
  });
});

const noNft = skipUnless(
  'the nft inventory against nft’s own listing',
  needTool('unshare', ['-rn', 'nft', '--version'], 'nft in a throwaway user+network namespace; tools/leakless/install-deps.sh test installs nftables'),
);

describe.skipIf(noNft)('the nft inventory against nft’s own listing', () => {
  const policy = policyOf();
  const inventory = attackAssertions(policy, ruleset(policy)).filter((a) => a.id === 'firewall.nft-inventory');
  /** The self-test's check where the emitted ruleset (and what a test plants beside it) is loaded: a throwaway user+network namespace. */
  const evaluate = (planted: string) =>
    evaluateRuntime(inventory, async (cmd, args) => {
      const script = 'printf "%s" "$1" | nft -f /dev/stdin && { [ -z "$2" ] || printf "%s" "$2" | nft -f /dev/stdin; } && shift 2 && exec "$@"';
      return run('unshare', ['-rn', 'sh', '-c', script, 'sh', rulesetFile(policy), planted, cmd, ...args]);
    });

  it('holds with the emitted table alone', async () => {
    expect(await evaluate('')).toMatchObject([{ id: 'firewall.nft-inventory', ok: true }]);
  });

  it.each([
    ['a netdev ingress chain', 'table netdev lk_planted {\n\tchain in {\n\t\ttype filter hook ingress device "lo" priority -500; policy accept;\n\t}\n}\n'],
    [
      'another table with an output hook before ours',
      'table ip lk_planted {\n\tchain out {\n\t\ttype filter hook output priority -10; policy accept;\n\t}\n}\n',
    ],
    ['a chain of ours with another priority', rulesetFile(policy).replace('type filter hook output priority filter;', 'type filter hook output priority 10;')],
  ])('sees %s', async (_, planted) => {
    const [r] = await evaluate(planted);
    expect(r!.ok).toBe(false);
    // seen in the listing, not in a failed load's message
    expect(r!.detail).toMatch(/^nftables tables and chains: unexpected \[[^\]]*(lk_planted|priority 10 )/);
  });
});

// The lab's closed network (SPEC §5):
//
//   [lk-<ns>-XXXX] veth0 ── veth-<ns> [lk-sut-XXXX] uplink0 ── lan-sut [lk-lan-XXXX] lan-inet ── inet0 [lk-inet-XXXX]
//    policy namespaces                   system under test          LAN router + LAN host        Internet hosts
//
// Namespaces are joined only to each other: nothing is bridged, routed or
// NATed to this machine's uplink. The LAN is RFC1918 inside a policy LAN
// range, the Internet uses documentation ranges only (198.51.100.0/24,
// 203.0.113.0/24, 192.0.2.0/24, 2001:db8::/32).
import { cidrWithin, parseCidr4, type Policy } from '@leakless/policy';
import { addRoute, addVeth, createNamespace, deleteNamespace, must, sysctl, uniqueSuffix } from './netns.js';

export interface LabAddresses {
  readonly lanSubnet: string;
  readonly lanRouter: string;
  readonly sutLan: string;
  readonly lanBroadcast: string;
  readonly linkLocal: string;
  readonly multicast: string;
  readonly transitLan: string;
  readonly transitInet: string;
  /** Internet hosts (documentation ranges). */
  readonly internet4: readonly [string, string];
  readonly lanRouter6: string;
  readonly sutLan6: string;
  /** A LAN host on a unique-local (IPv6 "LAN") address. */
  readonly lanUla: string;
  readonly sutUla: string;
  readonly internet6: string;
}

export interface Lab {
  readonly suffix: string;
  readonly sut: string;
  readonly lan: string;
  readonly inet: string;
  /** The sut's interface towards the LAN (where the capture runs). */
  readonly uplink: string;
  /** policy namespace name → lab namespace name. */
  readonly guests: ReadonlyMap<string, string>;
  readonly addresses: LabAddresses;
  /** Every namespace this lab created, for teardown. */
  readonly created: readonly string[];
}

const LAN_CANDIDATES = ['192.168.77.0/24', '10.77.0.0/24', '172.16.77.0/24'];

/** A /24 for the lab LAN inside one of the policy's LAN ranges and outside its internal range. */
export function pickLanSubnet(policy: Policy): string {
  const internal = parseCidr4(policy.internalRange);
  const ok = LAN_CANDIDATES.find((c) => {
    const x = parseCidr4(c);
    return policy.lanRanges.some((r) => cidrWithin(x, parseCidr4(r))) && !cidrWithin(x, internal) && !cidrWithin(internal, x);
  });
  if (!ok) throw new Error(`lab: none of ${LAN_CANDIDATES.join(', ')} lies inside lan.ipv4Ranges (${policy.lanRanges.join(', ')}) outside ${policy.internalRange}`);
  return ok;
}

export function labAddresses(policy: Policy): LabAddresses {
  const lanSubnet = pickLanSubnet(policy);
  const net = lanSubnet.split('.').slice(0, 3).join('.');
  return {
    lanSubnet,
    lanRouter: `${net}.1`,
    sutLan: `${net}.2`,
    lanBroadcast: `${net}.255`,
    linkLocal: '169.254.77.1',
    multicast: '239.255.77.77',
    transitLan: '192.0.2.1',
    transitInet: '192.0.2.2',
    internet4: ['198.51.100.10', '203.0.113.10'],
    lanRouter6: '2001:db8:77::1',
    sutLan6: '2001:db8:77::2',
    lanUla: 'fd77::1',
    sutUla: 'fd77::2',
    internet6: '2001:db8:100::10',
  };
}

/**
 * Build the lab. On any error everything already made is torn down before the
 * error propagates; otherwise the caller owns teardownLab (call it in finally).
 */
export async function buildLab(policy: Policy, opts: { suffix?: string } = {}): Promise<Lab> {
  const suffix = opts.suffix ?? uniqueSuffix();
  const a = labAddresses(policy);
  const sut = `lk-sut-${suffix}`;
  const lan = `lk-lan-${suffix}`;
  const inet = `lk-inet-${suffix}`;
  const guests = new Map(policy.namespaces.map((n) => [n.name, `lk-${n.name}-${suffix}`]));
  const created: string[] = [];
  const lab: Lab = { suffix, sut, lan, inet, uplink: 'uplink0', guests, addresses: a, created };
  try {
    for (const ns of [sut, lan, inet, ...guests.values()]) {
      await createNamespace(ns);
      created.push(ns);
    }
    const lanPrefix = a.lanSubnet.split('/')[1];
    await addVeth(
      { ns: sut, ifname: 'uplink0', addrs: [`${a.sutLan}/${lanPrefix}`, `${a.sutLan6}/64`, `${a.sutUla}/64`] },
      { ns: lan, ifname: 'lan-sut', addrs: [`${a.lanRouter}/${lanPrefix}`, `${a.linkLocal}/16`, `${a.lanRouter6}/64`, `${a.lanUla}/64`] },
    );
    await addVeth({ ns: lan, ifname: 'lan-inet', addrs: [`${a.transitLan}/24`, '2001:db8:2::1/64'] }, { ns: inet, ifname: 'inet0', addrs: [`${a.transitInet}/24`, '2001:db8:2::2/64'] });
    for (const h of a.internet4) await addAddr(inet, 'inet0', `${h}/32`);
    await addAddr(inet, 'inet0', `${a.internet6}/128`);

    // The sut: a default route like a real machine behind a LAN router, a
    // link-local route (the firewall, not routing, must stop 169.254/16), and
    // IPv6 on: the lab proves the ip6 drop, not the sysctl (SPEC §2: never sysctl alone).
    await addRoute(sut, ['default', 'via', a.lanRouter]);
    await addRoute(sut, ['169.254.0.0/16', 'dev', 'uplink0', 'scope', 'link']);
    await addRoute(sut, ['default', 'via', a.lanRouter6]);
    await sysctl(sut, {
      'net.ipv4.ip_forward': '1', // as the netns module sets it for the clearnet namespace; isolation rests on the forward chain
      'net.ipv4.ping_group_range': '0 2147483647', // unprivileged ICMP probes
      'net.ipv6.conf.all.disable_ipv6': '0',
      'net.ipv6.conf.uplink0.accept_ra': '0',
    });
    await sysctl(lan, { 'net.ipv4.ip_forward': '1', 'net.ipv6.conf.all.forwarding': '1', 'net.ipv4.ping_group_range': '0 2147483647' });
    await sysctl(inet, { 'net.ipv4.ping_group_range': '0 2147483647' });
    await addRoute(lan, ['198.51.100.0/24', 'via', a.transitInet]);
    await addRoute(lan, ['203.0.113.0/24', 'via', a.transitInet]);
    await addRoute(lan, ['2001:db8:100::/64', 'via', '2001:db8:2::2']);
    // inbound probes from the LAN towards the namespaces go through the sut
    await addRoute(lan, [policy.internalRange, 'via', a.sutLan]);
    await addRoute(inet, ['default', 'via', a.transitLan]);
    await addRoute(inet, ['default', 'via', '2001:db8:2::1']);

    for (const n of policy.namespaces) {
      const g = guests.get(n.name)!;
      await addVeth({ ns: sut, ifname: n.hostVeth, addrs: [`${n.hostAddress}/${n.prefix}`] }, { ns: g, ifname: n.guestVeth, addrs: [`${n.guestAddress}/${n.prefix}`] });
      // Even the tor-only namespace gets a default route here: the firewall
      // must stop it, not the absence of a route.
      await addRoute(g, ['default', 'via', n.hostAddress]);
      await sysctl(g, { 'net.ipv4.ping_group_range': '0 2147483647' });
    }
    return lab;
  } catch (e) {
    await teardownLab(lab);
    throw e;
  }
}

async function addAddr(ns: string, dev: string, addr: string): Promise<void> {
  const v6 = addr.includes(':');
  await must('ip', ['-n', ns, ...(v6 ? ['-6'] : []), 'addr', 'add', addr, 'dev', dev, ...(v6 ? ['nodad'] : [])]);
}

/** Delete every namespace the lab made (killing what runs inside). Never throws. */
export async function teardownLab(lab: Pick<Lab, 'created'>): Promise<void> {
  for (const ns of [...lab.created].reverse()) await deleteNamespace(ns);
}

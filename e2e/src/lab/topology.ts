// The lab: one closed network that every lab suite (firewall matrix, netns,
// time tools, private Tor network) builds on.
//
//   [lk-<ns>-XXXX] veth0 ── veth-<ns> [lk-sut-XXXX] uplink0 ── lan-sut [lk-lan-XXXX] lan-inet ── inet0 [lk-inet-XXXX]
//    policy namespaces                   system under test          LAN router + LAN host        Internet hosts
//
// Namespaces are joined only to each other: nothing is bridged, routed or
// NATed to this machine's uplink. The LAN is RFC1918 inside a policy LAN
// range, the Internet uses documentation ranges only (198.51.100.0/24,
// 203.0.113.0/24, 192.0.2.0/24, 2001:db8::/32), and addInternetHosts refuses
// anything else. Who plays the netns module is an option:
//
//   namespaces: 'lab'     the lab makes one lk-<name>-XXXX per policy namespace and
//                         wires it to the sut as the netns module would (firewall, tornet)
//   namespaces: 'script'  the emitted netns script makes them, run byte for byte
//                         inside the sut's holder: a private mount namespace whose
//                         /run/netns is a tmpfs (the script's `ip netns add tbb`
//                         never meets the host's names) and whose /etc is an
//                         overlay (the tree's /etc files exist for the test only)
//
// Internet addresses, one plan for all suites:
//   198.51.100.10, 203.0.113.10, 2001:db8:100::10  the lab's own Internet hosts (matrix, netns)
//   198.51.100.21-36, 203.0.113.22-35, .53, .80     the private Tor network (tornet/tornet.ts)
//   198.51.100.110-117, 203.0.113.120-153           the time tools' servers (time/setup.ts)
//
// Every process the lab starts, the holder, the namespaces and the lab's
// directory (where principals' helpers are staged: stage.ts) go in
// teardownLab, which never throws and also runs when building fails.
import { rmSync } from 'node:fs';
import { addressIn, cidrWithin, type Policy, parseCidr4 } from '@leakless/policy';
import { addAddr, addRoute, addVeth, createNamespace, delAddr, deleteNamespace, sysctl, uniqueSuffix } from './netns.js';
import { type Proc, startProcess } from './process.js';
import { makeLabDir } from './stage.js';

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

export type PolicyNamespaces = 'lab' | 'script';

export interface LabOptions {
  readonly suffix?: string;
  /** Who makes the policy's namespaces (see above); default 'lab'. */
  readonly namespaces?: PolicyNamespaces;
}

export interface Lab {
  readonly suffix: string;
  readonly sut: string;
  readonly lan: string;
  readonly inet: string;
  /** The sut's interface towards the LAN (where the capture runs). */
  readonly uplink: string;
  readonly namespaces: PolicyNamespaces;
  /** policy namespace name → lab namespace name (namespaces: 'lab'; empty otherwise). */
  readonly guests: ReadonlyMap<string, string>;
  readonly addresses: LabAddresses;
  /** Every namespace this lab created, for teardown. */
  readonly created: readonly string[];
  /** The lab's directory: every uid can read it; staged helpers, configs and per-run files live here. */
  readonly dir: string;
  /** namespaces: 'script': the process holding the sut's private /run/netns and /etc overlay. */
  readonly holder: Proc | undefined;
  /** Processes started in the lab (exec.ts), stopped by teardownLab. */
  readonly procs: Proc[];
}

/** The network alone (names and addresses): what the probe matrix is computed from. */
export type LabNetwork = Pick<Lab, 'sut' | 'lan' | 'inet' | 'uplink' | 'guests' | 'addresses'>;

const LAN_CANDIDATES = ['192.168.77.0/24', '10.77.0.0/24', '172.16.77.0/24'];

/** A /24 for the lab LAN inside one of the policy's LAN ranges and outside its internal range. */
export function pickLanSubnet(policy: Policy): string {
  const internal = parseCidr4(policy.internalRange);
  const ok = LAN_CANDIDATES.find((c) => {
    const x = parseCidr4(c);
    return policy.lanRanges.some((r) => cidrWithin(x, parseCidr4(r))) && !cidrWithin(x, internal) && !cidrWithin(internal, x);
  });
  if (!ok)
    throw new Error(`lab: none of ${LAN_CANDIDATES.join(', ')} lies inside lan.ipv4Ranges (${policy.lanRanges.join(', ')}) outside ${policy.internalRange}`);
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

const DOCUMENTATION4 = ['198.51.100.0/24', '203.0.113.0/24', '192.0.2.0/24'].map(parseCidr4);

/** The lab's Internet is documentation ranges only: an address anywhere else could be someone's real host. */
export function isDocumentationAddress(a: string): boolean {
  if (a.includes(':')) return /^2001:0?db8:/i.test(a);
  return DOCUMENTATION4.some((c) => addressIn(a, c));
}

/**
 * Build the lab. On any error everything already made is torn down before the
 * error propagates; otherwise the caller owns teardownLab (call it in finally/afterAll).
 */
export async function buildLab(policy: Policy, opts: LabOptions = {}): Promise<Lab> {
  const suffix = opts.suffix ?? uniqueSuffix();
  const namespaces = opts.namespaces ?? 'lab';
  const a = labAddresses(policy);
  const sut = `lk-sut-${suffix}`;
  const lan = `lk-lan-${suffix}`;
  const inet = `lk-inet-${suffix}`;
  const guests = new Map(namespaces === 'lab' ? policy.namespaces.map((n) => [n.name, `lk-${n.name}-${suffix}`]) : []);
  const created: string[] = [];
  const state: { holder: Proc | undefined } = { holder: undefined };
  const lab: Lab = {
    suffix,
    sut,
    lan,
    inet,
    uplink: 'uplink0',
    namespaces,
    guests,
    addresses: a,
    created,
    dir: makeLabDir(`lk-lab-${suffix}-`),
    get holder() {
      return state.holder;
    },
    procs: [],
  };
  try {
    for (const ns of [sut, lan, inet, ...guests.values()]) {
      await createNamespace(ns);
      created.push(ns);
    }
    const lanPrefix = a.lanSubnet.split('/')[1];
    await addVeth(
      { ns: sut, ifname: lab.uplink, addrs: [`${a.sutLan}/${lanPrefix}`, `${a.sutLan6}/64`, `${a.sutUla}/64`] },
      { ns: lan, ifname: 'lan-sut', addrs: [`${a.lanRouter}/${lanPrefix}`, `${a.linkLocal}/16`, `${a.lanRouter6}/64`, `${a.lanUla}/64`] },
    );
    await addVeth(
      { ns: lan, ifname: 'lan-inet', addrs: [`${a.transitLan}/24`, '2001:db8:2::1/64'] },
      { ns: inet, ifname: 'inet0', addrs: [`${a.transitInet}/24`, '2001:db8:2::2/64'] },
    );
    for (const h of a.internet4) await addAddr(inet, 'inet0', `${h}/32`);
    await addAddr(inet, 'inet0', `${a.internet6}/128`);

    // The sut: a default route like a real machine behind a LAN router, a
    // link-local route (the firewall, not routing, must stop 169.254/16), and
    // IPv6 on: the lab proves the ip6 drop, not the sysctl (a sysctl alone is
    // never the wall).
    await addRoute(sut, ['default', 'via', a.lanRouter]);
    await addRoute(sut, ['169.254.0.0/16', 'dev', lab.uplink, 'scope', 'link']);
    await addRoute(sut, ['default', 'via', a.lanRouter6]);
    await sysctl(sut, {
      // The netns module turns forwarding on for the clearnet namespace; where
      // the lab plays that module it does the same (isolation rests on the
      // forward chain). Where the script runs, forwarding is the script's.
      ...(namespaces === 'lab' ? { 'net.ipv4.ip_forward': '1' } : {}),
      'net.ipv4.ping_group_range': '0 2147483647', // unprivileged ICMP probes
      'net.ipv6.conf.all.disable_ipv6': '0',
      [`net.ipv6.conf.${lab.uplink}.accept_ra`]: '0',
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
      const g = guests.get(n.name);
      if (!g) continue;
      await addVeth(
        { ns: sut, ifname: n.hostVeth, addrs: [`${n.hostAddress}/${n.prefix}`] },
        { ns: g, ifname: n.guestVeth, addrs: [`${n.guestAddress}/${n.prefix}`] },
      );
      // Even the tor-only namespace gets a default route here: the firewall
      // must stop it, not the absence of a route.
      await addRoute(g, ['default', 'via', n.hostAddress]);
      await sysctl(g, { 'net.ipv4.ping_group_range': '0 2147483647' });
    }
    if (namespaces === 'script') state.holder = await startHolder(lab);
    return lab;
  } catch (e) {
    await teardownLab(lab);
    throw e;
  }
}

/**
 * The sut's holder: a process in the sut with a private mount namespace that
 * has a tmpfs on /run/netns and overlays on /etc and /usr/lib (where the
 * image keeps its vendor files: /usr/lib/leakless). Commands "in the sut"
 * enter it (exec.ts), so the netns script's namespaces and the tree's files
 * exist only there; when it dies they go, and their veths with them.
 */
async function startHolder(lab: Lab): Promise<Proc> {
  const dirs = ['etc-upper', 'etc-work', 'usrlib-upper', 'usrlib-work'].map((d) => `${lab.dir}/${d}`);
  const script = [
    'set -e',
    'mkdir -p "$1" "$2" "$3" "$4"',
    'mount -t tmpfs -o mode=0755 lk-run-netns /run/netns',
    'mount -t overlay lk-etc -o lowerdir=/etc,upperdir="$1",workdir="$2" /etc',
    'mount -t overlay lk-usrlib -o lowerdir=/usr/lib,upperdir="$3",workdir="$4" /usr/lib',
    'echo ready',
    'exec sleep 86400',
  ].join('\n');
  // ip netns exec and unshare exec in place: the holder's pid is the sleep's.
  return startProcess(['ip', 'netns', 'exec', lab.sut, 'unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', ...dirs], {
    label: `the holder in ${lab.sut}`,
    ready: /^ready$/,
  });
}

/**
 * Extra Internet hosts (a /32 or /128 each on the Internet namespace's lo),
 * documentation ranges only. Returns the function that removes them again.
 */
export async function addInternetHosts(lab: Pick<Lab, 'inet'>, addrs: readonly string[]): Promise<() => Promise<void>> {
  const bad = addrs.filter((x) => !isDocumentationAddress(x));
  if (bad.length) throw new Error(`lab: Internet hosts must be in documentation ranges, not ${bad.join(', ')}`);
  const added: string[] = [];
  const remove = async () => {
    for (const x of added.splice(0).reverse()) await delAddr(lab.inet, 'lo', x);
  };
  try {
    for (const x of addrs) {
      const cidr = `${x}/${x.includes(':') ? 128 : 32}`;
      await addAddr(lab.inet, 'lo', cidr);
      added.push(cidr);
    }
  } catch (e) {
    await remove();
    throw e;
  }
  return remove;
}

/**
 * Stop every process the lab started, the holder, delete every namespace it
 * made (killing what still runs inside) and its directory. Never throws;
 * calling it twice is harmless.
 */
export async function teardownLab(lab: Pick<Lab, 'created' | 'procs' | 'holder' | 'dir'>): Promise<void> {
  for (const p of lab.procs.splice(0).reverse()) await p.stop().catch(() => undefined);
  await lab.holder?.stop().catch(() => undefined);
  for (const ns of [...lab.created].reverse()) await deleteNamespace(ns);
  rmSync(lab.dir, { recursive: true, force: true });
}

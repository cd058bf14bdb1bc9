// The per-application namespaces as data: for each policy namespace, the
// kernel settings inside it, the settings of its host-side veth, and its
// nftables table (a @leakless/nft model, rendered by its one writer like the
// host table), each with the policy clause and the threat it answers. The
// templates only print this; the assertions and tests read the same data.
import { PATHS, UNITS, type Policy, type ResolvedNamespace } from '@leakless/policy';
import { renderNft, type BaseChainSpec, type Chain, type Rule, type Table } from '@leakless/nft';

/** Paths in the image. */
export const SETUP_SCRIPT = `${PATHS.lib}/netns-setup`;
export const LAUNCHER = PATHS.netnsExec;
export const UNIT = UNITS.netns;
export const UNIT_PATH = `${PATHS.units}/${UNIT}`;
export const NFT_DIR = `${PATHS.lib}/netns`;
export const UDEV_RULES = `${PATHS.udevRules}/85-leakless-nm-unmanage-veth.rules`;
/** `ip netns exec NAME` bind-mounts every file of /etc/netns/NAME over /etc (iproute2). */
export const ETC_NETNS = '/etc/netns';
/** The nftables table the setup script loads inside each namespace. */
export const NS_TABLE = 'leakless_netns';
/**
 * The hostname a launched application sees in its own UTS namespace: the same
 * on every machine, so an application that reads and reports it (crash
 * reports, WebRTC, protocol banners) tells nothing about this one (Whonix
 * uses "host" for the same reason).
 */
export const GENERIC_HOSTNAME = 'localhost';
/**
 * The firewall unit the namespaces are created after. The host-side rules the
 * namespaces rely on (forward + masquerade for clearnet only, input from a
 * tor-only veth to its SocksPort only) are in its ruleset, not here.
 */
export const FIREWALL_UNIT = UNITS.firewall;

/**
 * Environment a launched application keeps: the X display it draws on (its
 * socket is on the namespace's allowlist) and the user's language. Everything
 * else is dropped, so nothing from the caller (proxy settings, LD_PRELOAD, a
 * session bus address, the desktop user's runtime directory, Wayland socket
 * or X authority file, a terminal type for a terminal it does not get) is
 * inherited by accident; HOME and XDG_RUNTIME_DIR are the namespace user's own.
 */
export const KEPT_ENVIRONMENT: readonly string[] = ['DISPLAY', 'LANG', 'LANGUAGE', 'LC_ALL'];

/**
 * Host settings written again after every write of net.ipv4.ip_forward:
 * the kernel sets all.accept_redirects to the opposite of ip_forward
 * (inet_forward_change), so switching forwarding off on stop, or on a failed
 * start, turned it on, and with all = 1 every interface that does not forward
 * accepts ICMP redirects whatever its own value (docs/threat-model.md#net-hardening).
 */
export const AFTER_IP_FORWARD: readonly Setting[] = [
  {
    key: 'net.ipv4.conf.all.accept_redirects',
    value: '0',
    why: 'Writing ip_forward sets all.accept_redirects to its opposite (0 → 1): an ICMP redirect from the LAN must still not reroute the host.',
  },
];

export interface Setting {
  readonly key: string;
  readonly value: string;
  readonly why: string;
}

export interface NamespacePlan {
  readonly ns: ResolvedNamespace;
  /** nftables file loaded inside the namespace. */
  readonly nftPath: string;
  /** sysctls written inside the namespace before its veth end moves in. */
  readonly nsSysctls: readonly Setting[];
  /** sysctls of the host-side veth, written after it exists. */
  readonly hostSysctls: readonly Setting[];
  /** The table loaded inside the namespace (NS_TABLE). */
  readonly table: Table;
  /** The default route (clearnet only): via the host side of the veth. */
  readonly defaultVia?: string;
  /** /etc/netns/NAME/resolv.conf: a file of the tree (tor-only) or a link made at start to the clearnet resolver file. */
  readonly resolvConf: { readonly kind: 'file'; readonly path: string } | { readonly kind: 'link'; readonly path: string; readonly target: string };
}

const set = (key: string, value: string | number, why: string): Setting => ({ key, value: String(value), why });

function nsSysctls(ns: ResolvedNamespace): Setting[] {
  const torOnly = ns.kind === 'tor-only';
  return [
    set('net.ipv4.ip_forward', 0, 'The namespace is an end point, never a router (Tails tails-create-netns).'),
    set('net.ipv4.conf.all.forwarding', 0, 'Same, for every interface in the namespace.'),
    set('net.ipv4.conf.default.forwarding', 0, 'Same, for the veth end that moves in next.'),
    // A new namespace starts with the kernel's IPv6 defaults (IPv6 on), not
    // the host's sysctl.d: without this the veth end would come up with a
    // link-local IPv6 address and an IPv6 path nobody filters.
    set('net.ipv6.conf.all.disable_ipv6', 1, 'No IPv6 inside: a new namespace does not inherit the host’s disable_ipv6.'),
    set('net.ipv6.conf.default.disable_ipv6', 1, 'The veth end moves in after this and must come up without IPv6.'),
    torOnly
      ? set(
          'net.ipv4.conf.all.route_localnet',
          1,
          'Applications dial 127.0.0.1:<SocksPort>; the DNAT to the host side keeps source 127.0.0.1 until masquerade, and replies come back to 127.0.0.1 on the veth (Tails).',
        )
      : set('net.ipv4.conf.all.route_localnet', 0, 'No DNAT here, so no 127.0.0.0/8 packet ever belongs on the veth.'),
  ];
}

function hostSysctls(ns: ResolvedNamespace): Setting[] {
  return [
    ns.kind === 'tor-only'
      ? set(
          `net.ipv4.conf.${ns.hostVeth}.forwarding`,
          0,
          'The host never routes for a tor-only namespace: even without the firewall’s forward chain nothing from it is forwarded (written after ip_forward, which would reset it).',
        )
      : set(
          `net.ipv4.conf.${ns.hostVeth}.forwarding`,
          1,
          'The clearnet namespace is routed out through the host; the firewall’s forward chain decides what may pass.',
        ),
    set(`net.ipv4.conf.${ns.hostVeth}.route_localnet`, 0, 'Nothing on the host side may send or accept 127.0.0.0/8 on the veth.'),
    set(`net.ipv4.conf.${ns.hostVeth}.accept_redirects`, 0, 'The namespace must not reroute the host.'),
    set(`net.ipv4.conf.${ns.hostVeth}.send_redirects`, 0, 'The host does not tell the namespace about other routes.'),
  ];
}

// Building blocks of the namespace tables; every rule gets a counter and its
// clause comment from the renderer.
const accept = { kind: 'accept' } as const;
const drop = { kind: 'drop' } as const;
/** "Refused by policy": the application learns at once that the path is closed. */
const refuse = { kind: 'reject', icmpx: 'admin-prohibited' } as const;
const LO = { name: 'lo' } as const;
const NAT_OUTPUT: BaseChainSpec = { type: 'nat', hook: 'output', priority: -100, policy: 'accept' };
const NAT_POSTROUTING: BaseChainSpec = { type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' };
/** After nat postrouting (100): sees the source masquerade gave the packet. */
const POSTROUTING: BaseChainSpec = { type: 'filter', hook: 'postrouting', priority: 110, policy: 'accept' };
const filter = (hook: 'input' | 'output' | 'forward', policy: 'accept' | 'drop'): BaseChainSpec => ({ type: 'filter', hook, priority: 0, policy });

const invalidDrop: Rule = { match: { ctState: ['invalid'] }, verdict: drop, clause: 'docs/threat-model.md#ct-state-invalid: invalid state' };
const loopback = (ns: ResolvedNamespace, way: 'in' | 'out'): Rule => ({
  match: way === 'in' ? { iifname: LO } : { oifname: LO },
  verdict: accept,
  clause: `${ns.clause} loopback inside the namespace`,
});
const neverARouter: Chain = { name: 'forward', why: 'Never a router.', base: filter('forward', 'drop'), rules: [] };

/** Nothing leaves the veth with another source than the namespace's own address (Tails: OUTPUT -o veth0 ! --src <guest> REJECT). */
function antiSpoofing(ns: ResolvedNamespace, why: string): Chain {
  return {
    name: 'postrouting',
    why,
    base: POSTROUTING,
    rules: [
      { match: { oifname: { name: ns.guestVeth }, saddr: { addrs: [ns.guestAddress], negate: true } }, verdict: drop, clause: `${ns.clause} anti-spoofing` },
    ],
  };
}

function torOnlyChains(ns: ResolvedNamespace): Chain[] {
  const socks = ns.socksPort;
  if (!socks) throw new Error(`internal: tor-only namespace ${ns.name} without a SocksPort after validation`);
  const c = ns.clause;
  const sc = socks.clause;
  const host = { addrs: [ns.hostAddress] };
  const socksPort = { ports: [socks.port] };
  const veth = { name: ns.guestVeth };
  return [
    {
      name: 'nat_output',
      why: 'Unmodified applications use 127.0.0.1:<port>; it is rewritten to the SocksPort on the host side of the veth.',
      base: NAT_OUTPUT,
      rules: [
        {
          match: { oifname: LO, daddr: { addrs: ['127.0.0.1'] }, protocol: 'tcp', dport: socksPort },
          verdict: { kind: 'dnat', address: ns.hostAddress, port: socks.port },
          clause: `${sc} SocksPort ${socks.name} via DNAT`,
        },
      ],
    },
    {
      name: 'nat_postrouting',
      why: 'A DNATed connection still has source 127.0.0.1; it leaves with the namespace’s own address.',
      base: NAT_POSTROUTING,
      rules: [{ match: { oifname: veth, ctStatus: ['dnat'] }, verdict: { kind: 'masquerade' }, clause: `${c} masquerade of the DNAT` }],
    },
    {
      name: 'output',
      why: 'The only packets that leave: the DNATed SocksPort connection. The namespace has no route anywhere else; this is the second wall.',
      base: filter('output', 'drop'),
      rules: [
        invalidDrop,
        loopback(ns, 'out'),
        { match: { oifname: veth, daddr: host, protocol: 'tcp', dport: socksPort, ctStatus: ['dnat'] }, verdict: accept, clause: `${sc} the one way out` },
        { match: {}, verdict: refuse, clause: `${c} tor-only: nothing else` },
      ],
    },
    antiSpoofing(ns, 'Anti-spoofing after masquerade: nothing leaves the veth with another source (Tails: OUTPUT -o veth0 ! --src <guest> REJECT).'),
    {
      name: 'input',
      why: 'The namespace serves nobody: only loopback and the replies of its SocksPort connections come in.',
      base: filter('input', 'drop'),
      rules: [
        loopback(ns, 'in'),
        { match: { iifname: veth, saddr: host, protocol: 'tcp', sport: socksPort, ctState: ['established'] }, verdict: accept, clause: `${sc} replies` },
      ],
    },
    neverARouter,
  ];
}

function clearnetChains(ns: ResolvedNamespace, internalRange: string): Chain[] {
  const c = ns.clause;
  return [
    {
      name: 'output',
      why: 'Routed out through the host, whose firewall decides; these rules are the second wall for what this namespace must never reach.',
      base: filter('output', 'accept'),
      rules: [
        invalidDrop,
        loopback(ns, 'out'),
        { match: { nfproto: 'ipv6' }, verdict: refuse, clause: 'ipv6.enabled false' },
        {
          match: { daddr: { addrs: [internalRange] } },
          verdict: refuse,
          clause: 'netns.internalRange: no host services, no other namespace (Tails 699c716428a)',
        },
      ],
    },
    antiSpoofing(ns, 'Anti-spoofing: nothing leaves the veth with another source (Tails: OUTPUT -o veth0 ! --src <guest> REJECT).'),
    {
      name: 'input',
      why: 'No incoming connection to an application that is on the real network with the real address (Tails 1c9207c0a4f).',
      base: filter('input', 'drop'),
      rules: [
        invalidDrop,
        loopback(ns, 'in'),
        { match: { ctState: ['established', 'related'] }, verdict: accept, clause: `${c} replies (related: ICMP errors, path MTU)` },
      ],
    },
    neverARouter,
  ];
}

export function planNamespace(policy: Policy, ns: ResolvedNamespace): NamespacePlan {
  const torOnly = ns.kind === 'tor-only';
  return {
    ns,
    nftPath: `${NFT_DIR}/${ns.name}.nft`,
    nsSysctls: nsSysctls(ns),
    hostSysctls: hostSysctls(ns),
    table: { family: 'inet', name: NS_TABLE, chains: torOnly ? torOnlyChains(ns) : clearnetChains(ns, policy.internalRange) },
    ...(torOnly ? {} : { defaultVia: ns.hostAddress }),
    resolvConf: torOnly
      ? { kind: 'file', path: `${ETC_NETNS}/${ns.name}/resolv.conf` }
      : { kind: 'link', path: `${ETC_NETNS}/${ns.name}/resolv.conf`, target: policy.clearnetResolver.file },
  };
}

export function planNamespaces(policy: Policy): NamespacePlan[] {
  return policy.namespaces.map((ns) => planNamespace(policy, ns));
}

/** A namespace's `nft -f` file: its table, rendered by the one nft writer, below a header saying where it comes from. */
export function nftFile(p: NamespacePlan): string {
  return renderNft(p.table, [
    `nftables rules inside network namespace ${p.ns.name} (${p.ns.kind})`,
    `leakless: generated from the policy (${p.ns.clause}); do not edit, change the policy.`,
    `Loaded by ${UNIT} inside the namespace, before its veth end moves in.`,
    "The host-side rules for this namespace are in the firewall's ruleset.",
    '',
    'Declaring, deleting and redefining the table in one file is one transaction:',
    'a reload replaces the rules atomically, a bad file changes nothing.',
  ]);
}

/** The routes a namespace must have, in the form the `ip-routes` runtime check prints. */
export function expectedRoutes(plan: NamespacePlan): string[] {
  const { ns } = plan;
  const net = `${ns.subnet.split('/')[0]}/${ns.prefix}`;
  return [`main ${net} dev ${ns.guestVeth}`, ...(plan.defaultVia ? [`main default via ${plan.defaultVia} dev ${ns.guestVeth}`] : [])].sort();
}

/** The addresses a namespace must have: loopback and its end of the /30, nothing routable. */
export function expectedAddresses(plan: NamespacePlan): string[] {
  const { ns } = plan;
  return [`lo 127.0.0.1/8`, `${ns.guestVeth} ${ns.guestAddress}/${ns.prefix}`].sort();
}

// The torrc as data: every line with the policy clause it comes from and the
// reason it is there. Rendering (templates/torrc.ejs) only prints this model,
// and the static assertions compare tor's own parse of the rendered file with
// the same model, so the two cannot drift apart.
import type { Policy, TorListener } from '@leakless/policy';
import { TOR_CONTROL } from '@leakless/policy/names';

/** Debian's tor@default runs `tor --defaults-torrc <DEBIAN_DEFAULTS_TORRC> -f <TORRC>`. */
export const TORRC = '/etc/tor/torrc';
export const DEBIAN_DEFAULTS_TORRC = '/usr/share/tor/tor-service-defaults-torrc';
/** Local changes and test setups go here; the base file is never edited (Whonix torrc.d layout). */
export const TORRC_D = '/etc/tor/torrc.d';
export const TORRC_D_GLOB = `${TORRC_D}/*.conf`;

export interface TorrcLine {
  readonly option: string;
  readonly value: string;
  /** Why the line is there (threat, Tails/Whonix precedent). */
  readonly why: string;
  /** Policy clause (or a docs/ anchor) it comes from. */
  readonly clause: string;
}

export interface TorrcSection {
  readonly title: string;
  readonly lines: readonly TorrcLine[];
}

/**
 * Tails' bulk-download (IUK) port turns isolation off with exactly these
 * flags; the policy's `isolation: []` means the same. (IsolateSOCKSAuth and
 * IsolateClientAddr stay tor's defaults, as in Tails.)
 */
export const NO_ISOLATION = ['NoIsolateDestAddr', 'NoIsolateDestPort', 'NoIsolateClientProtocol'] as const;

export function isolationFlags(l: TorListener): readonly string[] {
  return l.isolation.length ? l.isolation : NO_ISOLATION;
}

const CONTROL_SOCKET_CLAUSE = 'docs/threat-model.md#controlport';

/** tor's unix control socket, as Debian's defaults file spells it (flags kept so the group may connect). */
export function controlSocketValue(): string {
  return `${TOR_CONTROL.socket} GroupWritable RelaxDirModeCheck`;
}

export function listenerValue(l: TorListener): string {
  const base = `${l.address}:${l.port}`;
  return l.kind === 'socks' ? [base, ...isolationFlags(l)].join(' ') : base;
}

const who = (l: TorListener): string =>
  l.clients.length ? `clients ${l.clients.map((c) => c.name).join(', ')}` : 'no clients: the firewall refuses every user';

/** ReachableAddresses value for a port list: accept each, reject the rest. */
export function reachableValue(ports: readonly number[]): string {
  return [...ports.map((p) => `accept *:${p}`), 'reject *:*'].join(', ');
}

export function torrcSections(policy: Policy): TorrcSection[] {
  const socks: TorrcLine[] = policy.socksPorts.map((s) => ({
    option: 'SocksPort',
    value: listenerValue(s),
    why: `${s.name}: ${who(s)}${s.netns ? `; host side of netns ${s.netns}` : ''}${s.isolation.length ? '' : '; isolation off (like the Tails IUK download port)'}`,
    clause: s.clause,
  }));
  const c = policy.controlPort;
  const control: TorrcLine[] = [
    { option: 'ControlPort', value: listenerValue(c), why: `${who(c)}; it can reconfigure tor and deanonymise (Tails 2016)`, clause: c.clause },
    { option: 'CookieAuthentication', value: '1', why: 'a client must also read the cookie file, not only reach the port', clause: c.clause },
    {
      option: 'ControlSocket',
      value: controlSocketValue(),
      why: "privileged local clients (htpdate) use this socket, not the port: only the tor user can write its directory (Debian's tor@default makes it), so nothing else can listen there while tor is down, and only the tor group may connect; RelaxDirModeCheck because that directory is world-readable",
      clause: CONTROL_SOCKET_CLAUSE,
    },
    {
      option: 'CookieAuthFile',
      value: TOR_CONTROL.cookie,
      why: 'where clients read the cookie: from this configured path, never from the one a server names',
      clause: CONTROL_SOCKET_CLAUSE,
    },
    {
      option: 'CookieAuthFileGroupReadable',
      value: '1',
      why: "the tor group reads it: htpdate's root has that group and no CAP_DAC_OVERRIDE",
      clause: CONTROL_SOCKET_CLAUSE,
    },
  ];
  const d = policy.dnsPort;
  const t = policy.transPort;
  const resolve: TorrcLine[] = [
    { option: 'DNSPort', value: listenerValue(d), why: `${who(d)}; udp/53 on ${d.address} is redirected here by the firewall`, clause: d.clause },
    {
      option: 'TransPort',
      value: listenerValue(t),
      why: `${who(t)}; the automap range is redirected here; no isolation flags (Tails #6378)`,
      clause: t.clause,
    },
    {
      option: 'AutomapHostsOnResolve',
      value: '1',
      why: 'DNSPort answers .onion/.exit names with an address from the automap range',
      clause: 'tor.automapRange',
    },
    { option: 'AutomapHostsSuffixes', value: '.exit,.onion', why: 'only names that have no real address are automapped (Tails)', clause: 'tor.automapRange' },
    {
      option: 'VirtualAddrNetworkIPv4',
      value: policy.automapRange,
      why: 'the same range the firewall redirects to the TransPort',
      clause: 'tor.automapRange',
    },
  ];
  const reach: TorrcLine[] = policy.torReachablePorts
    ? (['ReachableAddresses', 'ReachableORAddresses', 'ReachableDirAddresses'] as const).map((option) => ({
        option,
        value: reachableValue(policy.torReachablePorts!),
        why: 'tor picks only relays and bridges on these ports; the firewall allows the tor user exactly these (Whonix host-firewall note)',
        clause: 'tor.reachablePorts',
      }))
    : [];
  const bridges = bridgeLines(policy);
  const ipv6: TorrcLine[] = policy.document.ipv6.enabled
    ? []
    : [
        {
          option: 'ClientUseIPv6',
          value: '0',
          why: 'IPv6 is off (sysctl and the ip6 drop policy): never pick a relay by its IPv6 address',
          clause: 'ipv6.enabled',
        },
      ];
  const hardening: TorrcLine[] = [
    ...ipv6,
    sandboxLine(policy),
    {
      option: 'AvoidDiskWrites',
      value: '1',
      why: 'a live system leaves as little as possible on disk (Tails)',
      clause: 'docs/threat-model.md#torrc-hardening',
    },
    { option: 'Log', value: 'notice syslog', why: 'notice level: no addresses or destinations are logged', clause: 'docs/threat-model.md#torrc-hardening' },
  ];
  return [
    { title: 'SocksPorts: one per purpose, so streams of different purposes never share a circuit', lines: socks },
    { title: 'ControlPort', lines: control },
    { title: 'DNS and transparent proxy', lines: resolve },
    ...(reach.length ? [{ title: "Tor's own outgoing ports", lines: reach }] : []),
    ...(bridges.length ? [{ title: 'Bridges: tor connects to these only, never to a relay directly', lines: bridges }] : []),
    { title: 'Hardening', lines: hardening },
  ];
}

/** tor's seccomp sandbox, unless a pluggable transport runs: tor refuses "Managed proxies are not compatible with Sandbox mode". */
export function sandboxValue(policy: Policy): '0' | '1' {
  return policy.torBridges?.plugin ? '0' : '1';
}

function sandboxLine(policy: Policy): TorrcLine {
  const plugin = policy.torBridges?.plugin;
  return plugin
    ? {
        option: 'Sandbox',
        value: sandboxValue(policy),
        why: `off: tor refuses to start a managed transport (${plugin.exec}) inside its seccomp sandbox (docs/threat-model.md#bridges)`,
        clause: 'tor.bridges.transport',
      }
    : {
        option: 'Sandbox',
        value: sandboxValue(policy),
        why: 'seccomp sandbox: a compromised tor process cannot open new files or run programs',
        clause: 'docs/threat-model.md#torrc-hardening',
      };
}

/** `ClientTransportPlugin NAME exec PATH`: the plugin of the policy's transport, nothing else. */
export function transportPluginValue(policy: Policy): string | undefined {
  const p = policy.torBridges?.plugin;
  return p ? `${p.transport} exec ${p.exec}` : undefined;
}

function bridgeLines(policy: Policy): TorrcLine[] {
  const b = policy.torBridges;
  if (!b) return [];
  const plugin = transportPluginValue(policy);
  return [
    { option: 'UseBridges', value: '1', why: 'the first hop is always one of the bridges below', clause: 'tor.bridges' },
    ...(plugin
      ? [
          {
            option: 'ClientTransportPlugin',
            value: plugin,
            why: `Debian's ${b.plugin!.package}, started by tor as the tor user; its traffic leaves as tor's`,
            clause: 'tor.bridges.transport',
          },
        ]
      : []),
    ...b.lines.map((l) => ({
      option: 'Bridge',
      value: l.torrc,
      why: b.pinned ? 'the firewall lets the tor user reach this address and port, and no other' : `${b.transport} bridge`,
      clause: l.clause,
    })),
  ];
}

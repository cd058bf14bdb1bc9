// tor.bridges: the bridge lines of the policy, parsed once. torrc's Bridge
// lines, the firewall's egress for the tor user and the cross-module check
// are all generated from this view (docs/threat-model.md#bridges).
//
// The transports are Debian's: a plugin is the program the suite's package
// installs, and a bridge line may carry only the arguments that program
// understands, so a line pasted from a newer Tor Browser fails validation
// here, naming the field, instead of failing at boot behind the firewall.
import { isIPv4 } from 'node:net';
import { LOOPBACK_V4, addressIn, parseCidr4 } from './net.js';
import type { Rule } from './rules.js';
import type { PolicyDocument } from './schema.js';

export type BridgeTransport = 'obfs4' | 'snowflake' | 'vanilla';

/** A pluggable transport tor runs (`ClientTransportPlugin NAME exec PATH`) and the Debian package that installs it. */
export interface TransportPlugin {
  readonly transport: Exclude<BridgeTransport, 'vanilla'>;
  readonly exec: string;
  readonly package: string;
  /** The package's version in the suite; the arguments below are the ones this version parses. */
  readonly version: string;
  /** Argument keys the plugin understands, with a check of the value. */
  readonly args: Readonly<Record<string, (value: string) => string | undefined>>;
  /** Keys every line must carry. */
  readonly required: readonly string[];
}

const OBFS4_CERT = /^[A-Za-z0-9+/]{70}$/;
const HEX40 = /^[0-9A-Fa-f]{40}$/;
const HOST = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

const httpsUrl = (v: string) => (/^https:\/\/[A-Za-z0-9.-]+(:\d{1,5})?\/[\x21-\x7e]*$/.test(v) ? undefined : 'must be an https:// URL');
const stunList = (v: string) =>
  v.split(',').every((s) => /^stuns?:[A-Za-z0-9.-]+(:\d{1,5})?$/.test(s)) ? undefined : 'must be a comma-separated list of stun:HOST[:PORT]';

// What obfs4proxy 0.0.14 (transports/obfs4 ParseArgs) and snowflake-client
// 2.5.1 (its SOCKS arguments) accept, read from bookworm's packages. Only
// the modern obfs4 "cert" form: the node-id/public-key form predates 0.0.3.
const OBFS4: TransportPlugin = {
  transport: 'obfs4',
  exec: '/usr/bin/obfs4proxy',
  package: 'obfs4proxy',
  version: '0.0.14',
  args: {
    cert: (v) => (OBFS4_CERT.test(v) && Buffer.from(`${v}==`, 'base64').length === 52 ? undefined : 'must be 70 base64 characters (node id and public key)'),
    'iat-mode': (v) => (/^[012]$/.test(v) ? undefined : 'must be 0, 1 or 2'),
  },
  required: ['cert', 'iat-mode'],
};

const SNOWFLAKE: TransportPlugin = {
  transport: 'snowflake',
  exec: '/usr/bin/snowflake-client',
  package: 'snowflake-client',
  version: '2.5.1',
  args: {
    url: httpsUrl,
    front: (v) => (HOST.test(v) ? undefined : 'must be a host name'),
    ice: stunList,
    max: (v) => (/^[1-9]\d{0,2}$/.test(v) ? undefined : 'must be a number of peers (1-999)'),
    ampcache: httpsUrl,
    fingerprint: (v) => (HEX40.test(v) ? undefined : 'must be 40 hexadecimal digits'),
    'utls-imitate': (v) => (/^[A-Za-z0-9_-]+$/.test(v) ? undefined : 'must be a uTLS client hello name'),
    'utls-nosni': (v) => (/^(true|false)$/.test(v) ? undefined : 'must be true or false'),
  },
  required: ['url'],
};

/** Per Debian suite: the package that provides each transport's plugin. A suite missing here has none we have checked. */
export const TRANSPORT_PLUGINS: Readonly<Record<string, Readonly<Record<TransportPlugin['transport'], TransportPlugin>>>> = {
  bookworm: { obfs4: OBFS4, snowflake: SNOWFLAKE },
};

export function transportPlugin(suite: string, transport: BridgeTransport): TransportPlugin | undefined {
  return transport === 'vanilla' ? undefined : TRANSPORT_PLUGINS[suite]?.[transport];
}

/**
 * Transports whose traffic does not go to the bridge line's address: the
 * address in a snowflake line is a placeholder, the client reaches a broker
 * through a domain front (HTTPS to a CDN) and volunteer proxies over WebRTC.
 */
export const FRONTED_TRANSPORTS: readonly BridgeTransport[] = ['snowflake'];

export interface BridgeArg {
  readonly key: string;
  readonly value: string;
}

export interface BridgeLine {
  readonly transport: BridgeTransport;
  readonly address: string;
  readonly port: number;
  /** Upper-case RSA identity fingerprint. */
  readonly fingerprint: string;
  readonly args: readonly BridgeArg[];
  /** The value of torrc's Bridge option, normalised (what tor --dump-config prints back). */
  readonly torrc: string;
  readonly clause: string;
}

export interface TorBridges {
  readonly transport: BridgeTransport;
  /** Absent for vanilla bridges (tor speaks to them itself). */
  readonly plugin: TransportPlugin | undefined;
  readonly lines: readonly BridgeLine[];
  /** The tor user may open TCP only to the bridges' address:port (obfs4/vanilla; tor.bridges.pinEgress). */
  readonly pinned: boolean;
  /** UDP the tor user may send besides DNS: 'any' port, a list, or none (undefined). */
  readonly udpPorts: 'any' | readonly number[] | undefined;
}

export type BridgeParse = { ok: true; line: Omit<BridgeLine, 'clause'> } | { ok: false; message: string };

/** This network, multicast, reserved and broadcast: nothing tor can connect to. */
const UNROUTABLE = ['0.0.0.0/8', '224.0.0.0/4', '240.0.0.0/4'].map(parseCidr4);

/**
 * One bridge line as BridgeDB and Tor Browser print it, without the
 * `Bridge` keyword: `[TRANSPORT] ADDRESS:PORT FINGERPRINT [KEY=VALUE …]`.
 * The fingerprint is required: without it tor accepts any relay at that
 * address, so whoever sits on the path can pose as the bridge.
 */
export function parseBridgeLine(text: string, transport: BridgeTransport, plugin: TransportPlugin | undefined): BridgeParse {
  const words = text.trim().split(/\s+/);
  if (/^bridge$/i.test(words[0] ?? '')) return { ok: false, message: 'write the line without the "Bridge" keyword' };
  if (transport !== 'vanilla') {
    if (words[0] !== transport) return { ok: false, message: `must start with the transport "${transport}" (tor.bridges.transport), got "${words[0]}"` };
    words.shift();
  } else if (words[0] !== undefined && !/^[\d[]/.test(words[0])) {
    return { ok: false, message: `a vanilla bridge line starts with ADDRESS:PORT, got "${words[0]}" (another transport? set tor.bridges.transport)` };
  }
  const [endpoint, fp, ...rest] = words;
  const m = /^(.+):(\d{1,5})$/.exec(endpoint ?? '');
  if (!m) return { ok: false, message: `"${endpoint ?? ''}" is not ADDRESS:PORT` };
  const address = m[1]!;
  const port = Number(m[2]);
  if (!isIPv4(address))
    return { ok: false, message: address.startsWith('[') ? `${address}: IPv6 is off (ipv6.enabled=false)` : `${address} is not an IPv4 address` };
  if (port < 1 || port > 65535) return { ok: false, message: `port ${port} is not 1-65535` };
  if (addressIn(address, LOOPBACK_V4) || UNROUTABLE.some((c) => addressIn(address, c)))
    return { ok: false, message: `${address} is not a unicast address a bridge can have` };
  if (fp === undefined || !HEX40.test(fp)) return { ok: false, message: `"${fp ?? ''}" is not a fingerprint (40 hexadecimal digits, required)` };
  const args: BridgeArg[] = [];
  for (const w of rest) {
    const kv = /^([a-z][a-z0-9-]*)=(\S+)$/.exec(w);
    if (!kv) return { ok: false, message: `"${w}" is not KEY=VALUE` };
    const [, key, value] = kv as unknown as [string, string, string];
    if (!plugin) return { ok: false, message: `a vanilla bridge takes no transport arguments ("${key}=")` };
    const check = plugin.args[key];
    if (!check) return { ok: false, message: `${plugin.package} ${plugin.version} does not know "${key}=" (it knows ${Object.keys(plugin.args).join(', ')})` };
    const bad = check(value);
    if (bad) return { ok: false, message: `${key}= ${bad}` };
    if (args.some((x) => x.key === key)) return { ok: false, message: `"${key}=" is given twice` };
    args.push({ key, value });
  }
  for (const k of plugin?.required ?? []) if (!args.some((x) => x.key === k)) return { ok: false, message: `missing "${k}=" (${plugin!.package} needs it)` };
  const fingerprint = fp.toUpperCase();
  const torrc = [...(plugin ? [plugin.transport] : []), `${address}:${port}`, fingerprint, ...args.map((x) => `${x.key}=${x.value}`)].join(' ');
  return { ok: true, line: { transport, address, port, fingerprint, args, torrc } };
}

/** The kernel's default ip_local_port_range: where a plugin's SOCKS listener (bound to port 0) lands. */
export const EPHEMERAL_PORTS = { from: 32768, to: 60999 } as const;

/**
 * tor.bridges and what it constrains elsewhere in the policy. The loopback
 * clause is the one a reader would not expect: a plugin listens for SOCKS on
 * a random 127.0.0.1 port without authentication, and its connections leave
 * as the tor user, so a program that reaches that port makes the tor user's
 * exception its own (docs/threat-model.md#bridges).
 */
export const bridgesRule: Rule = {
  id: 'tor.bridges',
  check(doc, report) {
    const b = doc.tor.bridges;
    if (!b) return;
    const plugin = transportPlugin(doc.image.suite, b.transport);
    if (b.transport !== 'vanilla' && !plugin)
      report(
        'tor.bridges.transport',
        `${b.transport}: no Debian package for its plugin is known in suite ${doc.image.suite} (known: ${Object.keys(TRANSPORT_PLUGINS).join(', ')})`,
      );
    const seen = new Map<string, number>();
    // Without the plugin's package there is no argument list to check the lines against.
    if (b.transport === 'vanilla' || plugin)
      b.lines.forEach((text, i) => {
        const r = parseBridgeLine(text, b.transport, plugin);
        if (!r.ok) {
          report(`tor.bridges.lines[${i}]`, r.message);
          return;
        }
        const key = `${r.line.address}:${r.line.port}`;
        const j = seen.get(key);
        if (j !== undefined) report(`tor.bridges.lines[${i}]`, `${key} is already tor.bridges.lines[${j}]`);
        seen.set(key, i);
        const reach = doc.tor.reachablePorts;
        if (reach && !FRONTED_TRANSPORTS.includes(b.transport) && !reach.includes(r.line.port))
          report(`tor.bridges.lines[${i}]`, `port ${r.line.port} is not in tor.reachablePorts: tor would never use this bridge`);
      });
    const fronted = FRONTED_TRANSPORTS.includes(b.transport);
    if (fronted && b.pinEgress === true)
      report(
        'tor.bridges.pinEgress',
        `${b.transport} does not connect to the bridge line's address (a broker behind a domain front, WebRTC peers): nothing to pin`,
      );
    if (fronted && doc.tor.reachablePorts)
      report(
        'tor.reachablePorts',
        `must be absent with ${b.transport}: its traffic goes to a domain front and WebRTC peers, not to the bridge line's address, so ReachableAddresses cannot describe it and the narrowed firewall would only break it`,
      );
    if (b.transport === 'snowflake' && b.udpPorts === undefined)
      report('tor.bridges.udpPorts', 'is required for snowflake: STUN and the WebRTC peers are UDP ("any", or the ports to allow)');
    if (b.transport !== 'snowflake' && b.udpPorts !== undefined) report('tor.bridges.udpPorts', `${b.transport} uses TCP only: remove it`);
    if (b.transport !== 'vanilla') {
      if (doc.loopback.mode === 'blocklist')
        report(
          'loopback.mode',
          `must be allowlist with ${b.transport}: the plugin's SOCKS port (a random 127.0.0.1 port, no authentication) would be open to the desktop user, and whatever it asks the plugin to connect to leaves as the tor user`,
        );
      doc.loopback.allowedTcpPorts.forEach((p, i) => {
        if (p >= EPHEMERAL_PORTS.from && p <= EPHEMERAL_PORTS.to)
          report(
            `loopback.allowedTcpPorts[${i}]`,
            `${p} is in the ephemeral range ${EPHEMERAL_PORTS.from}-${EPHEMERAL_PORTS.to}, where ${b.transport}'s plugin listens`,
          );
      });
    }
  },
};

/** The view of a document that passed the rules. */
export function deriveBridges(doc: PolicyDocument): TorBridges | undefined {
  const b = doc.tor.bridges;
  if (!b) return undefined;
  const plugin = transportPlugin(doc.image.suite, b.transport);
  const lines = b.lines.map((text, i) => {
    const r = parseBridgeLine(text, b.transport, plugin);
    if (!r.ok) throw new Error(`internal: tor.bridges.lines[${i}] after validation: ${r.message}`);
    return { ...r.line, clause: `tor.bridges.lines[${i}]` };
  });
  const fronted = FRONTED_TRANSPORTS.includes(b.transport);
  return {
    transport: b.transport,
    plugin,
    lines,
    pinned: !fronted && (b.pinEgress ?? true),
    udpPorts: b.udpPorts === undefined || b.udpPorts === 'any' ? b.udpPorts : [...new Set(b.udpPorts)].sort((x, y) => x - y),
  };
}

// The one policy schema. TypeScript types are inferred from it and the JSON
// Schema for editors is generated from it (see json-schema.ts); cross-field
// rules that a schema cannot express live in rules.ts.
import { z } from 'zod';
import { isIPv4, isIPv6 } from 'node:net';

// Any string in the policy ends up in a config file line; a newline or control
// character would let a value inject a second line (an extra nft rule, a torrc
// option). Every string field goes through this.
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
export const safeString = z
  .string()
  .min(1, 'must not be empty')
  .refine((s) => !CONTROL_CHARS.test(s), 'must not contain a newline or control character');

// useradd's NAME_REGEX in Debian, 32 chars max.
export const userName = safeString.regex(/^[a-z_][a-z0-9_-]{0,30}\$?$/, 'is not a valid unix user name');

// Kernel interface names are at most 15 bytes; the host side is veth-<name>.
export const netnsName = safeString.regex(/^[a-z][a-z0-9]{0,9}$/, 'must be 1-10 lowercase letters/digits starting with a letter');

export const port = z.number().int('must be an integer').min(1, 'port must be 1-65535').max(65535, 'port must be 1-65535');
export const id = z.number().int('must be an integer').min(0, 'must be >= 0').max(4294967294, 'must be < 2^32-1');

export const ipv4 = safeString.refine((s) => isIPv4(s), 'must be an IPv4 address');

function cidrOf(family: 4 | 6) {
  const check = family === 4 ? isIPv4 : isIPv6;
  const max = family === 4 ? 32 : 128;
  return safeString.refine((s) => {
    const [addr, len, extra] = s.split('/');
    if (extra !== undefined || addr === undefined || len === undefined || !/^\d{1,3}$/.test(len)) return false;
    return check(addr) && Number(len) <= max;
  }, `must be an IPv${family} CIDR (address/prefix)`);
}
export const ipv4Cidr = cidrOf(4);
export const ipv6Cidr = cidrOf(6);

export const userRole = z.enum(['admin', 'desktop', 'tor-daemon', 'clearnet', 'service', 'netns']);

export const user = z.strictObject({
  name: userName,
  uid: id,
  gid: id,
  role: userRole.describe(
    'admin: root; desktop: the login user; tor-daemon: the only user whose packets may go to the Internet; clearnet: may reach the Internet directly (pre-Tor time check only); service: a system user that talks to Tor ports; netns: runs the applications of one network namespace (leakless-netns-exec), no network exception of its own',
  ),
});

export const isolationFlag = z.enum([
  'IsolateDestAddr',
  'IsolateDestPort',
  'IsolateClientProtocol',
  'IsolateClientAddr',
  'IsolateSOCKSAuth',
  'KeepAliveIsolateSOCKSAuth',
]);

const clients = z.array(userName).describe('users (by name) allowed to connect; the firewall grants exactly these');

export const socksPort = z
  .strictObject({
    name: netnsName.describe('what the port is for: system, apps, bulk, browser …'),
    address: ipv4.optional().describe('loopback address tor listens on'),
    netns: netnsName.optional().describe('listen on the host side of this namespace’s veth instead of an address'),
    port,
    isolation: z.array(isolationFlag).describe('stream isolation flags; [] disables isolation entirely'),
    clients,
  })
  .refine((s) => (s.address === undefined) !== (s.netns === undefined), 'exactly one of address or netns must be set');

export const listener = z.strictObject({ address: ipv4, port, clients });

export const bridgeSettings = z
  .strictObject({
    transport: z
      .enum(['obfs4', 'snowflake', 'vanilla'])
      .describe(
        'obfs4: obfs4proxy, traffic that looks random; snowflake: snowflake-client, WebRTC through volunteer proxies, the broker reached through a domain front; vanilla: plain Tor bridges, no plugin (a TLS handshake on the wire)',
      ),
    lines: z
      .array(safeString)
      .min(1, 'must list at least one bridge line')
      .describe('bridge lines as BridgeDB prints them, without "Bridge": [TRANSPORT] ADDRESS:PORT FINGERPRINT [KEY=VALUE …]; no built-in list'),
    pinEgress: z
      .boolean()
      .optional()
      .describe(
        'obfs4/vanilla: the tor user may open TCP only to the lines’ ADDRESS:PORT and sends no DNS (absent = true); false = TCP as without bridges. Not for snowflake: its traffic does not go to the line’s address',
      ),
    udpPorts: z
      .union([z.literal('any'), z.array(port).min(1, 'must list at least one port')])
      .optional()
      .describe(
        'snowflake only, and required there: the UDP destination ports the tor user may send to (STUN and the WebRTC peers), "any" or a list; nobody else gets UDP',
      ),
  })
  .describe('Tor bridges and pluggable transports; absent = tor connects to the public relays directly');

export const torSettings = z.strictObject({
  socksPorts: z.array(socksPort).min(1, 'must list at least one SocksPort'),
  controlPort: listener,
  dnsPort: listener,
  transPort: listener,
  automapRange: ipv4Cidr.describe('VirtualAddrNetworkIPv4; the firewall redirects it to the TransPort'),
  reachablePorts: z
    .array(port)
    .min(1, 'must list at least one port (omit the field to let tor connect to any port)')
    .optional()
    .describe(
      'TCP ports tor may connect out to (relay ORPorts/DirPorts, bridges); absent = any. Emits ReachableAddresses in torrc and narrows the firewall exception of the tor-daemon user to exactly these ports (Whonix host-firewall note)',
    ),
  bridges: bridgeSettings.optional(),
});

export const blockedService = z.strictObject({ protocol: z.enum(['tcp', 'udp']), port });

export const lan = z.strictObject({
  ipv4Ranges: z.array(ipv4Cidr).min(1, 'must list at least one range'),
  ipv6Ranges: z.array(ipv6Cidr),
  blockedServices: z.array(blockedService),
  allowPublicRanges: z
    .array(ipv4Cidr)
    .optional()
    .describe(
      'ranges of ipv4Ranges that lie outside private (RFC 1918), link-local and CGNAT space and are LAN all the same (a network on public addresses), each acknowledged here exactly as listed there: every user reaches them in clear. Absent = none',
    ),
});

export const loopback = z.strictObject({
  desktopUser: userName,
  mode: z.enum(['blocklist', 'allowlist']),
  allowedTcpPorts: z.array(port),
});

export const netnsKind = z.enum(['tor-only', 'clearnet']);
// A filesystem socket the launcher binds into a namespace's private mount
// namespace. Only under /tmp and /run, the directories the launcher replaces,
// and spelled so that it is one safe word in a shell script.
export const socketPath = safeString.regex(
  /^\/(tmp|run)(\/(?!\.\.?(\/|$))[A-Za-z0-9._@+-]+)+$/,
  'must be an absolute path under /tmp or /run (letters, digits, . _ @ + -; no . or .. component)',
);

export const namespace = z.strictObject({
  name: netnsName,
  kind: netnsKind.describe('tor-only: reaches one SocksPort and nothing else; clearnet: routed out through the host, no local services'),
  subnet: ipv4Cidr.describe('a /30 inside netns.internalRange'),
  user: userName.describe('the user (role netns) the namespace’s applications run as, with their own home: no other namespace and not the desktop user'),
  sockets: z
    .array(socketPath)
    .describe(
      'the only filesystem sockets the namespace’s applications see (the display server’s); every other socket, the system and session buses among them, is hidden by a private mount namespace',
    ),
});

export const netnsSettings = z.strictObject({
  internalRange: ipv4Cidr,
  namespaces: z.array(namespace),
});

/** Debian suites the image is built from and every module's output is tested on (nft 1.0.6, tor, the 6.1 kernel's knobs). */
export const SUPPORTED_SUITES = ['bookworm'] as const;

export const hostName = safeString.regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS host name');

export const timeSettings = z.strictObject({
  preTorCheck: z.strictObject({
    enabled: z.boolean(),
    user: userName,
    url: safeString.regex(/^http:\/\/[a-z0-9.-]+(:\d+)?\/\S*$/, 'must be a plain http:// URL (the request mimics NetworkManager)'),
    expectedBody: safeString,
    timeoutSeconds: z.number().int().min(1).max(120),
  }),
  maxYearsAfterRelease: z
    .number()
    .int()
    .min(1)
    .max(100)
    .default(5)
    .describe(
      'the latest time any time source may set: release.sourceDateEpoch plus this many years of 365.25 days. A later Date (the pre-Tor answer, an htpdate host, the clock setter’s argument) is refused: tor cannot bootstrap with a clock far ahead, and a clock set to 9999 would never be corrected (Whonix timesanitycheck bounds the clock the same way)',
    ),
  htpdate: z.strictObject({
    user: userName,
    socksPort: netnsName.describe('name of the SocksPort htpdate uses'),
    perPoolFailureRatio: z.number().min(0).max(1),
    minimumOffsetSeconds: z.number().min(0),
    requestTimeoutSeconds: z.number().int().min(1).max(600).default(30).describe('per-host HTTPS timeout through Tor (Tails https-get-expired: 30 s)'),
    bootstrapTimeoutSeconds: z
      .number()
      .int()
      .min(10)
      .max(86400)
      .default(600)
      .describe(
        'how long htpdate waits for tor’s bootstrap before its unit fails with a clear message (Tails waits without end; a wait without end holds the unit forever)',
      ),
    pools: z.array(z.array(hostName).min(1, 'a pool needs at least one host')).min(1, 'must list at least one pool'),
  }),
});

export const imageSettings = z.strictObject({
  suite: safeString.regex(/^[a-z]+$/, 'must be a Debian suite name').describe(`the Debian suite the image is built from: ${SUPPORTED_SUITES.join(', ')}`),
  hostname: hostName,
  packages: z.array(safeString.regex(/^[a-z0-9][a-z0-9+.-]+$/, 'must be a Debian package name')),
});

export const policySchema = z.strictObject({
  version: z.literal(1),
  name: safeString.regex(/^[a-z0-9][a-z0-9-]*$/, 'must be lowercase letters, digits and dashes'),
  release: z.strictObject({
    version: safeString,
    sourceDateEpoch: z.number().int().min(315532800, 'must be after 1980-01-01 (zip/ISO limits)'),
  }),
  users: z.array(user).min(1, 'must list at least one user'),
  tor: torSettings,
  lan,
  loopback,
  ipv6: z.strictObject({
    enabled: z.literal(false, 'only false is supported: IPv6 is off (sysctl and an ip6 drop policy)'),
  }),
  netns: netnsSettings,
  time: timeSettings,
  image: imageSettings,
});

export type PolicyInput = z.input<typeof policySchema>;
export type PolicyDocument = z.output<typeof policySchema>;
export type User = z.output<typeof user>;
export type UserRole = z.output<typeof userRole>;
export type SocksPortInput = z.output<typeof socksPort>;
export type Listener = z.output<typeof listener>;
export type Namespace = z.output<typeof namespace>;

// Test helpers shipped next to the API (cdk8s' Testing): the default policy
// as a plain object to mutate, parsed, and parsed after one change.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parsePolicy } from './validate.js';
import type { Policy } from './policy.js';
import { defaultProfilePath } from './profile.js';

/** The policy as parsed YAML, before validation: a test reaches into it at any depth to break one field. */
// biome-ignore lint/suspicious/noExplicitAny: unvalidated input has no type yet; validation is what gives it one
export type RawPolicy = Record<string, any>;

/** A fresh deep copy of the shipped default profile as a plain object. */
export function defaultPolicyInput(): RawPolicy {
  return parse(readFileSync(defaultProfilePath(), 'utf8'));
}

/** The default profile after `mutate`, validated like any policy: a variant that breaks a rule throws here, not in the test using it. */
export function policyWith(mutate: (p: RawPolicy) => void = () => {}): Policy {
  const input = defaultPolicyInput();
  mutate(input);
  const r = parsePolicy(input);
  if (!r.ok) throw new Error(`test policy invalid: ${r.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  return r.policy;
}

export function defaultPolicy(): Policy {
  return policyWith();
}

export type InvalidCase = { name: string; mutate: (p: RawPolicy) => void; path: string; message: RegExp };

// Each case breaks the default profile in one way; validation must name the
// field and say why in one line.
export const invalidCases: InvalidCase[] = [
  {
    name: 'port collision',
    mutate: (p) => (p.tor.controlPort.port = 9050),
    path: 'tor.controlPort.port',
    message: /tcp 127\.0\.0\.1:9050 is already used by tor\.socksPorts\[0\]/,
  },
  { name: 'duplicate uid', mutate: (p) => (p.users[2].uid = 1000), path: 'users[2].uid', message: /uid 1000 is already used/ },
  {
    name: 'unknown principal referenced',
    mutate: (p) => p.tor.socksPorts[0].clients.push('mallory'),
    path: 'tor.socksPorts[0].clients[2]',
    message: /unknown principal "mallory"/,
  },
  { name: 'invalid user name', mutate: (p) => (p.users[1].name = 'Amnesia!'), path: 'users[1].name', message: /not a valid unix user name/ },
  { name: 'newline in a string', mutate: (p) => (p.image.hostname = 'amnesia\nevil'), path: 'image.hostname', message: /newline or control character/ },
  { name: 'control character in a string', mutate: (p) => (p.release.version = '0.1\u0007'), path: 'release.version', message: /newline or control character/ },
  { name: 'IPv4 where IPv6 is expected', mutate: (p) => (p.lan.ipv6Ranges[0] = '10.0.0.0/8'), path: 'lan.ipv6Ranges[0]', message: /must be an IPv6 CIDR/ },
  {
    name: 'IPv6 where IPv4 is expected',
    mutate: (p) => (p.tor.controlPort.address = '::1'),
    path: 'tor.controlPort.address',
    message: /must be an IPv4 address/,
  },
  {
    name: 'LAN range overlapping the internal range',
    mutate: (p) => p.lan.ipv4Ranges.push('10.200.1.0/28'),
    path: 'lan.ipv4Ranges[3]',
    message: /overlaps the internal netns range/,
  },
  { name: 'port out of range', mutate: (p) => (p.tor.dnsPort.port = 70000), path: 'tor.dnsPort.port', message: /port must be 1-65535/ },
  { name: 'missing required field', mutate: (p) => delete p.tor.transPort, path: 'tor.transPort', message: /^is required$/ },
  { name: 'unknown field', mutate: (p) => (p.tor.socksPort = 9050), path: 'tor.socksPort', message: /^unknown field$/ },
  { name: 'wrong type', mutate: (p) => (p.tor.dnsPort.port = '5353'), path: 'tor.dnsPort.port', message: /expected number, got string/ },
  { name: 'empty list where one is required', mutate: (p) => (p.tor.socksPorts = []), path: 'tor.socksPorts', message: /at least one SocksPort/ },
  {
    name: 'namespace subnet not a /30',
    mutate: (p) => (p.netns.namespaces[0].subnet = '10.200.1.0/29'),
    path: 'netns.namespaces[0].subnet',
    message: /must be a \/30/,
  },
  {
    name: 'namespace outside the internal range',
    mutate: (p) => (p.netns.namespaces[1].subnet = '10.201.0.0/30'),
    path: 'netns.namespaces[1].subnet',
    message: /not inside netns.internalRange/,
  },
  {
    name: 'Tor port on a non-loopback address',
    mutate: (p) => (p.tor.socksPorts[0].address = '192.168.1.10'),
    path: 'tor.socksPorts[0].address',
    message: /not a loopback address/,
  },
  { name: 'second tor-daemon user', mutate: (p) => (p.users[3].role = 'tor-daemon'), path: 'users', message: /exactly one user must have role tor-daemon/ },
  {
    name: 'pre-Tor check as a non-clearnet user',
    mutate: (p) => (p.time.preTorCheck.user = 'amnesia'),
    path: 'time.preTorCheck.user',
    message: /must have role clearnet/,
  },
  {
    name: 'htpdate user not a client of its SocksPort',
    mutate: (p) => (p.time.htpdate.socksPort = 'system'),
    path: 'time.htpdate.socksPort',
    message: /not a client of SocksPort "system"/,
  },
  { name: 'DNSPort on 53 (redirect loop)', mutate: (p) => (p.tor.dnsPort.port = 53), path: 'tor.dnsPort.port', message: /must not be 53/ },
  { name: 'IPv6 enabled', mutate: (p) => (p.ipv6.enabled = true), path: 'ipv6.enabled', message: /only false is supported/ },
  // Typos that would open a hole rather than break the build (docs/threat-model.md#policy-typos).
  {
    name: 'a public range as LAN (1.0.0.0/8 next to 10.0.0.0/8)',
    mutate: (p) => (p.lan.ipv4Ranges = ['10.0.0.0/8', '1.0.0.0/8']),
    path: 'lan.ipv4Ranges[1]',
    message: /1\.0\.0\.0\/8 is outside private, link-local and CGNAT space .* lan\.allowPublicRanges/,
  },
  {
    name: 'a large part of the Internet as LAN, even acknowledged',
    mutate: (p) => {
      p.lan.ipv4Ranges = ['10.0.0.0/8', '0.0.0.0/5'];
      p.lan.allowPublicRanges = ['0.0.0.0/5'];
    },
    path: 'lan.ipv4Ranges[1]',
    message: /overlaps "this network" 0\.0\.0\.0\/8, which is never LAN/,
  },
  { name: 'multicast as LAN', mutate: (p) => p.lan.ipv4Ranges.push('224.0.0.0/4'), path: 'lan.ipv4Ranges[3]', message: /overlaps multicast/ },
  {
    name: 'a public-range override for a range that is not LAN',
    mutate: (p) => (p.lan.allowPublicRanges = ['1.0.0.0/8']),
    path: 'lan.allowPublicRanges[0]',
    message: /1\.0\.0\.0\/8 is not in lan\.ipv4Ranges/,
  },
  {
    name: 'an IPv6 LAN range in global unicast space',
    mutate: (p) => (p.lan.ipv6Ranges = ['2000::/3']),
    path: 'lan.ipv6Ranges[0]',
    message: /outside unique-local and link-local space/,
  },
  { name: 'no LAN service blocked', mutate: (p) => (p.lan.blockedServices = []), path: 'lan.blockedServices', message: /must refuse tcp\/53/ },
  {
    name: 'LAN DNS over UDP not blocked',
    mutate: (p) => (p.lan.blockedServices = p.lan.blockedServices.filter((b: { protocol: string }) => b.protocol !== 'udp')),
    path: 'lan.blockedServices',
    message: /must refuse udp\/53/,
  },
  {
    name: 'an unknown Debian suite',
    mutate: (p) => (p.image.suite = 'wheezy'),
    path: 'image.suite',
    message: /"wheezy" is not a suite the image is built and tested on/,
  },
  {
    name: 'a host name NetworkManager would send in DHCP',
    mutate: (p) => (p.image.hostname = 'amnesia'),
    path: 'image.hostname',
    message: /"amnesia" would go out in the DHCP requests of any NetworkManager profile made after boot/,
  },
  {
    name: 'a host name that only starts like localhost',
    mutate: (p) => (p.image.hostname = 'localhost-bench'),
    path: 'image.hostname',
    message: /"localhost-bench" would go out in the DHCP requests/,
  },
  {
    name: 'the internal namespace range in public space',
    mutate: (p) => {
      p.netns.internalRange = '100.200.1.0/24';
      p.netns.namespaces[0].subnet = '100.200.1.0/30';
      p.netns.namespaces[1].subnet = '100.200.1.16/30';
    },
    path: 'netns.internalRange',
    message: /must lie inside private space/,
  },
  {
    name: 'a SocksPort inside the automap range',
    mutate: (p) => (p.tor.automapRange = '127.0.0.0/8'),
    path: 'tor.socksPorts[0].address',
    message: /must not lie inside tor\.automapRange/,
  },
  {
    name: 'the bulk SocksPort on the desktop user’s loopback allowlist',
    mutate: (p) => {
      p.loopback.mode = 'allowlist';
      p.loopback.allowedTcpPorts = [9063];
    },
    path: 'loopback.allowedTcpPorts[0]',
    message: /9063 is SocksPort "bulk", which amnesia is not a client of/,
  },
  {
    name: 'the desktop user as a ControlPort client',
    mutate: (p) => p.tor.controlPort.clients.push('amnesia'),
    path: 'tor.controlPort.clients[1]',
    message: /"amnesia" has role desktop: the ControlPort can reconfigure tor/,
  },
  {
    name: 'the pre-Tor check aimed at a LAN address',
    mutate: (p) => (p.time.preTorCheck.url = 'http://192.168.1.1/hotspot.txt'),
    path: 'time.preTorCheck.url',
    message: /host 192\.168\.1\.1 is not on the Internet/,
  },
  {
    name: 'the pre-Tor check aimed at a local name',
    mutate: (p) => (p.time.preTorCheck.url = 'http://localhost:9052/'),
    path: 'time.preTorCheck.url',
    message: /host "localhost" is a single label/,
  },
  {
    name: 'the pre-Tor check aimed at an onion name',
    mutate: (p) => (p.time.preTorCheck.url = 'http://expyuzz4wqqyqhjn.onion/'),
    path: 'time.preTorCheck.url',
    message: /is a \.onion name/,
  },
  { name: 'root’s group for another user', mutate: (p) => (p.users[4].gid = 0), path: 'users[4].gid', message: /gid 0 is root’s group/ },
  {
    name: 'a namespace run as the desktop user',
    mutate: (p) => (p.netns.namespaces[0].user = 'amnesia'),
    path: 'netns.namespaces[0].user',
    message: /"amnesia" must have role netns \(has desktop\)/,
  },
  {
    name: 'two namespaces run as one user',
    mutate: (p) => (p.netns.namespaces[1].user = 'ns-tbb'),
    path: 'netns.namespaces[1].user',
    message: /"ns-tbb" already runs netns\.namespaces\[0\]/,
  },
  {
    name: 'a namespace run as an unknown user',
    mutate: (p) => (p.netns.namespaces[0].user = 'mallory'),
    path: 'netns.namespaces[0].user',
    message: /unknown principal "mallory"/,
  },
  {
    name: 'the system bus on a namespace’s socket allowlist',
    mutate: (p) => p.netns.namespaces[0].sockets.push('/var/run/dbus/system_bus_socket'),
    path: 'netns.namespaces[0].sockets[1]',
    message: /must be an absolute path under \/tmp or \/run/,
  },
  {
    name: 'a socket path that climbs out of /run',
    mutate: (p) => (p.netns.namespaces[1].sockets = ['/run/../home/amnesia/.gnupg/S.gpg-agent']),
    path: 'netns.namespaces[1].sockets[0]',
    message: /no \. or \.\. component/,
  },
];

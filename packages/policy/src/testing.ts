// Test helpers shipped next to the API (cdk8s' Testing): the default policy
// as a plain object to mutate, parsed, and parsed after one change.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parsePolicy } from './validate.js';
import type { Policy } from './policy.js';
import { defaultProfilePath } from './profile.js';

/** A fresh deep copy of the shipped default profile as a plain object. */
export function defaultPolicyInput(): Record<string, any> {
  return parse(readFileSync(defaultProfilePath(), 'utf8'));
}

/** The default profile after `mutate`, validated like any policy: a variant that breaks a rule throws here, not in the test using it. */
export function policyWith(mutate: (p: Record<string, any>) => void = () => {}): Policy {
  const input = defaultPolicyInput();
  mutate(input);
  const r = parsePolicy(input);
  if (!r.ok) throw new Error(`test policy invalid: ${r.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  return r.policy;
}

export function defaultPolicy(): Policy {
  return policyWith();
}

export type InvalidCase = { name: string; mutate: (p: Record<string, any>) => void; path: string; message: RegExp };

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
];

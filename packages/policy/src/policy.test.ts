import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { defaultPolicy, defaultPolicyInput } from './testing.js';
import { parsePolicy } from './validate.js';
import { policyJsonSchema } from './json-schema.js';

// The default profile must reproduce the Tails matrix (docs/threat-model.md#tails-matrix) exactly.
describe('default policy views', () => {
  const p = defaultPolicy();

  it('has the Tails principals with fixed uids', () => {
    expect(p.users.map((u) => [u.name, u.uid, u.gid, u.role])).toEqual([
      ['root', 0, 0, 'admin'],
      ['_apt', 42, 65534, 'service'],
      ['debian-tor', 106, 112, 'tor-daemon'],
      ['clearnet', 114, 123, 'clearnet'],
      ['htp', 116, 124, 'service'],
      ['ns-tbb', 117, 125, 'netns'],
      ['ns-clearnet', 118, 126, 'netns'],
      ['amnesia', 1000, 1000, 'desktop'],
    ]);
    expect(p.torUser.name).toBe('debian-tor');
    expect(p.desktopUser.uid).toBe(1000);
    expect(p.clearnetUsers.map((u) => u.name)).toEqual(['clearnet']);
  });

  it('resolves the four SocksPorts, the browser one on its namespace veth', () => {
    expect(p.socksPorts.map((s) => [s.name, `${s.address}:${s.port}`, s.isolation.join(' ')])).toEqual([
      ['system', '127.0.0.1:9050', 'IsolateDestAddr IsolateDestPort'],
      ['apps', '127.0.0.1:9062', 'IsolateDestAddr IsolateDestPort'],
      ['bulk', '127.0.0.1:9063', ''],
      ['browser', '10.200.1.1:9050', 'IsolateSOCKSAuth KeepAliveIsolateSOCKSAuth'],
    ]);
    expect(p.namespaces.find((n) => n.name === 'tbb')?.socksPort?.name).toBe('browser');
  });

  it('has ControlPort, DNSPort, TransPort and the automap range', () => {
    expect([p.controlPort, p.dnsPort, p.transPort].map((l) => `${l.protocol} ${l.address}:${l.port} ${l.clients.map((c) => c.name).join(',')}`)).toEqual([
      'tcp 127.0.0.1:9052 root',
      'udp 127.0.0.1:5353 amnesia,htp,root',
      'tcp 127.0.0.1:9040 amnesia',
    ]);
    expect(p.automapRange).toBe('127.192.0.0/10');
  });

  it('derives the desktop user’s loopback blocklist: ControlPort and the bulk SocksPort', () => {
    expect(p.desktopDeniedTcpPorts).toEqual([9052, 9063]);
  });

  it('derives namespace addresses from each /30', () => {
    expect(p.namespaces.map((n) => [n.name, n.kind, n.hostVeth, n.hostAddress, n.guestAddress])).toEqual([
      ['tbb', 'tor-only', 'veth-tbb', '10.200.1.1', '10.200.1.2'],
      ['clearnet', 'clearnet', 'veth-clearnet', '10.200.1.17', '10.200.1.18'],
    ]);
  });

  it('gives each namespace its own user, home and socket allowlist', () => {
    expect(p.namespaces.map((n) => [n.name, n.user.name, n.user.uid, n.home, n.sockets])).toEqual([
      ['tbb', 'ns-tbb', 117, '/home/ns-tbb', ['/tmp/.X11-unix/X0']],
      ['clearnet', 'ns-clearnet', 118, '/home/ns-clearnet', ['/tmp/.X11-unix/X0']],
    ]);
    expect(new Set(p.namespaces.map((n) => n.user.uid)).has(p.desktopUser.uid)).toBe(false);
  });

  it('accepts a public LAN range only when lan.allowPublicRanges acknowledges it', () => {
    const input = defaultPolicyInput();
    input.lan.ipv4Ranges.push('198.18.0.0/15');
    expect(parsePolicy(input).ok).toBe(false);
    input.lan.allowPublicRanges = ['198.18.0.0/15'];
    const r = parsePolicy(input);
    expect(r.ok ? [] : r.issues).toEqual([]);
    // link-local and CGNAT need no override
    const ll = defaultPolicyInput();
    ll.lan.ipv4Ranges.push('169.254.0.0/16', '100.64.0.0/10');
    expect(parsePolicy(ll).ok).toBe(true);
  });

  it('keeps the LAN ranges and their blocked services', () => {
    expect(p.lanRanges).toEqual(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']);
    expect(p.lanBlockedServices).toEqual([
      { protocol: 'tcp', port: 53 },
      { protocol: 'udp', port: 53 },
      { protocol: 'udp', port: 137 },
    ]);
  });
});

describe('JSON Schema for editors', () => {
  it('is committed and equal to the one generated from the zod schema', async () => {
    // update with: npx vitest run --project policy -u
    await expect(policyJsonSchema()).toMatchFileSnapshot('../../../image-config/policy.schema.json');
  });

  it('is valid JSON that names the top-level sections', () => {
    const s = JSON.parse(readFileSync(new URL('../../../image-config/policy.schema.json', import.meta.url), 'utf8'));
    expect(Object.keys(s.properties)).toEqual(expect.arrayContaining(['users', 'tor', 'lan', 'netns', 'time']));
  });
});

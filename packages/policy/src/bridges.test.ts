import { describe, expect, it } from 'vitest';
import { parseBridgeLine, transportPlugin } from './bridges.js';
import { defaultPolicyInput, policyWith } from './testing.js';
import { formatIssue, parsePolicy } from './validate.js';

const CERT = 'AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tng5+71/AMKERgfJi00O0JJUFdeZQ';
const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const OBFS4 = `obfs4 198.51.100.40:443 ${FP} cert=${CERT} iat-mode=0`;
const SNOWFLAKE = `snowflake 192.0.2.3:80 ${FP} fingerprint=${FP} url=https://broker.example/ front=cdn.example ice=stun:stun.example:3478`;

/** The default profile with bridges (and the loopback allowlist a plugin requires). */
function withBridges(bridges: Record<string, unknown>, more: (p: ReturnType<typeof defaultPolicyInput>) => void = () => {}) {
  const p = defaultPolicyInput();
  p.tor.bridges = bridges;
  p.loopback.mode = 'allowlist';
  more(p);
  return p;
}

function issuesOf(input: unknown) {
  const r = parsePolicy(input);
  return r.ok ? [] : r.issues;
}

describe('tor.bridges', () => {
  it('is off in the default profile', () => {
    expect(policyWith().torBridges).toBeUndefined();
  });

  it('obfs4: parsed, normalised, pinned unless the policy says otherwise', () => {
    const r = parsePolicy(withBridges({ transport: 'obfs4', lines: [OBFS4.replace(FP, FP.toLowerCase())] }));
    expect(r.ok ? [] : r.issues).toEqual([]);
    if (!r.ok) return;
    const b = r.policy.torBridges!;
    expect(b.plugin).toMatchObject({ exec: '/usr/bin/obfs4proxy', package: 'obfs4proxy' });
    expect(b.pinned).toBe(true);
    expect(b.udpPorts).toBeUndefined();
    expect(b.lines).toEqual([
      {
        transport: 'obfs4',
        address: '198.51.100.40',
        port: 443,
        fingerprint: FP,
        args: [
          { key: 'cert', value: CERT },
          { key: 'iat-mode', value: '0' },
        ],
        torrc: OBFS4,
        clause: 'tor.bridges.lines[0]',
      },
    ]);
    const open = parsePolicy(withBridges({ transport: 'obfs4', lines: [OBFS4], pinEgress: false }));
    expect(open.ok && open.policy.torBridges!.pinned).toBe(false);
  });

  it('snowflake: never pinned, UDP as the policy says, package snowflake-client', () => {
    const r = parsePolicy(withBridges({ transport: 'snowflake', lines: [SNOWFLAKE], udpPorts: [19302, 3478, 3478] }));
    expect(r.ok ? [] : r.issues).toEqual([]);
    if (!r.ok) return;
    expect(r.policy.torBridges).toMatchObject({
      pinned: false,
      udpPorts: [3478, 19302],
      plugin: { exec: '/usr/bin/snowflake-client', package: 'snowflake-client' },
    });
  });

  it('vanilla: no plugin, and a plugin-free policy may keep the loopback blocklist', () => {
    const r = parsePolicy(withBridges({ transport: 'vanilla', lines: [`198.51.100.41:9001 ${FP}`] }, (p) => (p.loopback.mode = 'blocklist')));
    expect(r.ok ? [] : r.issues).toEqual([]);
    if (r.ok) expect(r.policy.torBridges).toMatchObject({ plugin: undefined, pinned: true, lines: [{ torrc: `198.51.100.41:9001 ${FP}` }] });
  });

  // Each case: one mistake, the field it must be reported at, and why.
  const cases: { name: string; input: () => unknown; path: string; message: RegExp }[] = [
    {
      name: 'unknown transport',
      input: () => withBridges({ transport: 'meek', lines: [OBFS4] }),
      path: 'tor.bridges.transport',
      message: /must be one of "obfs4", "snowflake", "vanilla"/,
    },
    {
      name: 'a transport without its package in the suite',
      input: () => withBridges({ transport: 'obfs4', lines: [OBFS4] }, (p) => (p.image.suite = 'buster')),
      path: 'tor.bridges.transport',
      message: /no Debian package for its plugin is known in suite buster/,
    },
    { name: 'no lines', input: () => withBridges({ transport: 'obfs4', lines: [] }), path: 'tor.bridges.lines', message: /at least one bridge line/ },
    {
      name: 'line of another transport',
      input: () => withBridges({ transport: 'obfs4', lines: [SNOWFLAKE] }),
      path: 'tor.bridges.lines[0]',
      message: /must start with the transport "obfs4"/,
    },
    {
      name: 'the Bridge keyword pasted along',
      input: () => withBridges({ transport: 'obfs4', lines: [`Bridge ${OBFS4}`] }),
      path: 'tor.bridges.lines[0]',
      message: /without the "Bridge" keyword/,
    },
    {
      name: 'host name instead of an address',
      input: () => withBridges({ transport: 'obfs4', lines: [OBFS4.replace('198.51.100.40', 'bridge.example')] }),
      path: 'tor.bridges.lines[0]',
      message: /bridge\.example is not an IPv4 address/,
    },
    {
      name: 'IPv6 bridge',
      input: () => withBridges({ transport: 'obfs4', lines: [OBFS4.replace('198.51.100.40', '[2001:db8::1]')] }),
      path: 'tor.bridges.lines[0]',
      message: /IPv6 is off/,
    },
    {
      name: 'port out of range',
      input: () => withBridges({ transport: 'obfs4', lines: [OBFS4.replace(':443', ':70000')] }),
      path: 'tor.bridges.lines[0]',
      message: /port 70000 is not 1-65535/,
    },
    {
      name: 'loopback bridge',
      input: () => withBridges({ transport: 'obfs4', lines: [OBFS4.replace('198.51.100.40', '127.0.0.1')] }),
      path: 'tor.bridges.lines[0]',
      message: /not a unicast address/,
    },
    {
      name: 'no fingerprint',
      input: () => withBridges({ transport: 'obfs4', lines: [OBFS4.replace(`${FP} `, '')] }),
      path: 'tor.bridges.lines[0]',
      message: /is not a fingerprint/,
    },
    {
      name: 'short fingerprint',
      input: () => withBridges({ transport: 'vanilla', lines: [`198.51.100.41:9001 ${FP.slice(1)}`] }),
      path: 'tor.bridges.lines[0]',
      message: /is not a fingerprint/,
    },
    {
      name: 'obfs4 cert of the wrong length',
      input: () => withBridges({ transport: 'obfs4', lines: [OBFS4.replace(CERT, CERT.slice(2))] }),
      path: 'tor.bridges.lines[0]',
      message: /cert= must be 70 base64 characters/,
    },
    {
      name: 'obfs4 without iat-mode',
      input: () => withBridges({ transport: 'obfs4', lines: [OBFS4.replace(' iat-mode=0', '')] }),
      path: 'tor.bridges.lines[0]',
      message: /missing "iat-mode="/,
    },
    {
      name: 'obfs4 iat-mode out of range',
      input: () => withBridges({ transport: 'obfs4', lines: [OBFS4.replace('iat-mode=0', 'iat-mode=3')] }),
      path: 'tor.bridges.lines[0]',
      message: /iat-mode= must be 0, 1 or 2/,
    },
    {
      name: 'an argument the bookworm plugin does not know (a newer Tor Browser line)',
      input: () => withBridges({ transport: 'snowflake', lines: [SNOWFLAKE.replace('front=', 'fronts=')], udpPorts: 'any' }),
      path: 'tor.bridges.lines[0]',
      message: /snowflake-client 2\.5\.1 does not know "fronts="/,
    },
    {
      name: 'argument on a vanilla bridge',
      input: () => withBridges({ transport: 'vanilla', lines: [`198.51.100.41:9001 ${FP} cert=${CERT}`] }),
      path: 'tor.bridges.lines[0]',
      message: /vanilla bridge takes no transport arguments/,
    },
    {
      name: 'the same bridge twice',
      input: () => withBridges({ transport: 'obfs4', lines: [OBFS4, OBFS4] }),
      path: 'tor.bridges.lines[1]',
      message: /198\.51\.100\.40:443 is already tor\.bridges\.lines\[0\]/,
    },
    {
      name: 'reachablePorts with a fronted transport',
      input: () => withBridges({ transport: 'snowflake', lines: [SNOWFLAKE], udpPorts: 'any' }, (p) => (p.tor.reachablePorts = [443])),
      path: 'tor.reachablePorts',
      message: /must be absent with snowflake: its traffic goes to a domain front/,
    },
    {
      name: 'a pinned bridge on a port tor may not reach',
      input: () => withBridges({ transport: 'obfs4', lines: [OBFS4] }, (p) => (p.tor.reachablePorts = [9001])),
      path: 'tor.bridges.lines[0]',
      message: /port 443 is not in tor\.reachablePorts/,
    },
    {
      name: 'snowflake pinned',
      input: () => withBridges({ transport: 'snowflake', lines: [SNOWFLAKE], udpPorts: 'any', pinEgress: true }),
      path: 'tor.bridges.pinEgress',
      message: /nothing to pin/,
    },
    {
      name: 'snowflake without UDP',
      input: () => withBridges({ transport: 'snowflake', lines: [SNOWFLAKE] }),
      path: 'tor.bridges.udpPorts',
      message: /required for snowflake/,
    },
    {
      name: 'UDP for obfs4',
      input: () => withBridges({ transport: 'obfs4', lines: [OBFS4], udpPorts: 'any' }),
      path: 'tor.bridges.udpPorts',
      message: /obfs4 uses TCP only/,
    },
    {
      name: 'a plugin with the loopback blocklist',
      input: () => withBridges({ transport: 'obfs4', lines: [OBFS4] }, (p) => (p.loopback.mode = 'blocklist')),
      path: 'loopback.mode',
      message: /must be allowlist with obfs4: the plugin's SOCKS port/,
    },
    {
      name: 'a plugin and an allowed loopback port in the ephemeral range',
      input: () => withBridges({ transport: 'obfs4', lines: [OBFS4] }, (p) => (p.loopback.allowedTcpPorts = [631, 40000])),
      path: 'loopback.allowedTcpPorts[1]',
      message: /40000 is in the ephemeral range/,
    },
  ];

  it.each(cases)('refuses: $name', ({ input, path, message }) => {
    const issues = issuesOf(input());
    const hit = issues.find((i) => i.path === path);
    expect(hit, `issues were: ${issues.map(formatIssue).join(' | ')}`).toBeDefined();
    expect(hit!.message).toMatch(message);
    for (const i of issues) expect(formatIssue(i)).not.toMatch(/\n/);
  });
});

describe('parseBridgeLine', () => {
  it('needs the plugin of the transport to check arguments', () => {
    const p = transportPlugin('bookworm', 'obfs4');
    expect(parseBridgeLine(OBFS4, 'obfs4', p)).toMatchObject({ ok: true });
    expect(parseBridgeLine(`198.51.100.41:9001 ${FP}`, 'vanilla', undefined)).toMatchObject({ ok: true });
    expect(parseBridgeLine(`obfs4 198.51.100.41:9001 ${FP}`, 'vanilla', undefined)).toMatchObject({ ok: false, message: /another transport/ });
    expect(transportPlugin('bookworm', 'vanilla')).toBeUndefined();
  });
});

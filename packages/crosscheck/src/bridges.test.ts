// crosscheck.tor-bridges on tor's own parse of the emitted torrc and the
// firewall AST, for each transport, and one planted disagreement per
// direction: the torrc uses what the firewall refuses, the firewall opens
// what the torrc does not use.
import * as firewall from '@leakless/firewall';
import { insertBefore, mapRules, type Rule } from '@leakless/nft';
import { buildTree, hostToolRunner, memoryTree, type GeneratedFile, type Policy } from '@leakless/policy';
import { policyWith } from '@leakless/policy/testing';
import * as resolver from '@leakless/resolver';
import { needTool, skipUnless } from '@leakless/testing';
import * as torConfig from '@leakless/tor-config';
import { describe, expect, it } from 'vitest';
import { bridgeProblems, consistencyProblems, crossModuleAssertions, torBridges } from './index.js';

const CERT = 'AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tng5+71/AMKERgfJi00O0JJUFdeZQ';
const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const OBFS4 = `obfs4 198.51.100.40:443 ${FP} cert=${CERT} iat-mode=0`;
const SNOWFLAKE = `snowflake 192.0.2.3:80 ${FP} url=https://broker.example/ front=cdn.example ice=stun:stun.example:3478`;

const bridged = (bridges: Record<string, unknown>): Policy =>
  policyWith((d) => {
    d.tor.bridges = bridges;
    if (bridges.transport !== 'vanilla') d.loopback.mode = 'allowlist';
  });
const variants: [string, Policy][] = [
  ['no bridges', policyWith()],
  ['obfs4 pinned', bridged({ transport: 'obfs4', lines: [OBFS4] })],
  ['obfs4 unpinned', bridged({ transport: 'obfs4', lines: [OBFS4], pinEgress: false })],
  ['vanilla pinned', bridged({ transport: 'vanilla', lines: [`198.51.100.41:9001 ${FP}`, `203.0.113.41:443 ${FP}`] })],
  ['snowflake', bridged({ transport: 'snowflake', lines: [SNOWFLAKE], udpPorts: [3478, 19302] })],
];
const byName = (n: string) => variants.find(([k]) => k === n)![1];

const noTor = skipUnless('the crosscheck bridge tests that run tor', needTool('tor', ['--version'], 'tools/leakless/install-deps.sh test installs tor'));

async function dumpOf(p: Policy, extra: readonly GeneratedFile[] = []) {
  const files = [...torConfig.emit(p).files, ...resolver.emit(p).files, ...extra];
  const tree = memoryTree(buildTree([{ ...torConfig.emit(p), files }]));
  const r = await torConfig.runTor('dump', tree, hostToolRunner);
  expect(r.ok, r.problem).toBe(true);
  return { dump: torConfig.parseDump(r.stdout), tree };
}
const dropIn = (content: string): GeneratedFile => ({ path: `${torConfig.TORRC_D}/50-local.conf`, content, mode: 0o644, clause: 'test' });

describe('torBridges', () => {
  it('reads transport, address and port of each Bridge line', () => {
    const d = new Map([['Bridge', [OBFS4, `198.51.100.41:9001 ${FP}`]]]);
    expect(torBridges(d).map(({ transport, address, port }) => ({ transport, address, port }))).toEqual([
      { transport: 'obfs4', address: '198.51.100.40', port: 443 },
      { transport: undefined, address: '198.51.100.41', port: 9001 },
    ]);
  });
});

describe.skipIf(noTor)('crosscheck.tor-bridges: tor.bridges × torrc × firewall', () => {
  it.each(variants)('%s: they agree, and so does the rest of the cross-module check', async (_, p) => {
    const { dump, tree } = await dumpOf(p);
    expect(bridgeProblems(dump, firewall.ruleset(p), p)).toEqual([]);
    expect(consistencyProblems(dump, firewall.ruleset(p), p, tree)).toEqual([]);
    const a = crossModuleAssertions(p).find((x) => x.id === 'crosscheck.tor-bridges')!;
    expect(await a.check({ tree, policy: p, run: hostToolRunner })).toMatchObject({ ok: true });
  });

  it('anti-test, torrc → firewall: a bridge added in torrc.d that the firewall does not open', async () => {
    const p = byName('obfs4 pinned');
    const extra = `Bridge obfs4 203.0.113.50:443 ${FP} cert=${CERT} iat-mode=0\n`;
    const { dump } = await dumpOf(p, [dropIn(extra)]);
    expect(bridgeProblems(dump, firewall.ruleset(p), p)).toEqual([
      expect.stringMatching(/tor may use the bridge "obfs4 203\.0\.113\.50:443 .*", which tor.bridges does not list/),
      expect.stringMatching(/tor may use the bridge 203\.0\.113\.50:443, the firewall stops the tor user there/),
    ]);
    // … and a firewall that lost the bridge's rule, with the torrc untouched
    const own = await dumpOf(p);
    const noBridge = mapRules(
      firewall.ruleset(p),
      (r) => r.clause.startsWith('tor.bridges.lines[0]'),
      () => [],
    );
    expect(bridgeProblems(own.dump, noBridge, p)).toEqual([
      expect.stringMatching(/tor may use the bridge 198\.51\.100\.40:443, the firewall stops the tor user/),
    ]);
  });

  it('anti-test, firewall → torrc: the firewall opens more for the tor user than its bridges', async () => {
    const p = byName('obfs4 pinned');
    const { dump } = await dumpOf(p);
    const tor = p.torUser.uid;
    const t = firewall.ruleset(p);
    const extra: Rule = {
      match: {
        oif: { name: 'lo', negate: true },
        daddr: { addrs: ['203.0.113.1'] },
        protocol: 'tcp',
        dport: { ports: [443] },
        tcpSyn: true,
        skuid: tor,
        ctState: ['new'],
      },
      verdict: { kind: 'accept' },
      clause: 'planted: a relay for the tor user',
    };
    const planted = insertBefore(t, 'output', (r) => r.clause.startsWith('default:'), [extra]);
    expect(bridgeProblems(dump, planted, p)).toEqual([
      expect.stringMatching(/firewall "planted: a relay for the tor user" lets the tor user out beyond tor's bridges/),
      expect.stringMatching(/bridges are pinned, the firewall still lets the tor user send tcp\/443 to 203\.0\.113\.1/),
    ]);
    // The unpinned ruleset (TCP anywhere, DNS) under a pinned policy: every way out beyond the bridge is named.
    const open = firewall.ruleset(byName('obfs4 unpinned'));
    expect(bridgeProblems(dump, open, p)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/new TCP out" lets the tor user out beyond tor's bridges/),
        expect.stringMatching(/DNS out" lets the tor user out beyond tor's bridges/),
        expect.stringMatching(/still lets the tor user send udp\/53/),
      ]),
    );
  });

  it('anti-tests, UDP both ways: snowflake without its UDP, UDP without snowflake, UDP for another uid', async () => {
    const sf = byName('snowflake');
    const { dump } = await dumpOf(sf);
    // the firewall of a policy with other UDP ports
    const other = bridged({ transport: 'snowflake', lines: [SNOWFLAKE], udpPorts: [3478] });
    expect(bridgeProblems(dump, firewall.ruleset(other), sf)).toEqual([
      expect.stringMatching(/udp\/19302: the firewall stops the tor user, tor.bridges.udpPorts says allow/),
    ]);
    // the torrc of the no-bridge policy with the snowflake firewall: UDP nobody's plugin uses
    const plain = await dumpOf(policyWith());
    expect(bridgeProblems(plain.dump, firewall.ruleset(sf), policyWith())).toEqual(
      expect.arrayContaining([expect.stringMatching(/udp\/3478: the firewall lets the tor user, tor.bridges.udpPorts says refuse/)]),
    );
    // the desktop user given the same UDP
    const desktop = sf.desktopUser.uid;
    const leaky = mapRules(
      firewall.ruleset(sf),
      (r) => r.clause.startsWith('tor.bridges.udpPorts'),
      (r) => [r, { ...r, match: { ...r.match, skuid: desktop }, clause: 'planted: UDP for the desktop user' }],
    );
    expect(bridgeProblems(dump, leaky, sf)).toEqual([
      expect.stringMatching(new RegExp(`udp/3478: the firewall lets uid ${desktop} out`)),
      expect.stringMatching(new RegExp(`udp/19302: the firewall lets uid ${desktop} out`)),
    ]);
  });

  it('anti-test, policy ↔ torrc: a plugin left in torrc.d, a bridge removed', async () => {
    const plainPolicy = policyWith();
    // (tor refuses the plugin under Sandbox 1, so the drop-in turns the sandbox off too)
    const { dump } = await dumpOf(plainPolicy, [dropIn('Sandbox 0\nClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy\n')]);
    expect(bridgeProblems(dump, firewall.ruleset(plainPolicy), plainPolicy)).toEqual([
      expect.stringMatching(/ClientTransportPlugin is \[obfs4 exec \/usr\/bin\/obfs4proxy\], tor.bridges says \[none\]/),
    ]);
    const v = byName('vanilla pinned');
    const one = await dumpOf(v);
    const first = new Map(one.dump);
    first.set('Bridge', one.dump.get('Bridge')!.slice(0, 1));
    expect(bridgeProblems(first, firewall.ruleset(v), v)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/tor.bridges lists "203\.0\.113\.41:443 .*", tor has no such Bridge line/),
        expect.stringMatching(/"tor.bridges.lines\[1\]: .*" lets the tor user out beyond tor's bridges/),
      ]),
    );
  });
});

// Bridges in the lab (docs/threat-model.md#bridges): the private Tor network
// gains an unpublished obfs4 bridge (Debian's tor + obfs4proxy), and the
// sut's tor, configured from the emitted files with the bridge line read from
// the bridge's state directory, bootstraps through it while a censor on the
// LAN router drops everything towards the relays and authorities. The uplink
// capture shows the bridge's obfs4 port only and no TLS handshake; a vanilla
// bridge (the same relay's ORPort) shows a ClientHello (the anti-test). With
// only the bridge blocked, bootstrap stops at the transport and nothing else
// leaves. Snowflake is never started here (its client would contact public
// addresses, Debian has no broker or server): its firewall half is proven on
// the wire with UDP sent as each uid.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as firewall from '@leakless/firewall';
import { insertBefore, renderNft, type Table } from '@leakless/nft';
import { buildTree, type Emission, type GeneratedFile, type Policy, parsePolicy } from '@leakless/policy';
import { defaultPolicyInput } from '@leakless/policy/testing';
import * as resolver from '@leakless/resolver';
import { skipUnless } from '@leakless/testing';
import * as torConfig from '@leakless/tor-config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildLab,
  type Capture,
  type Lab,
  labNeeds,
  loadNft,
  namespaceExists,
  PYTHON,
  run,
  startCapture,
  startUnitInNs,
  teardownLab,
  unitFailure,
} from '../lab/index.js';
import { type Bridge, type Censor, type HelloCapture, startBridge, startCensor, startHelloCapture } from './bridge.js';
import { classify, httpAs, type SutTor, startSutTor, startTorNet, type TorNet, type Who } from './index.js';

const skip = skipUnless(
  'the obfs4 bridge of the private Tor network (e2e/src/tornet)',
  ...labNeeds('nft', 'tcpdump', 'tor', 'tor-gencert', 'dnsmasq', 'obfs4proxy', 'ss', 'setpriv'),
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The default profile, with bridges when given (a plugin needs the loopback allowlist). */
function policyOf(bridges?: Record<string, unknown>): Policy {
  const d = defaultPolicyInput();
  if (bridges) {
    d.tor.bridges = bridges;
    if (bridges.transport !== 'vanilla') d.loopback.mode = 'allowlist';
  }
  const r = parsePolicy(d);
  if (!r.ok) throw new Error(`lab policy invalid: ${JSON.stringify(r.issues)}`);
  return r.policy;
}

function filesOf(p: Policy): readonly GeneratedFile[] {
  const emissions: Emission[] = [firewall.emit(p), torConfig.emit(p), resolver.emit(p)];
  return buildTree(emissions).files;
}

describe.skipIf(skip)('bridges: an obfs4 bridge in the private Tor network, the emitted torrc and firewall', () => {
  let lab: Lab | undefined;
  let net: TorNet | undefined;
  let bridge: Bridge | undefined;
  let censor: Censor | undefined;
  let sut: SutTor | undefined;
  const open: (Capture | HelloCapture)[] = [];
  let created: readonly string[] = [];
  const metrics: Record<string, unknown> = {};
  const t0 = Date.now();

  const blocked = () => net!.nodes.map((n) => n.address);
  const labDropIn = () => ['# lab only: use the private Tor network', 'TestingTorNetwork 1', ...net!.dirAuthorityLines].join('\n');

  /** The policy's ruleset loaded in the sut, then the sut's tor from the policy's emitted files. */
  async function startTor(p: Policy): Promise<SutTor> {
    const r = await loadNft(lab!.sut, firewall.rulesetFile(p));
    if (r.exitCode !== 0) throw new Error(`nft: ${r.stderr}`);
    sut = await startSutTor({ lab: lab!, policy: p, files: filesOf(p), labDropIn: labDropIn(), clearnetResolv: `nameserver ${lab!.addresses.lanRouter}\n` });
    return sut;
  }
  /**
   * Stop the sut's tor and wait until the kernel has finished closing its
   * connections. An orphaned socket whose FIN is not answered (the next test
   * blocks the relays first) is retransmitted for minutes from the same
   * 5-tuple, and would show up in the next test's capture as a flow to a relay.
   * Bounded: still closing after 30 s is a failure, not a pass.
   */
  async function stopTor() {
    await sut?.stop();
    sut = undefined;
    const closing = async () =>
      (
        await run(lab!, 'sut', 'ss', ['-Htn', 'state', 'established', 'state', 'syn-sent', 'state', 'fin-wait-1', 'state', 'closing', 'state', 'last-ack'])
      ).stdout
        .split('\n')
        .filter((l) => l.trim() !== '' && !/\s127\.\d+\.\d+\.\d+:\d+\s*$/.test(l));
    const deadline = Date.now() + 30_000;
    for (let left = await closing(); left.length > 0; left = await closing()) {
      if (Date.now() > deadline) throw new Error(`the sut's connections did not close within 30 s:\n${left.join('\n')}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const who = (p: Policy, name: string): Who => {
    const u = p.userByName(name);
    return { ns: lab!.sut, uid: u.uid, gid: u.gid, label: name };
  };

  beforeAll(async () => {
    const base = policyOf();
    lab = await buildLab(base);
    created = lab.created;
    net = await startTorNet({ lab, relays: 3, exits: 2, log: (l) => console.log(l) });
    bridge = await startBridge(lab, net, (l) => console.log(l));
    censor = await startCensor(lab);
    metrics.bridgeReadyMs = bridge.readyMs;
    metrics.obfs4Line = bridge.obfs4Line.replace(/cert=\S+/, 'cert=…');
    // The firewall's first load the way the image's unit does it.
    const unit = filesOf(base).find((f) => f.path === firewall.UNIT_PATH)!;
    const steps = await startUnitInNs(lab.sut, unit.content, (path) => filesOf(base).find((f) => f.path === path)?.content);
    if (unitFailure(steps)) throw new Error(`firewall unit failed: ${JSON.stringify(steps)}`);
  }, 240_000);

  afterAll(async () => {
    for (const c of open.splice(0)) await c.stop().catch(() => undefined);
    await stopTor().catch(() => undefined);
    await censor?.stop().catch(() => undefined);
    await bridge?.stop().catch(() => undefined);
    await net?.stop().catch(() => undefined);
    if (lab) await teardownLab(lab);
    metrics.leftOverNamespaces = (await Promise.all(created.map(namespaceExists))).filter(Boolean).length;
    metrics.totalMs = Date.now() - t0;
    const dir = new URL('../../../dist/lab/', import.meta.url);
    mkdirSync(dir, { recursive: true });
    writeFileSync(new URL('tornet-bridges.json', dir), `${JSON.stringify(metrics, null, 2)}\n`);
    console.log(`tornet bridges metrics: ${JSON.stringify(metrics)}`);
  }, 60_000);

  it('the bridge line comes from the bridge’s state directory and passes the policy’s validation', () => {
    expect(bridge!.obfs4Line).toMatch(new RegExp(`^obfs4 ${bridge!.address.replace(/\./g, '\\.')}:443 [0-9A-F]{40} cert=[A-Za-z0-9+/]{70} iat-mode=0$`));
    const p = policyOf({ transport: 'obfs4', lines: [bridge!.obfs4Line] });
    expect(p.torBridges).toMatchObject({ pinned: true, lines: [{ address: bridge!.address, port: 443, fingerprint: bridge!.fingerprint }] });
  });

  it('baseline in the same run: the direct tor (no bridges) bootstraps', async () => {
    await censor!.block([]);
    const s = await startTor(policyOf());
    metrics.directBootstrapMs = await s.waitBootstrapped(150_000);
    await stopTor();
  }, 180_000);

  it('obfs4, relays and authorities blocked: 100 %; the uplink shows the bridge’s obfs4 port only, no TLS handshake', async () => {
    await censor!.block(blocked());
    const p = policyOf({ transport: 'obfs4', lines: [bridge!.obfs4Line] });
    const cap = await startCapture(lab!.sut, lab!.uplink);
    const hello = await startHelloCapture(lab!.sut, lab!.uplink);
    open.push(cap, hello);
    const s = await startTor(p);
    metrics.obfs4BootstrapMs = await s.waitBootstrapped(150_000).catch((e) => {
      throw new Error(`${(e as Error).message}\nbridge:\n${bridge!.logTail()}`);
    });

    // Usable: a request through the system SocksPort reaches the lab's web site from an exit.
    const site = net!.sites[0]!;
    const path = `/bridge/${Date.now()}`;
    const socks = p.socksPorts.find((x) => x.name === 'system')!;
    const got = await httpAs(lab!, who(p, p.desktopUser.name), {
      proxy: { address: socks.address, port: socks.port },
      host: site.address,
      port: site.port,
      path,
    });
    expect(got, s.logTail()).toMatchObject({ ok: true, status: 200 });
    expect(
      net!
        .httpRequests()
        .filter((r) => r.path === path)
        .map((r) => net!.exits.some((e) => e.address === r.peer)),
    ).toEqual([true]);

    // The plugin tor started: Debian's obfs4proxy, as the tor user, under no_new_privs (the unit's NoNewPrivileges=yes).
    const ss = (await run(lab!, 'sut', 'ss', ['-H', '-ltnp'])).stdout.split('\n').find((l) => l.includes('"obfs4proxy"'));
    expect(ss, 'obfs4proxy listening in the sut').toBeDefined();
    const pid = /pid=(\d+)/.exec(ss!)![1]!;
    const status = (await run(lab!, 'sut', 'cat', [`/proc/${pid}/status`])).stdout;
    expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(p.torUser.uid));
    expect(/^NoNewPrivs:\s+(\d)/m.exec(status)?.[1]).toBe('1');
    const pluginPort = Number(/127\.0\.0\.1:(\d+)/.exec(ss!)![1]);

    // A desktop program cannot use the plugin as a proxy (loopback allowlist) …
    const asDesktop = (t: Table) =>
      loadNft(lab!.sut, renderNft(t, ['lab: variant'])).then(() =>
        httpAs(lab!, who(p, p.desktopUser.name), {
          proxy: { address: '127.0.0.1', port: pluginPort },
          host: site.address,
          port: site.port,
          path: '/plugin',
          timeoutMs: 10_000,
        }),
      );
    const refused = await asDesktop(firewall.ruleset(p));
    expect(refused).toMatchObject({ ok: false, stage: 'connect', error: 'ECONNREFUSED' });
    // … anti-test: with the blocklist's "any other 127.0.0.1 port" rule it reaches the plugin's SOCKS server.
    const planted = insertBefore(firewall.ruleset(p), 'output', (r) => r.clause.startsWith('default:'), [
      {
        match: { oif: { name: 'lo' }, daddr: { addrs: ['127.0.0.1'] }, protocol: 'tcp', skuid: p.desktopUser.uid, ctState: ['new'] },
        verdict: { kind: 'accept' },
        clause: 'planted: loopback.mode=blocklist',
      },
    ]);
    const reached = await asDesktop(planted);
    expect(reached.stage, JSON.stringify(reached)).not.toBe('connect');
    expect((await loadNft(lab!.sut, firewall.rulesetFile(p))).exitCode).toBe(0);
    metrics.pluginSocks = { desktopWithAllowlist: `${refused.stage} ${refused.error}`, desktopWithBlocklist: `${reached.stage} ${reached.error ?? ''}`.trim() };

    await stopTor();
    const packets = await cap.stop();
    const hellos = await hello.stop();
    open.splice(0);
    const flows = classify(packets, [bridge!.obfs4]);
    metrics.obfs4Capture = {
      packets: packets.length,
      toBridge: flows.filter((f) => f.cls === 'relay').reduce((n, f) => n + f.packets, 0),
      bridgeFlows: flows.filter((f) => f.cls === 'relay').length,
      other: flows.filter((f) => f.cls === 'other').map((f) => f.key),
      tlsClientHellos: hellos,
      censorDropped: await censor!.dropped(),
    };
    expect(flows.filter((f) => f.cls === 'relay').length).toBeGreaterThan(0);
    expect(
      flows.filter((f) => f.cls === 'other'),
      'flows to anything but the bridge’s obfs4 port',
    ).toEqual([]);
    expect(hellos, 'TLS ClientHellos on the wire').toEqual([]);
    // Nothing was even tried towards a relay or an authority: the censor dropped nothing.
    expect(metrics.obfs4Capture).toMatchObject({ censorDropped: 0 });
  }, 240_000);

  it('anti-test: a vanilla bridge (the same relay’s ORPort) shows a TLS ClientHello to the bridge on the wire', async () => {
    await censor!.block(blocked());
    const p = policyOf({ transport: 'vanilla', lines: [bridge!.vanillaLine] });
    const hello = await startHelloCapture(lab!.sut, lab!.uplink);
    open.push(hello);
    const s = await startTor(p);
    metrics.vanillaBootstrapMs = await s.waitBootstrapped(150_000);
    await stopTor();
    const hellos = await hello.stop();
    open.splice(0);
    metrics.vanillaTlsClientHellos = hellos;
    expect(hellos.length).toBeGreaterThan(0);
    expect(new Set(hellos)).toEqual(new Set([`${bridge!.orPort.address}:${bridge!.orPort.port}`]));
  }, 200_000);

  it('only the bridge blocked, relays reachable, the firewall open to any TCP: bootstrap stops at the transport, nothing else leaves', async () => {
    await censor!.block([bridge!.address]);
    // Not pinned: the firewall would let tor reach a relay, so only tor's own UseBridges keeps it from falling back.
    const p = policyOf({ transport: 'obfs4', lines: [bridge!.obfs4Line], pinEgress: false });
    const cap = await startCapture(lab!.sut, lab!.uplink);
    open.push(cap);
    const s = await startTor(p);
    const waited = Math.max(20_000, 4 * Number(metrics.obfs4BootstrapMs ?? 5000));
    await sleep(waited);
    const progress = s.progress();
    const state = s.lastBootstrap();
    const log = s.logTail(40);
    await stopTor();
    const packets = await cap.stop();
    open.splice(0);
    const flows = classify(packets, [bridge!.obfs4]);
    metrics.bridgeBlocked = {
      waitedMs: waited,
      progress,
      state,
      flows: flows.filter((f) => f.cls !== 'link-layer').map((f) => `${f.key} ×${f.packets}`),
      censorDropped: await censor!.dropped(),
    };
    expect(progress, log).toBeLessThan(100);
    // tor's own account: stuck connecting to the bridge through the transport, and it names the bridge.
    expect(state, log).toMatch(/\((conn_pt|conn_done_pt|conn_proxy|conn_done_proxy|handshake)\)/);
    expect(log).toMatch(new RegExp(`${bridge!.address.replace(/\./g, '\\.')}:${bridge!.obfs4.port}`));
    expect(
      flows.filter((f) => f.cls === 'other'),
      'anything but the bridge (a relay, an authority, DNS)',
    ).toEqual([]);
    expect(flows.filter((f) => f.cls === 'relay').length, 'the attempts towards the bridge are on the wire').toBeGreaterThan(0);
    expect(await censor!.dropped()).toBeGreaterThan(0);
  }, 120_000);

  it('snowflake (its client never started here): UDP leaves only for the tor user and only to the policy’s port, on the wire', async () => {
    const p = policyOf({
      transport: 'snowflake',
      lines: [`snowflake 192.0.2.3:80 ${'0'.repeat(40)} url=https://broker.example/ front=cdn.example ice=stun:stun.example:3478`],
      udpPorts: [3478],
    });
    expect((await loadNft(lab!.sut, firewall.rulesetFile(p))).exitCode).toBe(0);
    await censor!.block([]);
    const cap = await startCapture(lab!.sut, lab!.uplink);
    open.push(cap);
    const senders = [...p.users.map((u) => ({ label: u.name, uid: u.uid, gid: u.gid })), { label: 'unnamed', uid: firewall.unnamedUid(p), gid: 65534 }];
    const sent: string[] = [];
    for (const s of senders)
      for (const port of [3478, 3479]) {
        const token = `lk-udp-${s.label}-${port}`;
        const r = await run(
          lab!,
          'sut',
          PYTHON,
          [
            '-I',
            '-c',
            'import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ntry: s.sendto(sys.argv[3].encode(),(sys.argv[1],int(sys.argv[2])))\nexcept OSError: pass',
            bridge!.address,
            String(port),
            token,
          ],
          { as: { uid: s.uid, gid: s.gid }, timeoutMs: 10_000 },
        );
        if (r.exitCode !== 0) throw new Error(`udp sender as ${s.label}: exit ${r.exitCode}: ${r.stderr}`);
        sent.push(token);
      }
    await sleep(300);
    const packets = await cap.stop();
    open.splice(0);
    const udpOut = packets.filter((x) => x.proto === 17 && x.dst === bridge!.address).map((x) => x.token);
    metrics.snowflakeUdp = { sent: sent.length, left: udpOut };
    expect(udpOut).toEqual([`lk-udp-${p.torUser.name}-3478`]);
    expect((await loadNft(lab!.sut, firewall.rulesetFile(policyOf()))).exitCode).toBe(0);
  }, 60_000);
});

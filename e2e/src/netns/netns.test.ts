// The netns module proven with real packets: the emitted setup script (the
// same bytes as chroot-includes/) creates the namespaces inside the lab's sut,
// the launcher runs probes in them as the desktop user, listeners and a
// capture on the sut's uplink say what arrived. Anti-tests plant one defect
// each and the same checks must report it.

import { join } from 'node:path';
import * as firewall from '@leakless/firewall';
import * as netns from '@leakless/netns';
import type { GeneratedFile, RuntimeAssertion } from '@leakless/policy';
import { defaultPolicy } from '@leakless/policy/testing';
import { type Exec, evaluateRuntime } from '@leakless/selftest';
import { skipUnless } from '@leakless/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Lab, type LabAddresses, labArgv, labNeeds, run, sh, teardownLab } from '../lab/index.js';
import { capture, createLab, type From, installNetns, type ProbeResult, probe, type ServerSpec, type Servers, startServers, token } from './harness.js';
import { clearnetProbes, hostPorts, judge, type NsProbe, torOnlyProbes, type Verdict } from './probes.js';

const policy = defaultPolicy();
const emitted = netns.emit(policy);
const fileOf = (path: string): GeneratedFile => {
  const f = emitted.files.find((x) => x.path === path);
  if (!f) throw new Error(`netns emitted no ${path}`);
  return f;
};
const torOnly = policy.namespaces.filter((n) => n.kind === 'tor-only');
const clearnet = policy.namespaces.filter((n) => n.kind === 'clearnet');
const tbb = torOnly[0]!;
const cn = clearnet[0]!;
const socksPort = tbb.socksPort!.port;

// Prerequisites: root and the tools. Missing ones skip loudly here and fail in CI.
const skip = skipUnless('the netns lab (e2e/src/netns)', ...labNeeds('nft', 'tcpdump', 'hostname'));
// The host-side rules (forward + masquerade for clearnet, input from a
// tor-only veth to its SocksPort only, no host address for clearnet) are the
// firewall module's. Probes that only it can guarantee are judged with it loaded.
const fw = firewall as unknown as { rulesetFile?: (p: typeof policy) => string; UNIT_NAME?: string };
const firewallReady = typeof fw.rulesetFile === 'function';
if (!firewallReady) {
  if (process.env.CI === 'true') throw new Error('netns lab: @leakless/firewall exports no rulesetFile (CI=true)');
  console.warn('SKIPPED netns lab probes that need the host firewall: @leakless/firewall exports no rulesetFile yet');
}

const metrics = { setupMs: [] as number[], probes: 0, antiTests: 0, antiCaught: 0, tornet: 'stand-in SOCKS listener (e2e/src/tornet not used)' };

/** Install the emitted files and the users into the lab (harness.ts). */
async function install(lab: Lab): Promise<{ script: string; launcher: string }> {
  return installNetns(lab, policy, emitted);
}

/** The listeners on the LAN router and on the Internet hosts: the same set in both. */
const WORLD: readonly ServerSpec[] = [
  { kind: 'http', host: '0.0.0.0', port: 80 },
  { kind: 'http', host: '::', port: 80 },
  { kind: 'tcp', host: '0.0.0.0', port: 53 },
  { kind: 'udp', host: '0.0.0.0', port: 53 },
  { kind: 'udp', host: '::', port: 53 },
];

interface Listening {
  readonly lan: Servers;
  readonly inet: Servers;
  /** The SocksPort stand-in, as the tor user. */
  readonly socks: Servers;
  /** Every listener, for the tokens that arrived anywhere. */
  readonly all: Servers[];
}

/** Every listener the probes aim at: the LAN router, the Internet hosts, the sut (all host addresses); guests come later. */
async function startListeners(lab: Lab): Promise<Listening> {
  const { tcp, udp } = hostPorts(policy);
  const lan = await startServers(lab, 'lan', WORLD);
  const inet = await startServers(lab, 'inet', WORLD);
  // The SocksPort stand-in runs as the tor user, like tor: with the firewall loaded it is the one user allowed out.
  const socks = await startServers(lab, 'sut', [{ kind: 'socks', host: '0.0.0.0', port: socksPort }], { uid: policy.torUser.uid, gid: policy.torUser.gid });
  const sut = await startServers(lab, 'sut', [
    ...tcp.filter((p) => p !== socksPort).map((port) => ({ kind: 'tcp' as const, host: '0.0.0.0', port })),
    ...udp.map((port) => ({ kind: 'udp' as const, host: '0.0.0.0', port })),
  ]);
  return { lan, inet, socks, all: [lan, inet, socks, sut] };
}

async function guestListeners(lab: Lab): Promise<Servers[]> {
  return Promise.all(policy.namespaces.map((n) => startServers(lab, { guest: n.name }, [{ kind: 'tcp', host: '0.0.0.0', port: 8080 }])));
}

/** Control probes: each listener answers from inside its own namespace, so a blocked probe means blocked, not a dead listener. */
async function controls(
  lab: Lab,
  servers: readonly Servers[],
  from: From,
  specs: { proto: 'tcp' | 'udp' | 'http'; host: string; port: number }[],
): Promise<void> {
  const probes = specs.map((s) => ({ id: token(`control-${s.proto}-${s.port}`), ...s }));
  const results = await probe(lab, from, probes);
  await new Promise((r) => setTimeout(r, 300));
  const arrived = servers.flatMap((s) => [...s.tokens()]);
  const dead = probes.filter((p) => !arrived.includes(p.id) || (p.proto !== 'udp' && results.find((r) => r.id === p.id)?.outcome !== 'connected'));
  if (dead.length) throw new Error(`inconclusive: control probes did not arrive: ${dead.map((d) => `${d.proto} ${d.host}:${d.port}`).join(', ')}`);
}

async function loadFirewall(lab: Lab): Promise<void> {
  const r = await run(lab, 'sut', 'nft', ['-f', '-'], { input: fw.rulesetFile!(policy) });
  if (r.exitCode !== 0) throw new Error(`loading the firewall ruleset in the sut: ${r.stderr}`);
}

async function runProbes(
  lab: Lab,
  servers: readonly Servers[],
  from: From,
  probes: readonly NsProbe[],
): Promise<{ verdicts: Verdict[]; results: ProbeResult[] }> {
  const results = await probe(lab, from, probes);
  // UDP has no answer: give datagrams time to arrive before reading the listeners.
  await new Promise((r) => setTimeout(r, 400));
  const arrived = servers.flatMap((s) => [...s.tokens()]);
  metrics.probes += probes.length;
  return { verdicts: judge(probes, results, arrived), results };
}

/** From inside a policy namespace through the launcher (as the desktop user), the way an app starts. */
const launched = (launcher: string, ns: string): From => ({ where: 'sut', via: [launcher, ns, '--'] });

const wrong = (vs: readonly Verdict[]) => vs.filter((v) => v.verdict !== 'pass').map((v) => `${v.label}: ${v.verdict} (${v.detail})`);

describe.skipIf(skip)('netns in the lab: the emitted script, launcher and rules', () => {
  let lab: Lab;
  let exe: { script: string; launcher: string };
  let listening: Listening;
  let servers: Servers[] = [];
  let a: LabAddresses;
  const as = (ns: string) => launched(exe.launcher, ns);
  const inSut: From = { where: 'sut' };
  const inSutExec: Exec = (cmd, args) => run(lab, 'sut', cmd, args);

  beforeAll(async () => {
    lab = await createLab(policy);
    a = lab.addresses;
    exe = await install(lab);
    listening = await startListeners(lab);
    servers = listening.all;
    // Controls before the firewall: root in the sut may not reach these once it is loaded.
    for (const where of ['lan', 'inet'] as const)
      await controls(lab, servers, { where }, [
        { proto: 'http', host: '127.0.0.1', port: 80 },
        { proto: 'http', host: '::1', port: 80 },
        { proto: 'tcp', host: '127.0.0.1', port: 53 },
        { proto: 'udp', host: '127.0.0.1', port: 53 },
        { proto: 'udp', host: '::1', port: 53 },
      ]);
    const { tcp, udp } = hostPorts(policy);
    await controls(lab, servers, inSut, [
      ...tcp.filter((p) => p !== socksPort).map((port) => ({ proto: 'tcp' as const, host: '127.0.0.1', port })),
      ...udp.map((port) => ({ proto: 'udp' as const, host: '127.0.0.1', port })),
    ]);
    // The boot order: firewall, then the namespaces.
    if (firewallReady) await loadFirewall(lab);
    const t0 = performance.now();
    const r = await run(lab, 'sut', 'sh', [exe.script, 'start']);
    metrics.setupMs.push(performance.now() - t0);
    if (r.exitCode !== 0) throw new Error(`netns-setup start failed: ${r.stderr}`);
    servers.push(...(await guestListeners(lab)));
    for (const n of policy.namespaces) await controls(lab, servers, { where: { guest: n.name } }, [{ proto: 'tcp', host: '127.0.0.1', port: 8080 }]);
  });
  afterAll(async () => {
    if (lab) await teardownLab(lab);
  });

  it.skipIf(!firewallReady)('the firewall this unit orders after is the firewall module’s unit', () => {
    expect(netns.FIREWALL_UNIT).toBe(fw.UNIT_NAME);
  });

  it('every runtime assertion holds on the namespaces the script made (unit-active aside: no systemd in the lab)', async () => {
    const rs = await evaluateRuntime(
      emitted.runtimeAssertions.filter((a) => a.check.kind !== 'unit-active'),
      inSutExec,
    );
    expect(rs.filter((r) => !r.ok).map((r) => `${r.id}: ${r.detail}`)).toEqual([]);
    expect(rs.length).toBeGreaterThan(20);
  });

  it(`tor-only ${tbb.name}: 127.0.0.1:${socksPort} (DNAT) reaches the SocksPort and through it the Internet host; nothing else leaves`, async () => {
    const cap = await capture(lab);
    const probes = torOnlyProbes(policy, tbb, a);
    const direct = probes.filter((p) => p.expect === 'blocked');
    const { verdicts } = await runProbes(lab, servers, as(tbb.name), direct);
    const packets = await cap.stop();
    // Judged with the namespace alone; with the firewall loaded every wall is up.
    expect(wrong(verdicts)).toEqual([]);
    expect(packets, 'packets left the sut uplink during the direct probes').toEqual([]);

    // Control for the capture: the SocksPort stand-in's own connection is seen on the uplink,
    // and it is the only thing there (what tor's relay traffic will be with the private Tor network).
    const cap2 = await capture(lab);
    const socks = probes.filter((p) => p.expect === 'reach');
    const { verdicts: v2, results } = await runProbes(lab, servers, as(tbb.name), socks);
    const packets2 = await cap2.stop();
    expect(wrong(v2)).toEqual([]);
    expect(packets2.length).toBeGreaterThan(0);
    expect(packets2.filter((x) => !(x.src === a.sutLan && x.dst === a.internet4[0] && x.dport === 80))).toEqual([]);
    expect(results[0]!.body).toBe(`leakless-lab /${socks[0]!.id}`);
    // The stand-in saw the namespace's own address (masqueraded), never 127.0.0.1.
    const ev = listening.socks.events.filter((e) => e.event === 'socks' && e.target === `${a.internet4[0]}:80`);
    expect(ev.map((e) => e.remote)).toContain(tbb.guestAddress);
    expect(ev.map((e) => e.remote)).not.toContain('127.0.0.1');
  });

  it.skipIf(!firewallReady)(
    `clearnet ${cn.name}: reaches the Internet and LAN directly, never the host, the internal range or the other namespace`,
    async () => {
      const { verdicts } = await runProbes(lab, servers, as(cn.name), clearnetProbes(policy, cn, a));
      expect(wrong(verdicts)).toEqual([]);
      // masqueraded by the host: the Internet hosts see the sut's uplink address
      const http = listening.inet.events.filter((e) => e.event === 'http' && e.token?.startsWith(`${cn.name}-inet-http`));
      expect(http.length).toBe(2);
      expect(new Set(http.map((e) => e.remote))).toEqual(new Set([a.sutLan]));
    },
  );

  it(`clearnet ${cn.name}: what the namespace alone guarantees (no host firewall needed)`, async () => {
    const probes = clearnetProbes(policy, cn, a).filter((p) => p.wall === 'netns');
    const { verdicts } = await runProbes(lab, servers, as(cn.name), probes);
    expect(wrong(verdicts)).toEqual([]);
  });

  it(`clearnet ${cn.name}: nothing can connect in, from the host or its users`, async () => {
    const p: NsProbe[] = [
      { id: token('inbound'), label: 'sut-root-to-clearnet', proto: 'tcp', host: cn.guestAddress, port: 8080, expect: 'blocked', wall: 'netns' },
    ];
    const { verdicts } = await runProbes(lab, servers, inSut, p);
    expect(wrong(verdicts)).toEqual([]);
  });

  it(`inside ${tbb.name} a process sees only loopback and its /30, and the launcher gives it its own UTS namespace named "${netns.GENERIC_HOSTNAME}"`, async () => {
    const r = await probe(lab, as(tbb.name), [
      { id: 'ifaces', proto: 'ifaces' },
      { id: 'hostname', proto: 'hostname' },
    ]);
    expect(r[0]!.body).toBe(['lo 127.0.0.1/8', `veth0 ${tbb.guestAddress}/${tbb.prefix}`].sort().join(','));
    expect(r[1]!.body).toBe(netns.GENERIC_HOSTNAME);
    const host = (await run(lab, 'sut', 'hostname', [])).stdout.trim();
    expect(host).not.toBe(netns.GENERIC_HOSTNAME);
    const uts = await run(lab, 'sut', exe.launcher, [tbb.name, '--', 'readlink', '/proc/self/ns/uts']);
    const hostUts = await run(lab, 'sut', 'readlink', ['/proc/self/ns/uts']);
    expect(uts.stdout.trim()).toMatch(/^uts:\[\d+\]$/);
    expect(uts.stdout.trim()).not.toBe(hostUts.stdout.trim());
  });

  it('the launcher runs the command as the namespace’s own user, without new privileges, with a cleaned environment', async () => {
    const u = tbb.user;
    const launch = labArgv(lab, 'sut', ['sh', '-c', 'id -u; id -g; grep NoNewPrivs /proc/self/status; env'], { via: as(tbb.name).via! });
    const r = await sh('env', ['DISPLAY=:7', 'LD_PRELOAD=/tmp/evil.so', 'http_proxy=http://198.51.100.1:3128', ...launch]);
    expect(r.exitCode, r.stderr).toBe(0);
    const [uid, gid, nnp, ...env] = r.stdout.split('\n');
    expect([uid, gid]).toEqual([String(u.uid), String(u.gid)]);
    expect(nnp).toMatch(/NoNewPrivs:\s+1/);
    expect(env).toContain('DISPLAY=:7');
    expect(env).toContain(`USER=${u.name}`);
    expect(env).toContain(`HOME=${tbb.home}`);
    expect(env).toContain(`XDG_RUNTIME_DIR=/run/user/${u.uid}`);
    expect(env.join('\n')).not.toMatch(/LD_PRELOAD|http_proxy/);
    // resolv.conf inside is the namespace's, not the host's
    const resolv = await run(lab, 'sut', exe.launcher, [tbb.name, '--', 'cat', '/etc/resolv.conf']);
    expect(resolv.stdout).toBe(fileOf(`/etc/netns/${tbb.name}/resolv.conf`).content);
    const cnResolv = await run(lab, 'sut', exe.launcher, [cn.name, '--', 'cat', '/etc/resolv.conf']);
    expect(cnResolv.stdout).toBe(`nameserver ${a.lanRouter}\n`);
  });

  it('the launcher refuses unknown names, missing namespaces, root targets and non-root callers, with a clear error', async () => {
    const shIn = (...args: string[]) => run(lab, 'sut', 'sh', ['-c', `${args.join(' ')}`]);
    expect(await shIn(exe.launcher, 'nosuch', '--', 'true')).toMatchObject({ exitCode: 2, stderr: expect.stringContaining('unknown namespace "nosuch"') });
    // a valid name whose namespace is not there (as before the unit ran): an empty /run/netns
    expect(await shIn(`unshare --mount sh -c 'mount -t tmpfs none /run/netns && exec ${exe.launcher} ${tbb.name} -- true'`)).toMatchObject({
      exitCode: 1,
      stderr: expect.stringContaining(`namespace ${tbb.name} does not exist: is ${netns.UNIT} active?`),
    });
    // a passwd in which the namespace's user became root, or the desktop user
    const u = tbb.user;
    expect(
      await shIn(
        `unshare --mount sh -c "sed 's/^${u.name}:x:${u.uid}:${u.gid}:/${u.name}:x:0:0:/' /etc/passwd > ${lab.dir}/passwd && mount --bind ${lab.dir}/passwd /etc/passwd && exec ${exe.launcher} ${tbb.name} -- id"`,
      ),
    ).toMatchObject({ exitCode: 1, stderr: expect.stringContaining('refusing to run COMMAND as root') });
    const d = policy.desktopUser;
    expect(
      await shIn(
        `unshare --mount sh -c "sed 's/^${u.name}:x:${u.uid}:${u.gid}:/${u.name}:x:${d.uid}:${d.gid}:/' /etc/passwd > ${lab.dir}/passwd && mount --bind ${lab.dir}/passwd /etc/passwd && exec ${exe.launcher} ${tbb.name} -- id"`,
      ),
    ).toMatchObject({ exitCode: 1, stderr: expect.stringContaining(`${u.name} is ${d.uid}:${d.gid}, the policy says ${u.uid}:${u.gid}`) });
    expect(await shIn(`setpriv --reuid=${d.uid} --regid=${d.gid} --clear-groups ${exe.launcher} ${tbb.name} -- true`)).toMatchObject({
      exitCode: 1,
      stderr: expect.stringContaining('must be started as root'),
    });
  });

  it.skipIf(!firewallReady)('from the host, no user reaches the browser SocksPort through the internal range (open in Tails)', async () => {
    const uids = [policy.desktopUser.uid, 4242, 0];
    for (const uid of uids) {
      const p: NsProbe[] = [
        {
          id: token(`uid${uid}-socks`),
          label: `uid ${uid} -> ${tbb.hostAddress}:${socksPort}`,
          proto: 'tcp',
          host: tbb.hostAddress,
          port: socksPort,
          expect: 'blocked',
          wall: 'firewall',
        },
        {
          id: token(`uid${uid}-guest`),
          label: `uid ${uid} -> ${tbb.guestAddress}:8080`,
          proto: 'tcp',
          host: tbb.guestAddress,
          port: 8080,
          expect: 'blocked',
          wall: 'firewall',
        },
      ];
      const from: From = uid === 0 ? inSut : { where: 'sut', as: { uid, gid: uid } };
      const { verdicts } = await runProbes(lab, servers, from, p);
      expect(wrong(verdicts)).toEqual([]);
    }
  });

  it('stop removes what start made, and start works again', async () => {
    expect((await run(lab, 'sut', 'sh', [exe.script, 'stop'])).exitCode).toBe(0);
    const left = await run(lab, 'sut', 'sh', ['-c', `ls /run/netns; ip -o link show | grep -c veth- || true; ls -A /etc/netns/${cn.name} 2>/dev/null || true`]);
    expect(left.stdout.trim()).toBe('0');
    const t0 = performance.now();
    const r = await run(lab, 'sut', 'sh', [exe.script, 'start']);
    metrics.setupMs.push(performance.now() - t0);
    expect(r.exitCode, r.stderr).toBe(0);
    // a second start refuses instead of half-making things
    const again = await run(lab, 'sut', 'sh', [exe.script, 'start']);
    expect(again).toMatchObject({ exitCode: 1, stderr: expect.stringContaining(`namespace ${tbb.name} already exists`) });
    const rs = await evaluateRuntime(
      emitted.runtimeAssertions.filter((a) => a.netns !== undefined),
      inSutExec,
    );
    expect(rs.filter((x) => !x.ok)).toEqual([]);
  });

  it('a start that fails half way leaves nothing behind (no namespace, no veth, no forwarding) and exits non-zero', async () => {
    expect((await run(lab, 'sut', 'sh', [exe.script, 'stop'])).exitCode).toBe(0);
    // The last namespace's rules are missing: the script has made the first one by then.
    const last = policy.namespaces[policy.namespaces.length - 1]!;
    const nft = `${netns.NFT_DIR}/${last.name}.nft`;
    expect((await run(lab, 'sut', 'mv', [nft, `${nft}.away`])).exitCode).toBe(0);
    try {
      const r = await run(lab, 'sut', 'sh', [exe.script, 'start']);
      expect(r.exitCode).not.toBe(0);
      const left = await run(lab, 'sut', 'sh', ['-c', 'ls /run/netns; ip -o link show | grep -c veth- || true; sysctl -n net.ipv4.ip_forward']);
      expect(left.stdout.trim().split('\n')).toEqual(['0', '0']);
    } finally {
      await run(lab, 'sut', 'mv', [`${nft}.away`, nft]);
    }
    expect((await run(lab, 'sut', 'sh', [exe.script, 'start'])).exitCode).toBe(0);
  });
});

describe.skipIf(skip)('netns anti-tests: a planted defect must be caught', () => {
  let lab: Lab;
  let exe: { script: string; launcher: string };
  let servers: Servers[] = [];
  let a: LabAddresses;
  const as = (ns: string) => launched(exe.launcher, ns);
  const runtime = (ids: string[]): Promise<{ id: string; ok: boolean }[]> =>
    evaluateRuntime(
      emitted.runtimeAssertions.filter((a: RuntimeAssertion) => ids.includes(a.id)),
      (cmd, args) => run(lab, 'sut', cmd, args),
    );
  const must = async (cmd: string) => {
    const r = await run(lab, 'sut', 'sh', ['-c', cmd]);
    if (r.exitCode !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  };
  /** Every assertion of the namespaces holds again: the next anti-test starts clean. */
  const baseline = async () => {
    const rs = await evaluateRuntime(
      emitted.runtimeAssertions.filter((a) => a.check.kind !== 'unit-active'),
      (cmd, args) => run(lab, 'sut', cmd, args),
    );
    expect(rs.filter((r) => !r.ok).map((r) => r.id)).toEqual([]);
  };
  const caught = (yes: boolean) => {
    metrics.antiTests++;
    if (yes) metrics.antiCaught++;
    expect(yes).toBe(true);
  };
  const directTo = (label: string, host: string, port: number, proto: NsProbe['proto'] = 'http'): NsProbe[] => [
    { id: token(label), label, proto, host, port, expect: 'blocked', wall: 'netns' },
  ];

  beforeAll(async () => {
    lab = await createLab(policy);
    a = lab.addresses;
    exe = await install(lab);
    servers = (await startListeners(lab)).all;
    const t0 = performance.now();
    const r = await run(lab, 'sut', 'sh', [exe.script, 'start']);
    metrics.setupMs.push(performance.now() - t0);
    if (r.exitCode !== 0) throw new Error(`netns-setup start failed: ${r.stderr}`);
    servers.push(...(await guestListeners(lab)));
    await baseline();
  });
  afterAll(async () => {
    if (lab) await teardownLab(lab);
    const ms = metrics.setupMs.map((x) => Math.round(x));
    console.log(
      `netns lab: setup ${ms.join('/')} ms; ${metrics.probes} probes; anti-tests caught ${metrics.antiCaught}/${metrics.antiTests}; SocksPort: ${metrics.tornet}`,
    );
  });

  it('the namespaces alone, without the host firewall, hold every probe they are the wall for', async () => {
    const cap = await capture(lab);
    const t = await runProbes(
      lab,
      servers,
      as(tbb.name),
      torOnlyProbes(policy, tbb, a).filter((p) => p.expect === 'blocked'),
    );
    const c = await runProbes(
      lab,
      servers,
      as(cn.name),
      clearnetProbes(policy, cn, a).filter((p) => p.wall === 'netns'),
    );
    expect(await cap.stop()).toEqual([]);
    expect([...wrong(t.verdicts), ...wrong(c.verdicts)]).toEqual([]);
  });

  it('a default route planted in the tor-only namespace fails its routes assertion', async () => {
    await must(`ip -n ${tbb.name} route add default via ${tbb.hostAddress}`);
    const [r] = await runtime([`netns.${tbb.name}.routes`]);
    caught(r!.ok === false);
    await must(`ip -n ${tbb.name} route del default`);
    await baseline();
  });

  it('a route in another table (policy routing) is caught too', async () => {
    await must(`ip -n ${tbb.name} route add 0.0.0.0/1 via ${tbb.hostAddress} table 100`);
    const [r] = await runtime([`netns.${tbb.name}.routes`]);
    caught(r!.ok === false);
    await must(`ip -n ${tbb.name} route del 0.0.0.0/1 table 100`);
    await baseline();
  });

  it('a routable address planted in the tor-only namespace is seen by its assertion and by a process inside', async () => {
    await must(`ip -n ${tbb.name} addr add ${a.sutLan}/32 dev lo`);
    const [r] = await runtime([`netns.${tbb.name}.addresses`]);
    const [i] = await probe(lab, as(tbb.name), [{ id: 'ifaces', proto: 'ifaces' }]);
    caught(r!.ok === false && i!.body!.includes(a.sutLan));
    await must(`ip -n ${tbb.name} addr del ${a.sutLan}/32 dev lo`);
    await baseline();
  });

  it('IPv6 switched back on inside the tor-only namespace is caught', async () => {
    await must(`ip netns exec ${tbb.name} sysctl -q -w net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.veth0.disable_ipv6=0`);
    const rs = await runtime([`netns.${tbb.name}.sysctl.net.ipv6.conf.all.disable_ipv6`, `netns.${tbb.name}.addresses`]);
    caught(rs.every((r) => !r.ok));
    await must(`ip netns exec ${tbb.name} sysctl -q -w net.ipv6.conf.all.disable_ipv6=1`);
    await baseline();
  });

  it('without the namespace’s own rules, a host port becomes reachable from the tor-only namespace (no host firewall): the probe reports the leak', async () => {
    await must(`ip netns exec ${tbb.name} nft delete table inet ${netns.NS_TABLE}`);
    const { verdicts } = await runProbes(lab, servers, as(tbb.name), directTo('planted-host-port', tbb.hostAddress, policy.controlPort.port, 'tcp'));
    caught(verdicts[0]!.verdict === 'leak');
    if (firewallReady) {
      // The other wall alone: with the host firewall loaded the same probe is refused.
      await loadFirewall(lab);
      const again = await runProbes(lab, servers, as(tbb.name), directTo('planted-host-port-fw', tbb.hostAddress, policy.controlPort.port, 'tcp'));
      expect(wrong(again.verdicts)).toEqual([]);
      await must('nft delete table inet leakless');
    }
    await must(`ip netns exec ${tbb.name} nft -f ${join(netns.NFT_DIR, `${tbb.name}.nft`)}`);
    await baseline();
  });

  it('a full route out of the tor-only namespace (route, no namespace rules, host forwarding + masquerade, no firewall): the probe and the uplink capture report it', async () => {
    await must(
      [
        `ip -n ${tbb.name} route add default via ${tbb.hostAddress}`,
        `ip netns exec ${tbb.name} nft delete table inet ${netns.NS_TABLE}`,
        `sysctl -q -w net.ipv4.conf.${tbb.hostVeth}.forwarding=1 net.ipv4.conf.${lab.uplink}.forwarding=1`,
        `nft add table ip lkplant`,
        `nft add chain ip lkplant post '{ type nat hook postrouting priority 100; }'`,
        `nft add rule ip lkplant post ip saddr ${tbb.subnet} oifname ${lab.uplink} masquerade`,
      ].join(' && '),
    );
    if (firewallReady) {
      await loadFirewall(lab);
      const held = await runProbes(lab, servers, as(tbb.name), directTo('planted-route-fw', a.internet4[0], 80));
      expect(wrong(held.verdicts), 'the host firewall alone must refuse to forward for a tor-only namespace').toEqual([]);
      await must('nft delete table inet leakless');
    }
    const cap = await capture(lab);
    const { verdicts } = await runProbes(lab, servers, as(tbb.name), directTo('planted-route', a.internet4[0], 80));
    const packets = await cap.stop();
    caught(verdicts[0]!.verdict === 'leak' && packets.length > 0);
    await must(
      [
        'nft delete table ip lkplant',
        `sysctl -q -w net.ipv4.conf.${tbb.hostVeth}.forwarding=0`,
        `ip -n ${tbb.name} route del default`,
        `ip netns exec ${tbb.name} nft -f ${netns.NFT_DIR}/${tbb.name}.nft`,
      ].join(' && '),
    );
    await baseline();
  });

  it('without the clearnet namespace’s rules, a connection in from the host succeeds: the probe reports it', async () => {
    // (its output rules refuse the internal range, so the answer would not get out either)
    await must(`ip netns exec ${cn.name} nft delete table inet ${netns.NS_TABLE}`);
    const { verdicts } = await runProbes(lab, servers, { where: 'sut' }, directTo('planted-inbound', cn.guestAddress, 8080, 'tcp'));
    caught(verdicts[0]!.verdict === 'leak');
    await must(`ip netns exec ${cn.name} nft -f ${netns.NFT_DIR}/${cn.name}.nft`);
    await baseline();
  });

  it('without the clearnet namespace’s rules (and no host firewall), the browser SocksPort in the internal range is reachable: the probe reports it', async () => {
    await must(`ip netns exec ${cn.name} nft delete table inet ${netns.NS_TABLE}`);
    const { verdicts } = await runProbes(lab, servers, as(cn.name), directTo('planted-internal', tbb.hostAddress, socksPort, 'tcp'));
    caught(verdicts[0]!.verdict === 'leak');
    await must(`ip netns exec ${cn.name} nft -f ${netns.NFT_DIR}/${cn.name}.nft`);
    await baseline();
  });

  it('a command run in the namespace without the launcher sees the machine’s hostname: the check reports it', async () => {
    const [h] = await probe(lab, { where: { guest: tbb.name } }, [{ id: 'hostname', proto: 'hostname' }]);
    caught(h!.body !== netns.GENERIC_HOSTNAME);
  });
});

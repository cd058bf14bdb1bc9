// The netns module proven with real packets: the emitted setup script (the
// same bytes as chroot-includes/) creates the namespaces inside a lab sut, the
// launcher runs probes in them as the desktop user, listeners and a capture on
// the sut's uplink say what arrived. Anti-tests plant one defect each and the
// same checks must report it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type GeneratedFile, type RuntimeAssertion } from '@leakless/policy';
import { evaluateRuntime, type Exec } from '@leakless/selftest';
import { defaultPolicy } from '@leakless/policy/testing';
import * as netns from '@leakless/netns';
import * as firewall from '@leakless/firewall';
import { INET, LAN, capture, createLab, probe, sh, token, type Lab, type ProbeResult, type Servers } from './harness.js';
import { clearnetProbes, hostPorts, judge, torOnlyProbes, type NsProbe, type Verdict } from './probes.js';

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
const TOOLS = ['ip', 'nft', 'nsenter', 'unshare', 'setpriv', 'tcpdump', 'hostname'];
const missing = [
  ...(process.getuid?.() === 0 ? [] : ['root']),
  ...(await Promise.all(TOOLS.map(async (t) => ((await sh('sh', ['-c', `command -v ${t}`])).exitCode === 0 ? '' : t)))).filter(Boolean),
];
if (missing.length) {
  if (process.env.CI === 'true') throw new Error(`netns lab: missing ${missing.join(', ')} (CI=true)`);
  console.warn(`SKIPPED netns lab: missing ${missing.join(', ')}`);
}
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

/** Install the emitted files and the desktop user into the lab (overlay /etc), the executables into lab.dir. */
async function install(lab: Lab): Promise<{ script: string; launcher: string }> {
  // "The real one, same bytes as in the tree": the committed tree must hold exactly what is run.
  for (const path of [netns.SETUP_SCRIPT, netns.LAUNCHER]) {
    const committed = new URL(`../../../chroot-includes${path}`, import.meta.url);
    if (existsSync(committed)) expect(readFileSync(committed, 'utf8'), `chroot-includes${path} is stale`).toBe(fileOf(path).content);
  }
  const script = join(lab.dir, 'netns-setup');
  const launcher = join(lab.dir, 'leakless-netns-exec');
  writeFileSync(script, fileOf(netns.SETUP_SCRIPT).content);
  writeFileSync(launcher, fileOf(netns.LAUNCHER).content);
  chmodSync(script, 0o755);
  chmodSync(launcher, 0o755);
  for (const f of emitted.files.filter((x) => x.path.startsWith('/etc/') && !x.path.startsWith('/etc/systemd/') && !x.path.startsWith('/etc/udev/')))
    await lab.writeEtc(f.path, f.content, f.mode);
  // The saved clearnet DNS (what the resolver module's NetworkManager hook writes): the LAN router.
  await lab.writeEtc(policy.clearnetResolver.file, `nameserver ${LAN.router}\n`, 0o644);
  // The desktop user with the policy's ids (this machine may have another user on that uid).
  const u = policy.desktopUser;
  const r = await lab.inSut('sh', [
    '-c',
    `set -e
     grep -v -E '^[^:]*:[^:]*:${u.uid}:' /etc/passwd > /etc/passwd.new; echo '${u.name}:x:${u.uid}:${u.gid}::/nonexistent:/bin/sh' >> /etc/passwd.new; cat /etc/passwd.new > /etc/passwd
     grep -v -E '^[^:]*:[^:]*:${u.gid}:' /etc/group > /etc/group.new; echo '${u.name}:x:${u.gid}:' >> /etc/group.new; cat /etc/group.new > /etc/group`,
  ]);
  if (r.exitCode !== 0) throw new Error(`installing the desktop user: ${r.stderr}`);
  return { script, launcher };
}

/** Every listener the probes aim at: world (LAN router + Internet hosts), the sut (all host addresses), a guest in each namespace. */
async function startListeners(lab: Lab): Promise<Servers[]> {
  const { tcp, udp } = hostPorts(policy);
  const world = await lab.servers('world', [
    { kind: 'http', host: '0.0.0.0', port: 80 },
    { kind: 'http', host: '::', port: 80 },
    { kind: 'tcp', host: '0.0.0.0', port: 53 },
    { kind: 'udp', host: '0.0.0.0', port: 53 },
    { kind: 'udp', host: '::', port: 53 },
  ]);
  // The SocksPort stand-in runs as the tor user, like tor: with the firewall loaded it is the one user allowed out.
  const sutSocks = await lab.servers('sut', [{ kind: 'socks', host: '0.0.0.0', port: socksPort }], policy.torUser.uid);
  const sut = await lab.servers('sut', [
    ...tcp.filter((p) => p !== socksPort).map((port) => ({ kind: 'tcp', host: '0.0.0.0', port })),
    ...udp.map((port) => ({ kind: 'udp', host: '0.0.0.0', port })),
  ]);
  return [world, sutSocks, sut];
}

async function guestListeners(lab: Lab): Promise<Servers[]> {
  return Promise.all(policy.namespaces.map((n) => lab.servers({ ns: n.name }, [{ kind: 'tcp', host: '0.0.0.0', port: 8080 }])));
}

/** Control probes: each listener answers from inside its own namespace, so a blocked probe means blocked, not a dead listener. */
async function controls(lab: Lab, servers: readonly Servers[], prefix: readonly string[], specs: { proto: 'tcp' | 'udp' | 'http'; host: string; port: number }[]): Promise<void> {
  const probes = specs.map((s) => ({ id: token(`control-${s.proto}-${s.port}`), ...s }));
  const results = await probe(lab, prefix, probes);
  await new Promise((r) => setTimeout(r, 300));
  const arrived = servers.flatMap((s) => [...s.tokens()]);
  const dead = probes.filter((p) => !arrived.includes(p.id) || (p.proto !== 'udp' && results.find((r) => r.id === p.id)?.outcome !== 'connected'));
  if (dead.length) throw new Error(`inconclusive: control probes did not arrive: ${dead.map((d) => `${d.proto} ${d.host}:${d.port}`).join(', ')}`);
}

async function loadFirewall(lab: Lab): Promise<void> {
  const r = await lab.inSut('nft', ['-f', '-'], { input: fw.rulesetFile!(policy) });
  if (r.exitCode !== 0) throw new Error(`loading the firewall ruleset in the sut: ${r.stderr}`);
}

async function runProbes(lab: Lab, servers: readonly Servers[], prefix: readonly string[], probes: readonly NsProbe[]): Promise<{ verdicts: Verdict[]; results: ProbeResult[] }> {
  const results = await probe(lab, prefix, probes);
  // UDP has no answer: give datagrams time to arrive before reading the listeners.
  await new Promise((r) => setTimeout(r, 400));
  const arrived = servers.flatMap((s) => [...s.tokens()]);
  metrics.probes += probes.length;
  return { verdicts: judge(probes, results, arrived), results };
}

const wrong = (vs: readonly Verdict[]) => vs.filter((v) => v.verdict !== 'pass').map((v) => `${v.label}: ${v.verdict} (${v.detail})`);

describe.skipIf(missing.length > 0)('netns in the lab: the emitted script, launcher and rules', () => {
  let lab: Lab;
  let exe: { script: string; launcher: string };
  let servers: Servers[] = [];
  const as = (ns: string) => [exe.launcher, ns, '--'];
  const inLab = (prefix: readonly string[]) => ['nsenter', '-t', String(lab.holderPid), '-m', '-n', '--', ...prefix];
  let inSutExec: Exec;

  beforeAll(async () => {
    lab = await createLab();
    exe = await install(lab);
    inSutExec = (cmd, args) => lab.inSut(cmd, args);
    servers = await startListeners(lab);
    // Controls before the firewall: root in the sut may not reach these once it is loaded.
    await controls(lab, servers, ['ip', 'netns', 'exec', lab.world], [
      { proto: 'http', host: '127.0.0.1', port: 80 },
      { proto: 'http', host: '::1', port: 80 },
      { proto: 'tcp', host: '127.0.0.1', port: 53 },
      { proto: 'udp', host: '127.0.0.1', port: 53 },
      { proto: 'udp', host: '::1', port: 53 },
    ]);
    const { tcp, udp } = hostPorts(policy);
    await controls(lab, servers, inLab([]), [
      ...tcp.filter((p) => p !== socksPort).map((port) => ({ proto: 'tcp' as const, host: '127.0.0.1', port })),
      ...udp.map((port) => ({ proto: 'udp' as const, host: '127.0.0.1', port })),
    ]);
    // The boot order: firewall, then the namespaces.
    if (firewallReady) await loadFirewall(lab);
    const t0 = performance.now();
    const r = await lab.inSut('sh', [exe.script, 'start']);
    metrics.setupMs.push(performance.now() - t0);
    if (r.exitCode !== 0) throw new Error(`netns-setup start failed: ${r.stderr}`);
    servers.push(...(await guestListeners(lab)));
    for (const n of policy.namespaces) await controls(lab, servers, inLab(['ip', 'netns', 'exec', n.name]), [{ proto: 'tcp', host: '127.0.0.1', port: 8080 }]);
  });
  afterAll(async () => {
    await lab?.teardown();
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
    const probes = torOnlyProbes(policy, tbb);
    const direct = probes.filter((p) => p.expect === 'blocked');
    const { verdicts } = await runProbes(lab, servers, inLab(as(tbb.name)), direct);
    const packets = await cap.stop();
    // Judged with the namespace alone; with the firewall loaded every wall is up.
    expect(wrong(verdicts)).toEqual([]);
    expect(packets, 'packets left the sut uplink during the direct probes').toEqual([]);

    // Control for the capture: the SocksPort stand-in's own connection is seen on the uplink,
    // and it is the only thing there (what tor's relay traffic will be with the private Tor network).
    const cap2 = await capture(lab);
    const socks = probes.filter((p) => p.expect === 'reach');
    const { verdicts: v2, results } = await runProbes(lab, servers, inLab(as(tbb.name)), socks);
    const packets2 = await cap2.stop();
    expect(wrong(v2)).toEqual([]);
    expect(packets2.length).toBeGreaterThan(0);
    expect(packets2.filter((x) => !(x.src === LAN.sut && x.dst === INET.a && x.dport === 80))).toEqual([]);
    expect(results[0]!.body).toBe(`leakless-lab /${socks[0]!.id}`);
    // The stand-in saw the namespace's own address (masqueraded), never 127.0.0.1.
    const ev = servers[1]!.events.filter((e) => e.event === 'socks' && e.target === `${INET.a}:80`);
    expect(ev.map((e) => e.remote)).toContain(tbb.guestAddress);
    expect(ev.map((e) => e.remote)).not.toContain('127.0.0.1');
  });

  it.skipIf(!firewallReady)(`clearnet ${cn.name}: reaches the Internet and LAN directly, never the host, the internal range or the other namespace`, async () => {
    const { verdicts } = await runProbes(lab, servers, inLab(as(cn.name)), clearnetProbes(policy, cn));
    expect(wrong(verdicts)).toEqual([]);
    // masqueraded by the host: the world sees the sut's uplink address
    const http = servers[0]!.events.filter((e) => e.event === 'http' && e.token?.startsWith(`${cn.name}-inet-http`));
    expect(http.length).toBe(2);
    expect(new Set(http.map((e) => e.remote))).toEqual(new Set([LAN.sut]));
  });

  it(`clearnet ${cn.name}: what the namespace alone guarantees (no host firewall needed)`, async () => {
    const probes = clearnetProbes(policy, cn).filter((p) => p.wall === 'netns');
    const { verdicts } = await runProbes(lab, servers, inLab(as(cn.name)), probes);
    expect(wrong(verdicts)).toEqual([]);
  });

  it(`clearnet ${cn.name}: nothing can connect in, from the host or its users`, async () => {
    const p: NsProbe[] = [{ id: token('inbound'), label: 'sut-root-to-clearnet', proto: 'tcp', host: cn.guestAddress, port: 8080, expect: 'blocked', wall: 'netns' }];
    const { verdicts } = await runProbes(lab, servers, inLab([]), p);
    expect(wrong(verdicts)).toEqual([]);
  });

  it(`inside ${tbb.name} a process sees only loopback and its /30, and the launcher gives it its own UTS namespace named "${netns.GENERIC_HOSTNAME}"`, async () => {
    const r = await probe(lab, inLab(as(tbb.name)), [
      { id: 'ifaces', proto: 'ifaces' },
      { id: 'hostname', proto: 'hostname' },
    ]);
    expect(r[0]!.body).toBe(['lo 127.0.0.1/8', `veth0 ${tbb.guestAddress}/${tbb.prefix}`].sort().join(','));
    expect(r[1]!.body).toBe(netns.GENERIC_HOSTNAME);
    const host = (await lab.inSut('hostname', [])).stdout.trim();
    expect(host).not.toBe(netns.GENERIC_HOSTNAME);
    const uts = await lab.inSut('sh', [exe.launcher, tbb.name, '--', 'readlink', '/proc/self/ns/uts']);
    const hostUts = await lab.inSut('readlink', ['/proc/self/ns/uts']);
    expect(uts.stdout.trim()).toMatch(/^uts:\[\d+\]$/);
    expect(uts.stdout.trim()).not.toBe(hostUts.stdout.trim());
  });

  it('the launcher runs the command as the desktop user, without new privileges, with a cleaned environment', async () => {
    const u = policy.desktopUser;
    const r = await sh('env', ['DISPLAY=:7', 'LD_PRELOAD=/tmp/evil.so', 'http_proxy=http://198.51.100.1:3128', ...inLab(as(tbb.name)), 'sh', '-c', 'id -u; id -g; grep NoNewPrivs /proc/self/status; env']);
    expect(r.exitCode, r.stderr).toBe(0);
    const [uid, gid, nnp, ...env] = r.stdout.split('\n');
    expect([uid, gid]).toEqual([String(u.uid), String(u.gid)]);
    expect(nnp).toMatch(/NoNewPrivs:\s+1/);
    expect(env).toContain('DISPLAY=:7');
    expect(env).toContain(`USER=${u.name}`);
    expect(env.join('\n')).not.toMatch(/LD_PRELOAD|http_proxy/);
    // resolv.conf inside is the namespace's, not the host's
    const resolv = await lab.inSut('sh', [exe.launcher, tbb.name, '--', 'cat', '/etc/resolv.conf']);
    expect(resolv.stdout).toBe(fileOf(`/etc/netns/${tbb.name}/resolv.conf`).content);
    const cnResolv = await lab.inSut('sh', [exe.launcher, cn.name, '--', 'cat', '/etc/resolv.conf']);
    expect(cnResolv.stdout).toBe(`nameserver ${LAN.router}\n`);
  });

  it('the launcher refuses unknown names, missing namespaces, root targets and non-root callers, with a clear error', async () => {
    const run = (...args: string[]) => lab.inSut('sh', ['-c', `${args.join(' ')}`]);
    expect(await run(exe.launcher, 'nosuch', '--', 'true')).toMatchObject({ exitCode: 2, stderr: expect.stringContaining('unknown namespace "nosuch"') });
    // a valid name whose namespace is not there (as before the unit ran): an empty /run/netns
    expect(await run(`unshare --mount sh -c 'mount -t tmpfs none /run/netns && exec ${exe.launcher} ${tbb.name} -- true'`)).toMatchObject({
      exitCode: 1,
      stderr: expect.stringContaining(`namespace ${tbb.name} does not exist: is ${netns.UNIT} active?`),
    });
    // a passwd in which the desktop user became root
    const u = policy.desktopUser;
    expect(
      await run(
        `unshare --mount sh -c "sed 's/^${u.name}:x:${u.uid}:${u.gid}:/${u.name}:x:0:0:/' /etc/passwd > ${lab.dir}/passwd && mount --bind ${lab.dir}/passwd /etc/passwd && exec ${exe.launcher} ${tbb.name} -- id"`,
      ),
    ).toMatchObject({ exitCode: 1, stderr: expect.stringContaining('refusing to run COMMAND as root') });
    expect(await run(`setpriv --reuid=${u.uid} --regid=${u.gid} --clear-groups ${exe.launcher} ${tbb.name} -- true`)).toMatchObject({
      exitCode: 1,
      stderr: expect.stringContaining('must be started as root'),
    });
  });

  it.skipIf(!firewallReady)('from the host, no user reaches the browser SocksPort through the internal range (Tails §1.14 gap)', async () => {
    const uids = [policy.desktopUser.uid, 4242, 0];
    for (const uid of uids) {
      const p: NsProbe[] = [
        { id: token(`uid${uid}-socks`), label: `uid ${uid} -> ${tbb.hostAddress}:${socksPort}`, proto: 'tcp', host: tbb.hostAddress, port: socksPort, expect: 'blocked', wall: 'firewall' },
        { id: token(`uid${uid}-guest`), label: `uid ${uid} -> ${tbb.guestAddress}:8080`, proto: 'tcp', host: tbb.guestAddress, port: 8080, expect: 'blocked', wall: 'firewall' },
      ];
      const prefix = uid === 0 ? inLab([]) : inLab(['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--']);
      const { verdicts } = await runProbes(lab, servers, prefix, p);
      expect(wrong(verdicts)).toEqual([]);
    }
  });

  it('stop removes what start made, and start works again', async () => {
    expect((await lab.inSut('sh', [exe.script, 'stop'])).exitCode).toBe(0);
    const left = await lab.inSut('sh', ['-c', `ls /run/netns; ip -o link show | grep -c veth- || true; ls -A /etc/netns/${cn.name} 2>/dev/null || true`]);
    expect(left.stdout.trim()).toBe('0');
    const t0 = performance.now();
    const r = await lab.inSut('sh', [exe.script, 'start']);
    metrics.setupMs.push(performance.now() - t0);
    expect(r.exitCode, r.stderr).toBe(0);
    // a second start refuses instead of half-making things
    const again = await lab.inSut('sh', [exe.script, 'start']);
    expect(again).toMatchObject({ exitCode: 1, stderr: expect.stringContaining(`namespace ${tbb.name} already exists`) });
    const rs = await evaluateRuntime(emitted.runtimeAssertions.filter((a) => a.netns !== undefined), inSutExec);
    expect(rs.filter((x) => !x.ok)).toEqual([]);
  });

  it('a start that fails half way leaves nothing behind (no namespace, no veth, no forwarding) and exits non-zero', async () => {
    expect((await lab.inSut('sh', [exe.script, 'stop'])).exitCode).toBe(0);
    // The last namespace's rules are missing: the script has made the first one by then.
    const last = policy.namespaces[policy.namespaces.length - 1]!;
    const nft = `/etc/leakless/netns/${last.name}.nft`;
    expect((await lab.inSut('mv', [nft, `${nft}.away`])).exitCode).toBe(0);
    try {
      const r = await lab.inSut('sh', [exe.script, 'start']);
      expect(r.exitCode).not.toBe(0);
      const left = await lab.inSut('sh', ['-c', 'ls /run/netns; ip -o link show | grep -c veth- || true; sysctl -n net.ipv4.ip_forward']);
      expect(left.stdout.trim().split('\n')).toEqual(['0', '0']);
    } finally {
      await lab.inSut('mv', [`${nft}.away`, nft]);
    }
    expect((await lab.inSut('sh', [exe.script, 'start'])).exitCode).toBe(0);
  });
});

describe.skipIf(missing.length > 0)('netns anti-tests: a planted defect must be caught', () => {
  let lab: Lab;
  let exe: { script: string; launcher: string };
  let servers: Servers[] = [];
  const inLab = (prefix: readonly string[]) => ['nsenter', '-t', String(lab.holderPid), '-m', '-n', '--', ...prefix];
  const runtime = (ids: string[]): Promise<{ id: string; ok: boolean }[]> =>
    evaluateRuntime(
      emitted.runtimeAssertions.filter((a: RuntimeAssertion) => ids.includes(a.id)),
      (cmd, args) => lab.inSut(cmd, args),
    );
  const must = async (cmd: string) => {
    const r = await lab.inSut('sh', ['-c', cmd]);
    if (r.exitCode !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  };
  /** Every assertion of the namespaces holds again: the next anti-test starts clean. */
  const baseline = async () => {
    const rs = await evaluateRuntime(
      emitted.runtimeAssertions.filter((a) => a.check.kind !== 'unit-active'),
      (cmd, args) => lab.inSut(cmd, args),
    );
    expect(rs.filter((r) => !r.ok).map((r) => r.id)).toEqual([]);
  };
  const caught = (yes: boolean) => {
    metrics.antiTests++;
    if (yes) metrics.antiCaught++;
    expect(yes).toBe(true);
  };
  const directTo = (label: string, host: string, port: number, proto: NsProbe['proto'] = 'http'): NsProbe[] => [{ id: token(label), label, proto, host, port, expect: 'blocked', wall: 'netns' }];

  beforeAll(async () => {
    lab = await createLab();
    exe = await install(lab);
    servers = await startListeners(lab);
    const t0 = performance.now();
    const r = await lab.inSut('sh', [exe.script, 'start']);
    metrics.setupMs.push(performance.now() - t0);
    if (r.exitCode !== 0) throw new Error(`netns-setup start failed: ${r.stderr}`);
    servers.push(...(await guestListeners(lab)));
    await baseline();
  });
  afterAll(async () => {
    await lab?.teardown();
    const ms = metrics.setupMs.map((x) => Math.round(x));
    console.log(`netns lab: setup ${ms.join('/')} ms; ${metrics.probes} probes; anti-tests caught ${metrics.antiCaught}/${metrics.antiTests}; SocksPort: ${metrics.tornet}`);
  });

  it('the namespaces alone, without the host firewall, hold every probe they are the wall for', async () => {
    const cap = await capture(lab);
    const t = await runProbes(lab, servers, inLab([exe.launcher, tbb.name, '--']), torOnlyProbes(policy, tbb).filter((p) => p.expect === 'blocked'));
    const c = await runProbes(lab, servers, inLab([exe.launcher, cn.name, '--']), clearnetProbes(policy, cn).filter((p) => p.wall === 'netns'));
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
    await must(`ip -n ${tbb.name} addr add ${LAN.sut}/32 dev lo`);
    const [r] = await runtime([`netns.${tbb.name}.addresses`]);
    const [i] = await probe(lab, inLab([exe.launcher, tbb.name, '--']), [{ id: 'ifaces', proto: 'ifaces' }]);
    caught(r!.ok === false && i!.body!.includes(LAN.sut));
    await must(`ip -n ${tbb.name} addr del ${LAN.sut}/32 dev lo`);
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
    const { verdicts } = await runProbes(lab, servers, inLab([exe.launcher, tbb.name, '--']), directTo('planted-host-port', tbb.hostAddress, policy.controlPort.port, 'tcp'));
    caught(verdicts[0]!.verdict === 'leak');
    if (firewallReady) {
      // The other wall alone: with the host firewall loaded the same probe is refused.
      await loadFirewall(lab);
      const again = await runProbes(lab, servers, inLab([exe.launcher, tbb.name, '--']), directTo('planted-host-port-fw', tbb.hostAddress, policy.controlPort.port, 'tcp'));
      expect(wrong(again.verdicts)).toEqual([]);
      await must('nft delete table inet leakless');
    }
    await must(`ip netns exec ${tbb.name} nft -f ${join('/etc/leakless/netns', `${tbb.name}.nft`)}`);
    await baseline();
  });

  it('a full route out of the tor-only namespace (route, no namespace rules, host forwarding + masquerade, no firewall): the probe and the uplink capture report it', async () => {
    await must(
      [
        `ip -n ${tbb.name} route add default via ${tbb.hostAddress}`,
        `ip netns exec ${tbb.name} nft delete table inet ${netns.NS_TABLE}`,
        `sysctl -q -w net.ipv4.conf.${tbb.hostVeth}.forwarding=1 net.ipv4.conf.eth0.forwarding=1`,
        `nft add table ip lkplant`,
        `nft add chain ip lkplant post '{ type nat hook postrouting priority 100; }'`,
        `nft add rule ip lkplant post ip saddr ${tbb.subnet} oifname eth0 masquerade`,
      ].join(' && '),
    );
    if (firewallReady) {
      await loadFirewall(lab);
      const held = await runProbes(lab, servers, inLab([exe.launcher, tbb.name, '--']), directTo('planted-route-fw', INET.a, 80));
      expect(wrong(held.verdicts), 'the host firewall alone must refuse to forward for a tor-only namespace').toEqual([]);
      await must('nft delete table inet leakless');
    }
    const cap = await capture(lab);
    const { verdicts } = await runProbes(lab, servers, inLab([exe.launcher, tbb.name, '--']), directTo('planted-route', INET.a, 80));
    const packets = await cap.stop();
    caught(verdicts[0]!.verdict === 'leak' && packets.length > 0);
    await must(
      [
        'nft delete table ip lkplant',
        `sysctl -q -w net.ipv4.conf.${tbb.hostVeth}.forwarding=0`,
        `ip -n ${tbb.name} route del default`,
        `ip netns exec ${tbb.name} nft -f /etc/leakless/netns/${tbb.name}.nft`,
      ].join(' && '),
    );
    await baseline();
  });

  it('without the clearnet namespace’s rules, a connection in from the host succeeds: the probe reports it', async () => {
    // (its output rules refuse the internal range, so the answer would not get out either)
    await must(`ip netns exec ${cn.name} nft delete table inet ${netns.NS_TABLE}`);
    const { verdicts } = await runProbes(lab, servers, inLab([]), directTo('planted-inbound', cn.guestAddress, 8080, 'tcp'));
    caught(verdicts[0]!.verdict === 'leak');
    await must(`ip netns exec ${cn.name} nft -f /etc/leakless/netns/${cn.name}.nft`);
    await baseline();
  });

  it('without the clearnet namespace’s rules (and no host firewall), the browser SocksPort in the internal range is reachable: the probe reports it', async () => {
    await must(`ip netns exec ${cn.name} nft delete table inet ${netns.NS_TABLE}`);
    const { verdicts } = await runProbes(lab, servers, inLab([exe.launcher, cn.name, '--']), directTo('planted-internal', tbb.hostAddress, socksPort, 'tcp'));
    caught(verdicts[0]!.verdict === 'leak');
    await must(`ip netns exec ${cn.name} nft -f /etc/leakless/netns/${cn.name}.nft`);
    await baseline();
  });

  it('a command run in the namespace without the launcher sees the machine’s hostname: the check reports it', async () => {
    const [h] = await probe(lab, inLab(['ip', 'netns', 'exec', tbb.name]), [{ id: 'hostname', proto: 'hostname' }]);
    caught(h!.body !== netns.GENERIC_HOSTNAME);
  });
});

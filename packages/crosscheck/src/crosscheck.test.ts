// The checks across modules, on the real emitted tree: tor's effective
// configuration (tor's own parse of torrc + drop-ins), the firewall AST and
// resolv.conf agree; each kind of planted disagreement is reported.
import { describe, expect, it } from 'vitest';
import { PATHS, UNITS, buildTree, emission, hostToolRunner, memoryTree, type GeneratedFile, type Policy } from '@leakless/policy';
import { defaultPolicy, policyWith } from '@leakless/policy/testing';
import { needTool, skipUnless } from '@leakless/testing';
import { ruleset } from '@leakless/firewall';
import { insertBefore, mapRules, type Rule } from '@leakless/nft';
import { emit, parseDump, runTor, TORRC, TORRC_D } from '@leakless/tor-config';
import * as resolver from '@leakless/resolver';
import { allModules, consistencyProblems, crossModuleAssertions, debianLayoutAssertion } from './index.js';

const policy = defaultPolicy();
const out = emit(policy);
/** A cross-module assertion by id (their order is not part of the contract). */
const assertion = (id: string) => crossModuleAssertions(policy).find((a) => a.id === id)!;

/** tor-config's files plus the resolver's resolv.conf (unless the test brings its own). */
function ctxFor(files: readonly GeneratedFile[], p: Policy = policy) {
  const resolv = resolver.emit(p).files.filter((f) => f.path === '/etc/resolv.conf');
  const withResolv = files.some((f) => f.path === '/etc/resolv.conf') ? files : [...files, ...resolv];
  return { tree: memoryTree(buildTree([{ ...out, files: withResolv }])), policy: p, run: hostToolRunner };
}

// tor is a test dependency (tools/leakless/install-deps.sh test); CI must not silently skip.
const noTor = skipUnless('the crosscheck tests that run tor', needTool('tor', ['--version'], 'tools/leakless/install-deps.sh test installs tor'));

describe('the module set', () => {
  it('lists every module once, the cross-module checks last', () => {
    const names = allModules.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.at(-1)).toBe('crosscheck');
    expect(allModules.at(-1)!.emit(policy).files).toEqual([]);
  });
});

describe.skipIf(noTor)('cross-module consistency: tor’s effective config × firewall AST × resolv.conf', () => {
  async function dumpFor(files: readonly GeneratedFile[], p: Policy = policy) {
    const ctx = ctxFor(files, p);
    const r = await runTor('dump', ctx.tree, hostToolRunner);
    expect(r.ok, r.problem).toBe(true);
    return { dump: parseDump(r.stdout), tree: ctx.tree };
  }
  const dropIn = (content: string): GeneratedFile => ({ path: `${TORRC_D}/50-local.conf`, content, mode: 0o644, clause: 'test' });
  const aptUid = policy.userByName('_apt').uid;

  it('agree for the default policy and for one with reachable ports', async () => {
    const { dump, tree } = await dumpFor(out.files);
    expect(consistencyProblems(dump, ruleset(policy), policy, tree)).toEqual([]);
    const p = policyWith((d) => (d.tor.reachablePorts = [443, 9001]));
    const e = await dumpFor(emit(p).files, p);
    expect(consistencyProblems(e.dump, ruleset(p), p, e.tree)).toEqual([]);
  });

  it('anti-tests: a planted disagreement in any of the three is reported', async () => {
    const { dump, tree } = await dumpFor(out.files);
    const t = ruleset(policy);
    const isAptGrant = (r: Rule) => r.match.skuid === aptUid && r.match.dport?.ports[0] === policy.socksPorts[0]!.port && r.verdict.kind === 'accept';
    // firewall: _apt loses its SocksPort
    expect(
      consistencyProblems(
        dump,
        mapRules(t, isAptGrant, () => []),
        policy,
        tree,
      ).join('\n'),
    ).toMatch(/tor\.socksPorts\[0\].*firewall lets uids \[1000\]/);
    // firewall: _apt may use the DNSPort
    const aptDns: Rule = {
      match: {
        oif: { name: 'lo' },
        daddr: { addrs: [policy.dnsPort.address] },
        protocol: 'udp',
        dport: { ports: [policy.dnsPort.port] },
        skuid: aptUid,
        ctState: ['new'],
      },
      verdict: { kind: 'accept' },
      clause: 'tor.dnsPort.clients (planted)',
    };
    expect(consistencyProblems(dump, insertBefore(t, 'output', isAptGrant, [aptDns]), policy, tree).join('\n')).toMatch(
      new RegExp(`uid ${aptUid}: a lookup via 127\\.0\\.0\\.1 is accepted`),
    );
    // firewall: the tor user may leave on any port although tor.reachablePorts is set
    const p = policyWith((d) => (d.tor.reachablePorts = [443]));
    const e = await dumpFor(emit(p).files, p);
    const anyPort = mapRules(
      ruleset(p),
      (r) => r.match.skuid === p.torUser.uid && r.match.tcpSyn === true,
      (r) => ({ ...r, match: { ...r.match, dport: undefined } }),
    );
    expect(consistencyProblems(e.dump, anyPort, p, e.tree).join('\n')).toMatch(/tcp 203\.0\.113\.1:80: the firewall lets the tor user, tor may not/);
    // torrc: a drop-in adds a DNSPort nobody declared (drop-in lines add to the base's)
    const moved = await dumpFor([...out.files, dropIn(`DNSPort ${policy.dnsPort.address}:${policy.dnsPort.port + 1}\n`)]);
    expect(consistencyProblems(moved.dump, t, policy, moved.tree).join('\n')).toMatch(
      /tor listens on udp 127\.0\.0\.1:\d+, which the policy \(and so the firewall\) does not declare/,
    );
    // and the redirect missing tor: the dump of a torrc whose DNSPort moved
    const movedOnly = new Map(dump);
    movedOnly.set('DNSPort', [`${policy.dnsPort.address}:${policy.dnsPort.port + 1}`]);
    expect(consistencyProblems(movedOnly, t, policy, tree).join('\n')).toMatch(/udp\/53 to 127\.0\.0\.1 goes to 127\.0\.0\.1:\d+, not to tor's DNSPort/);
    // torrc: a drop-in changes the automap range
    const automap = await dumpFor([...out.files, dropIn('VirtualAddrNetworkIPv4 127.64.0.0/10\n')]);
    expect(consistencyProblems(automap.dump, t, policy, automap.tree).join('\n')).toMatch(
      /tcp to 127\.64\.0\.1 \(inside tor's automap range 127\.64\.0\.0\/10\) is not redirected/,
    );
    // resolv.conf: a nameserver the firewall does not redirect
    const lan = await dumpFor([...out.files, { path: '/etc/resolv.conf', content: 'nameserver 192.168.1.1\n', mode: 0o644, clause: 'test' }]);
    expect(consistencyProblems(lan.dump, t, policy, lan.tree).join('\n')).toMatch(/udp\/53 to 192\.168\.1\.1 goes to 192\.168\.1\.1:53/);
  });
});

describe.skipIf(noTor)('the cross-module static assertion', () => {
  it('holds on the emitted tree and fails on a planted disagreement', async () => {
    const a = assertion('crosscheck.tor-firewall-resolver');
    expect(await a!.check(ctxFor(out.files))).toMatchObject({ ok: true });
    const lan = [...out.files, { path: '/etc/resolv.conf', content: 'nameserver 192.168.1.1\n', mode: 0o644, clause: 'test' }];
    expect(await a!.check(ctxFor(lan))).toMatchObject({ ok: false, detail: expect.stringMatching(/not to tor's DNSPort/) });
  });
});

describe('clearnet resolver visibility across modules', () => {
  const all = allModules.map((m) => m.emit(policy));
  const files = all.flatMap((e) => e.files);
  const visibility = assertion('crosscheck.clearnet-resolver-visibility');
  const check = (fs: readonly GeneratedFile[]) => visibility!.check({ tree: memoryTree(buildTree([{ ...all[0]!, files: fs }])), policy, run: hostToolRunner });
  const extra = (path: string, content: string): GeneratedFile => ({ path, content, mode: 0o644, clause: 'test' });
  const pretorDropIn = files.find((f) => f.path.startsWith(`${PATHS.units}/leakless-pretor-time.service.d/`) && f.content.includes('BindReadOnlyPaths='))!;
  const torDropIn = files.find((f) => f.path.startsWith(`${PATHS.units}/${policy.torUnit}.d/`) && f.content.includes('BindReadOnlyPaths='))!;

  it('holds on every module’s output together: only tor and the pre-Tor check see the DHCP servers', async () => {
    expect(visibility!.id).toBe('crosscheck.clearnet-resolver-visibility');
    expect(await check(files)).toMatchObject({ ok: true });
  });
  it.each([
    [
      'another unit gets clearnet DNS',
      [...files, extra('/etc/systemd/system/evil.service.d/x.conf', '[Service]\nBindReadOnlyPaths=/etc/resolv-over-clearnet.conf:/etc/resolv.conf\n')],
    ],
    ['a unit binds its own resolv.conf', [...files, extra('/usr/lib/systemd/system/evil.service', '[Service]\nBindPaths=/tmp/r:/etc/resolv.conf\n')]],
    ['writable bind', files.map((f) => (f === pretorDropIn ? { ...f, content: f.content.replace('BindReadOnlyPaths=', 'BindPaths=') } : f))],
    ['tor has no drop-in', files.filter((f) => f !== torDropIn)],
  ])('anti-test: %s', async (_name, fs) => {
    expect(await check(fs as GeneratedFile[])).toMatchObject({ ok: false });
  });
});

describe('units one module requires of another', () => {
  const files = allModules.flatMap((m) => m.emit(policy).files);
  const required = assertion('crosscheck.units-required');
  const check = (fs: readonly GeneratedFile[]) => required!.check({ tree: memoryTree(buildTree([{ ...out, files: fs }])), policy, run: hostToolRunner });

  it('holds on every module’s output together (the netns unit requires the firewall unit, which the firewall module ships)', async () => {
    expect(required!.id).toBe('crosscheck.units-required');
    expect(await check(files)).toMatchObject({ ok: true });
  });
  it('anti-test: a tree without the firewall unit', async () => {
    const r = await check(files.filter((f) => f.path !== `${PATHS.units}/${UNITS.firewall}`));
    expect(r).toMatchObject({ ok: false, detail: expect.stringContaining(`leakless-netns.service: Requires=${UNITS.firewall}, which no module ships`) });
  });
});

describe('one Debian layout for what every module ships', () => {
  const files = allModules.flatMap((m) => m.emit(policy).files);
  const layout = assertion('crosscheck.debian-layout');
  const extra = (path: string): GeneratedFile => ({ path, content: '', mode: 0o644, clause: 'test' });
  const treeOf = (fs: readonly GeneratedFile[]) => memoryTree(buildTree([{ ...out, files: fs }]));

  it('holds on every module’s output: vendor files under /usr, /etc only where a program looks nowhere else', async () => {
    expect(await layout.check({ tree: treeOf(files), policy, run: hostToolRunner })).toMatchObject({ ok: true });
    // nothing of the old layout is left
    expect(files.filter((f) => /^\/usr\/local\/|^\/etc\/systemd\/|^\/etc\/leakless\//.test(f.path)).map((f) => f.path)).toEqual([]);
  });

  it.each([
    ['a program under /usr/local', '/usr/local/sbin/leakless-netns-exec'],
    ['a unit in /etc/systemd/system', '/etc/systemd/system/leakless-netns.service'],
    ['a drop-in in /etc/systemd/system', '/etc/systemd/system/NetworkManager.service.d/50-leakless-firewall.conf'],
    ['generated config under /etc', '/etc/leakless/time.conf'],
    ['a path no package uses', '/opt/leakless/netns-setup'],
  ])('anti-test: a module ships %s', async (_name, path) => {
    const bad = { name: 'bad', emit: () => emission('bad', { files: [extra(path)] }) };
    const a = debianLayoutAssertion(policy, [...allModules, bad]);
    expect(await a.check({ tree: treeOf(files), policy, run: hostToolRunner })).toMatchObject({ ok: false, detail: expect.stringContaining(path) });
  });

  it.each([
    ['a file under /usr/local', '/usr/local/bin/tool'],
    ['a unit file in /etc/systemd/system', '/etc/systemd/system/extra.service'],
    ['a drop-in file in /etc/systemd/system', '/etc/systemd/system/tor@default.service.d/zz.conf'],
  ])('anti-test: the tree (or rootfs) has %s', async (_name, path) => {
    expect(await layout.check({ tree: treeOf([...files, extra(path)]), policy, run: hostToolRunner })).toMatchObject({
      ok: false,
      detail: expect.stringContaining(path),
    });
  });
});

describe.skipIf(noTor)('the namespaces’ SocksPorts across modules', () => {
  const socks = assertion('crosscheck.netns-socksports');
  it('every DNAT of the default namespaces lands on a SocksPort tor listens on', async () => {
    expect(socks!.id).toBe('crosscheck.netns-socksports');
    expect(await socks!.check(ctxFor(out.files))).toMatchObject({ ok: true });
  });
  it('anti-test: a torrc without the browser SocksPort', async () => {
    const torrc = out.files.find((f) => f.path === TORRC)!;
    const files = out.files.map((f) => (f === torrc ? { ...f, content: f.content.replace(/^SocksPort 10\.200\.1\.1:9050 .*\n/m, '') } : f));
    expect(files.find((f) => f.path === TORRC)!.content).not.toBe(torrc.content);
    expect(await socks!.check(ctxFor(files))).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/DNATs to 10\.200\.1\.1:9050, where tor has no SocksPort/),
    });
  });
});

// What crosses the network boundary through the filesystem
// (docs/threat-model.md#namespace-identity). Filesystem Unix sockets do not
// care about network namespaces: an application in tbb that reaches the
// system bus reads NetworkManager's properties (the real address, the MAC,
// nearby access points) and sends them through Tor; one that reaches the
// desktop user's session bus asks its service manager to start a program
// outside the namespace (systemd-run --user); one that shares a home with
// the clearnet namespace plants a startup file that the next clearnet
// application runs with the real address. Each attack is played from each
// namespace against the emitted launcher (refused) and against the old one
// (it succeeds: the anti-test). Stand-ins sit at the real paths: a system
// bus and a NetworkManager socket that answer what the real ones give away, a
// real dbus-daemon as the desktop user's session bus whose "service manager"
// is a program that records the network namespace it was started in, and a
// display socket, the one socket the policy allows (the positive control).
import * as netns from '@leakless/netns';
import { defaultPolicy } from '@leakless/policy/testing';
import { skipUnless } from '@leakless/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Lab, labFile, labNeeds, PYTHON, run, startServer, teardownLab } from '../lab/index.js';
import { AttackLog } from '../netns/attacks.js';
import { createLab, type Installed, installNetns, token, visibleHelper } from '../netns/harness.js';

const policy = defaultPolicy();
const emitted = netns.emit(policy);
const DOC = 'docs/threat-model.md#namespace-identity';
const desktop = policy.desktopUser;
const [tbb, cn] = [policy.namespaces[0]!, policy.namespaces[1]!];
const DISPLAY = tbb.sockets[0]!;
const SYSTEM_BUS = '/run/dbus/system_bus_socket';
const SESSION_BUS = `/run/user/${desktop.uid}/bus`;
const NM_SOCKET = '/run/NetworkManager/private-leakless-lab';
/** What the system bus stand-in answers: NetworkManager's properties, as the real bus gives them to any local user. */
const NM_PROPERTIES = 'org.freedesktop.NetworkManager Ip4Address=192.168.77.2 HwAddress=02:00:00:77:00:02 AccessPoint.HwAddress=02:00:00:aa:bb:cc';

const IMAGE_DIRS = ['/dev', '/etc', '/home', '/media', '/mnt', '/opt', '/root', '/run', '/srv', '/tmp', '/usr', '/var'];
const KERNEL_FS = ['proc', 'sysfs', 'cgroup', 'cgroup2', 'devpts', 'mqueue', 'debugfs', 'tracefs', 'securityfs', 'bpf'].flatMap((t, i) => [
  ...(i ? ['-o'] : []),
  '-fstype',
  t,
]);

const skip = skipUnless('the namespace socket and home attacks', ...labNeeds('python3', 'dbus-daemon', 'systemd-run', 'find'));

interface Attack {
  uid: number;
  home: string;
  connect: { path: string; ok: boolean; reply?: string; error?: string }[];
  plant: { dir: string; ok: boolean; error?: string }[];
  read: { dir: string; ok: boolean; found?: string[]; error?: string }[];
  systemdRun: { bus: string | null; exit: number | null; stderr: string }[];
}

describe.skipIf(skip)('adversary: sockets, homes and the service manager across the namespace boundary', () => {
  const log = new AttackLog('netns-sockets');
  let lab: Lab;
  let exe: Installed;
  let attackPy: string;
  const connects: { name: string; uid: number; token: string }[] = [];
  let escapedFile: string;

  beforeAll(async () => {
    lab = await createLab(policy);
    exe = await installNetns(lab, policy, emitted);
    const r = await run(lab, 'sut', exe.script, ['start']);
    if (r.exitCode !== 0) throw new Error(`netns-setup start: ${r.stderr}`);
    attackPy = await visibleHelper(lab, new URL('../netns/py/unix_attack.py', import.meta.url));
    const specs = [
      { name: 'system-bus', path: SYSTEM_BUS, uid: 0, gid: 0, mode: '666', dirs: [['/run/dbus', '755', 0, 0]], reply: NM_PROPERTIES },
      { name: 'nm-socket', path: NM_SOCKET, uid: 0, gid: 0, mode: '666', dirs: [['/run/NetworkManager', '755', 0, 0]], reply: NM_PROPERTIES },
      { name: 'display', path: DISPLAY, uid: 0, gid: 0, mode: '777', dirs: [['/tmp/.X11-unix', '1777', 0, 0]], reply: 'display stand-in' },
    ];
    let listening = 0;
    await startServer(
      lab,
      'sut',
      { helper: new URL('../netns/py/unix_standins.py', import.meta.url), args: [JSON.stringify(specs)] },
      {
        ready: () => listening === specs.length,
        onLine: (l) => {
          const e = JSON.parse(l) as { event: string; name: string; uid: number; token: string };
          if (e.event === 'listening') listening++;
          else connects.push(e);
        },
      },
    );
    // The desktop user's session bus: a real dbus-daemon, as that user, whose
    // org.freedesktop.systemd1 is a program that writes down where it runs.
    escapedFile = labFile(lab, 'escaped', '', 0o666);
    const escapeScript = labFile(lab, 'services/escape.sh', `#!/bin/sh\nreadlink /proc/self/ns/net >> ${escapedFile}\nexit 1\n`, 0o755);
    labFile(lab, 'services/org.freedesktop.systemd1.service', `[D-BUS Service]\nName=org.freedesktop.systemd1\nExec=${escapeScript}\n`);
    const conf = labFile(
      lab,
      'session.conf',
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path=${SESSION_BUS}</listen><auth>EXTERNAL</auth><servicedir>${lab.dir}/services</servicedir>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>\n`,
    );
    const mk = await run(lab, 'sut', 'install', ['-d', '-m', '0700', '-o', String(desktop.uid), '-g', String(desktop.gid), `/run/user/${desktop.uid}`]);
    if (mk.exitCode !== 0) throw new Error(`runtime directory: ${mk.stderr}`);
    await startServer(lab, 'sut', ['dbus-daemon', `--config-file=${conf}`, '--nofork', '--print-address'], {
      as: { uid: desktop.uid, gid: desktop.gid },
      ready: /^unix:/,
      label: 'the desktop user’s session bus',
    });
  });
  afterAll(async () => {
    if (lab) await teardownLab(lab);
    log.write();
  });

  /** What an administrator's shell in the desktop session has: the launcher must not pass it on. */
  const sessionEnv = {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    DISPLAY: ':0',
    XDG_RUNTIME_DIR: `/run/user/${desktop.uid}`,
    DBUS_SESSION_BUS_ADDRESS: `unix:path=${SESSION_BUS}`,
  };

  async function attack(launcher: string, ns: string, spec: Record<string, unknown>): Promise<Attack> {
    const r = await run(lab, 'sut', launcher, [ns, '--', PYTHON, '-I', attackPy, JSON.stringify(spec)], { timeoutMs: 60_000, env: sessionEnv });
    const line = /ATTACK-RESULT (\{.*\})/.exec(r.stdout);
    if (!line) throw new Error(`inconclusive: no result from ${ns} (exit ${r.exitCode}): ${r.stderr.slice(-500)}`);
    return JSON.parse(line[1]!) as Attack;
  }

  /** Every socket a process of `ns` could connect to: every socket file in its mount namespace that its uid may write. */
  async function inventory(launcher: string, ns: string, uid: number, gid: number): Promise<string[]> {
    let pid = 0;
    const hold = await startServer(lab, 'sut', [launcher, ns, '--', PYTHON, '-I', attackPy, JSON.stringify({ hold: true })], {
      env: sessionEnv,
      ready: (l) => {
        const m = /^PID (\d+)$/.exec(l);
        if (m) pid = Number(m[1]);
        return m !== null;
      },
      label: `a process held in ${ns}`,
    });
    try {
      const list = await run(
        lab,
        'sut',
        'nsenter',
        [
          '-t',
          String(pid),
          '-m',
          '--',
          'find',
          // the image's top-level directories (not the lab host's checkout or build trees), every mount below them but kernel file systems
          ...IMAGE_DIRS,
          '(',
          ...KERNEL_FS,
          ')',
          '-prune',
          '-o',
          '-type',
          's',
          '-print',
        ],
        { timeoutMs: 60_000 },
      );
      const all = list.stdout.split('\n').filter(Boolean);
      const w = await run(lab, 'sut', 'nsenter', [
        '-t',
        String(pid),
        '-m',
        '--',
        'setpriv',
        `--reuid=${uid}`,
        `--regid=${gid}`,
        '--clear-groups',
        '--',
        'sh',
        '-c',
        'for s in "$@"; do [ -w "$s" ] && echo "$s"; done; true',
        'sh',
        ...all,
      ]);
      return w.stdout.split('\n').filter(Boolean).sort();
    } finally {
      // SIGTERM: the launcher passes it on to the application's session
      await hold.stop('SIGTERM');
    }
  }

  const escapes = async (): Promise<string[]> => (await run(lab, 'sut', 'cat', [escapedFile])).stdout.split('\n').filter(Boolean);

  for (const [attacker, victim] of [
    [tbb, cn],
    [cn, tbb],
  ] as const) {
    for (const against of ['emitted', 'planted'] as const) {
      const what = against === 'emitted' ? 'the emitted launcher' : 'the old launcher (anti-test)';
      it(`${attacker.name} against ${what}: buses, NetworkManager, the other namespace's home, systemd-run --user; the display only`, async () => {
        const launcher = against === 'emitted' ? exe.launcher : exe.oldLauncher;
        const t = token(`sock-${attacker.name}`);
        const before = (await escapes()).length;
        const a = await attack(launcher, attacker.name, {
          token: t,
          connect: [SYSTEM_BUS, SESSION_BUS, NM_SOCKET, DISPLAY],
          plant: ['$HOME', victim.home, `/home/${desktop.name}`],
          systemdRun: [null, `unix:path=${SESSION_BUS}`],
        });
        const v = await attack(launcher, victim.name, { token: token('victim'), read: ['$HOME', attacker.home, `/home/${desktop.name}`] });
        await new Promise((r) => setTimeout(r, 300));
        const reached = (name: string) => connects.some((c) => c.name === name && c.token === t);
        const conn = (path: string) => a.connect.find((c) => c.path === path)!;
        const planted = v.read.flatMap((x) => x.found ?? []).filter((f) => f.includes(t));
        const escaped = (await escapes()).slice(before);
        const sr = a.systemdRun;
        const srReached = sr.some((x) => !/Failed to connect to bus/.test(x.stderr)) || escaped.length > 0;
        const outcomes: [string, boolean, string][] = [
          ['system-bus', reached('system-bus') || conn(SYSTEM_BUS).ok, conn(SYSTEM_BUS).ok ? `read: ${conn(SYSTEM_BUS).reply}` : conn(SYSTEM_BUS).error!],
          ['session-bus', conn(SESSION_BUS).ok, conn(SESSION_BUS).ok ? 'connected' : conn(SESSION_BUS).error!],
          ['nm-socket', reached('nm-socket') || conn(NM_SOCKET).ok, conn(NM_SOCKET).ok ? `read: ${conn(NM_SOCKET).reply}` : conn(NM_SOCKET).error!],
          [
            'plant-in-other-home',
            planted.length > 0,
            `wrote: ${a.plant.map((p) => `${p.dir} ${p.ok ? 'ok' : p.error}`).join(', ')}; ${victim.name} found: ${planted.length ? planted.join(' ') : 'nothing'}`,
          ],
          [
            'systemd-run-user',
            srReached,
            `${sr.map((x) => `${x.bus ?? '$XDG_RUNTIME_DIR/bus'}: ${x.stderr.split('\n').pop()}`).join('; ')}; started outside: ${escaped.join(' ') || 'nothing'}`,
          ],
        ];
        for (const [name, ok, detail] of outcomes)
          log.add({ attack: name, principal: attacker.name, against, outcome: ok ? 'succeeded' : 'refused', detail, doc: DOC });
        // positive control: the namespace does reach the socket its policy allows, as its own user
        expect(conn(DISPLAY), 'the display socket (allowed) is reachable').toMatchObject({ ok: true, reply: 'display stand-in' });
        expect(connects.find((c) => c.name === 'display' && c.token === t)?.uid).toBe(against === 'emitted' ? attacker.user.uid : desktop.uid);
        const succeeded = outcomes.filter(([, ok]) => ok).map(([n]) => n);
        if (against === 'emitted') {
          expect(succeeded).toEqual([]);
          expect(a.uid).toBe(attacker.user.uid);
          expect(a.home).toBe(attacker.home);
        } else expect(succeeded, 'the old launcher must let every attack through, or the attack cannot fail').toEqual(outcomes.map(([n]) => n));
      });
    }

    it(`${attacker.name}: every socket its application can connect to is on its allowlist (anti-test: the old launcher's are not)`, async () => {
      const seen = await inventory(exe.launcher, attacker.name, attacker.user.uid, attacker.user.gid);
      const old = await inventory(exe.oldLauncher, attacker.name, desktop.uid, desktop.gid);
      log.add({
        attack: 'socket-inventory',
        principal: attacker.name,
        against: 'emitted',
        outcome: seen.join() === [...attacker.sockets].sort().join() ? 'refused' : 'succeeded',
        detail: `reachable: ${seen.join(' ') || 'none'}`,
        doc: DOC,
      });
      const extra = old.filter((s) => !attacker.sockets.includes(s));
      log.add({
        attack: 'socket-inventory',
        principal: attacker.name,
        against: 'planted',
        outcome: extra.length ? 'succeeded' : 'refused',
        detail: `old launcher reaches: ${old.join(' ')}`,
        doc: DOC,
      });
      expect(seen).toEqual([...attacker.sockets].sort());
      expect(old).toEqual(expect.arrayContaining([SYSTEM_BUS, SESSION_BUS, NM_SOCKET]));
    });
  }

  it('every attack was refused by the emitted launcher and caught against the old one', () => {
    expect(log.problems()).toEqual([]);
    expect(log.records.length).toBe(2 * (2 * 5 + 2));
  });
});

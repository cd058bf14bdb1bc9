// leakless-lab-agent: the guest side of `leakless boot --lab` (protocol and
// limits in ../lab-agent.ts; why it may exist in docs/threat-model.md#test-settings-fw-cfg).
// Started only when the hypervisor offers the virtio-serial port leakless.lab
// AND leakless-test-settings accepted settings that ask for it. Reads one
// command per line from the port, answers one line each; never opens a
// network socket of its own.
//
//   lab-agent                 the agent (its unit runs it as root)
//   lab-agent http JSON       one HTTP GET (SOCKS5 with the host name, or direct), run by the agent as another uid
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, createReadStream, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import {
  type AgentCommand,
  type AgentEvent,
  type AgentReply,
  type AgentStatus,
  type HttpOutcome,
  type Ids,
  LAB_PORT,
  type LinkState,
  lateScript,
  parseCommand,
  parseSenderLine,
  RULESET_HASH_SH,
  SENDER_SH,
  type SenderResult,
  type SenderSpec,
  type UnitState,
  WATCHED_UNITS,
} from '../lab-agent.js';
import { TEST_SETTINGS_PATHS } from '../test-channel.js';

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(cmd, [...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      const code = !e ? 0 : typeof e.code === 'number' ? e.code : e.code === 'ENOENT' ? 127 : 1;
      resolve({ code, stdout: String(stdout ?? ''), stderr: String(stderr ?? '') || (e ? e.message : '') });
    });
  });
}

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const fileSha = (p: string) => (existsSync(p) ? sha256(readFileSync(p)) : 'absent');
const uptime = () => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
const asUser = (who: Ids) => ['setpriv', `--reuid=${who.uid}`, `--regid=${who.gid}`, '--clear-groups', '--'];
const SELF = process.argv[1]!;
const NODE = process.execPath;

// ---- worker: one HTTP GET as whatever uid it was started as ---------------------------------

interface HttpJob {
  readonly socks?: { readonly address: string; readonly port: number };
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly timeoutMs: number;
}

function httpWorker(job: HttpJob): Promise<HttpOutcome> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let stage = 'connect';
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (o: Omit<HttpOutcome, 'ms'>) => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve({ ...o, ms: Date.now() - t0 });
    };
    const target = job.socks ?? { address: job.host, port: job.port };
    const sock = connect(target.port, target.address);
    sock.setTimeout(job.timeoutMs, () => finish({ ok: false, stage, error: 'timeout' }));
    sock.on('error', (e) => finish({ ok: false, stage, error: (e as NodeJS.ErrnoException).code ?? e.message }));
    const request = () => {
      stage = 'http';
      sock.write(`GET ${job.path} HTTP/1.0\r\nHost: ${job.host}\r\nConnection: close\r\n\r\n`);
    };
    sock.on('connect', () => {
      if (!job.socks) return request();
      stage = 'socks';
      sock.write(Buffer.from([5, 1, 0]));
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (stage === 'socks') {
        // method selection reply: version 5, method 0 (no authentication)
        if (buf.length < 2) return;
        if (buf[0] !== 5 || buf[1] !== 0) return finish({ ok: false, stage, error: `SOCKS method refused (${buf[1]})` });
        const name = Buffer.from(job.host, 'latin1');
        buf = Buffer.alloc(0);
        stage = 'socks-connect';
        // CONNECT by host name (ATYP 3): the name goes to tor, never to a resolver here
        sock.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([job.port >> 8, job.port & 0xff])]));
        return;
      }
      if (stage === 'socks-connect') {
        if (buf.length < 10) return;
        if (buf[1] !== 0) return finish({ ok: false, stage, error: `SOCKS reply ${buf[1]}` });
        buf = buf.subarray(10);
        request();
      }
    });
    sock.on('end', () => {
      if (stage !== 'http') return finish({ ok: false, stage, error: 'closed' });
      const text = buf.toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      const body = text.split('\r\n\r\n').slice(1).join('\r\n\r\n').slice(0, 200);
      finish({ ok: status === 200, stage: 'done', status, body });
    });
  });
}

// ---- the agent ----------------------------------------------------------------------------------

const PORT = `/dev/virtio-ports/${LAB_PORT}`;
let portFd = -1;
const send = (o: AgentReply | AgentEvent) => writeSync(portFd, `${JSON.stringify(o)}\n`);

let torBootstrap = 0;
const windows = new Map<string, { procs: { spec: SenderSpec; child: ChildProcess; out: string; exited: Promise<void> }[] }>();

function followJournal(): void {
  const args = ['-f', '-o', 'json', '-n', 'all', '--no-pager', ...WATCHED_UNITS.flatMap((u) => ['-u', u])];
  const j = spawn('journalctl', args, { stdio: ['ignore', 'pipe', 'ignore'] });
  createInterface({ input: j.stdout }).on('line', (l) => {
    try {
      const e = JSON.parse(l) as { MESSAGE?: unknown; _SYSTEMD_UNIT?: string; UNIT?: string; __MONOTONIC_TIMESTAMP?: string };
      if (typeof e.MESSAGE !== 'string') return;
      const m = /Bootstrapped (\d+)%/.exec(e.MESSAGE);
      if (m) torBootstrap = Math.max(torBootstrap, Number(m[1]));
      send({ ev: 'log', unit: e._SYSTEMD_UNIT ?? e.UNIT ?? 'systemd', line: e.MESSAGE, mono: Number(e.__MONOTONIC_TIMESTAMP ?? 0) });
    } catch {
      // a partial line: journalctl writes whole lines, so this is not reached in practice
    }
  });
}

function readSettings(): unknown {
  try {
    return JSON.parse(readFileSync(TEST_SETTINGS_PATHS.state, 'utf8'));
  } catch {
    return { status: 'unknown' };
  }
}

async function units(): Promise<Record<string, UnitState>> {
  const r = await run('systemctl', ['show', '-p', 'Id,ActiveState,SubState,Result', ...WATCHED_UNITS]);
  const out: Record<string, UnitState> = {};
  for (const block of r.stdout.split(/\n\s*\n/)) {
    const kv = Object.fromEntries(
      block
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    if (kv.Id) out[kv.Id] = { active: kv.ActiveState ?? '', sub: kv.SubState ?? '', result: kv.Result ?? '' };
  }
  return out;
}

async function links(): Promise<LinkState[]> {
  const [l, a] = await Promise.all([run('ip', ['-j', '-d', 'link', 'show']), run('ip', ['-j', 'addr', 'show'])]);
  type Link = { ifname: string; address?: string; permaddr?: string; operstate?: string };
  type Addr = { ifname: string; addr_info?: { family: string; local: string; prefixlen: number }[] };
  const ls = (JSON.parse(l.stdout || '[]') as Link[]).filter((x) => x.ifname !== 'lo');
  const as = JSON.parse(a.stdout || '[]') as Addr[];
  return ls.map((x) => {
    const info = as.find((y) => y.ifname === x.ifname)?.addr_info ?? [];
    return {
      name: x.ifname,
      mac: x.address ?? '',
      ...(x.permaddr ? { permaddr: x.permaddr } : {}),
      operstate: x.operstate ?? '',
      ipv4: info.filter((i) => i.family === 'inet').map((i) => `${i.local}/${i.prefixlen}`),
      ipv6: info.filter((i) => i.family === 'inet6').map((i) => `${i.local}/${i.prefixlen}`),
    };
  });
}

async function sysctls(keys: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const k of keys) {
    const r = await run('sysctl', ['-n', k]);
    out[k] = r.code === 0 ? r.stdout.trim() : `unavailable (${r.stderr.trim()})`;
  }
  return out;
}

async function status(): Promise<AgentStatus> {
  const [system, u, ln, rules, tables, sys] = await Promise.all([
    run('systemctl', ['is-system-running']),
    units(),
    links(),
    run('bash', ['-c', RULESET_HASH_SH]),
    run('nft', ['list', 'tables']),
    sysctls(['kernel.unprivileged_userns_clone', 'net.ipv6.conf.all.disable_ipv6', 'net.ipv6.conf.default.disable_ipv6']),
  ]);
  return {
    uptime: uptime(),
    system: system.stdout.trim(),
    units: u,
    links: ln,
    resolvConf: fileSha('/etc/resolv.conf'),
    clearnetResolvConf: fileSha('/etc/resolv-over-clearnet.conf'),
    ruleset: rules.stdout.trim() || 'absent',
    tables: tables.stdout
      .split('\n')
      .map((l) => l.replace(/^table /, '').trim())
      .filter(Boolean),
    torBootstrap,
    // Tails' flag files, as htpdate's time.conf names them
    htpdate: { done: existsSync('/run/htpdate/done'), success: existsSync('/run/htpdate/success') },
    sysctl: sys,
    settings: readSettings(),
  };
}

async function http(cmd: Extract<AgentCommand, { op: 'http' }>): Promise<HttpOutcome> {
  const job: HttpJob = {
    ...(cmd.via.kind === 'socks' ? { socks: { address: cmd.via.address, port: cmd.via.port } } : {}),
    ...(cmd.via.kind === 'netns' ? { socks: { address: '127.0.0.1', port: cmd.via.port } } : {}),
    host: cmd.host,
    port: cmd.port,
    path: cmd.path,
    timeoutMs: cmd.timeoutMs,
  };
  // inside a namespace the launcher picks the user (the desktop user); elsewhere setpriv
  const argv =
    cmd.via.kind === 'netns'
      ? ['leakless-netns-exec', cmd.via.namespace, '--', NODE, SELF, 'http', JSON.stringify(job)]
      : [...asUser(cmd.as), NODE, SELF, 'http', JSON.stringify(job)];
  const r = await run(argv[0]!, argv.slice(1), cmd.timeoutMs + 20_000);
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as HttpOutcome;
  } catch {
    return { ok: false, stage: 'worker', error: `exit ${r.code}: ${r.stderr.trim().slice(0, 300)}`, ms: 0 };
  }
}

async function lookup(cmd: Extract<AgentCommand, { op: 'lookup' }>): Promise<{ code: number; addresses: string[] }> {
  const r = await run(asUser(cmd.as)[0]!, [...asUser(cmd.as).slice(1), 'getent', 'ahostsv4', cmd.name], 40_000);
  return { code: r.code, addresses: [...new Set(r.stdout.split('\n').map((l) => l.split(/\s+/)[0]!))].filter((x) => /^\d+\.\d+\.\d+\.\d+$/.test(x)) };
}

function startSenders(cmd: Extract<AgentCommand, { op: 'senders-start' }>): { started: number } {
  if (windows.has(cmd.window)) throw new Error(`window ${cmd.window} already has senders`);
  const gap = (cmd.gapMs / 1000).toFixed(3);
  const procs = cmd.senders.map((spec) => {
    const args = [
      ...asUser(spec.as).slice(1),
      'bash',
      '-c',
      SENDER_SH,
      'sender',
      spec.proto,
      spec.host,
      String(spec.port),
      spec.token,
      String(cmd.attempts),
      gap,
    ];
    const child = spawn('setpriv', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    const p = { spec, child, out: '', exited: new Promise<void>((r) => child.on('close', () => r())) };
    child.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
    return p;
  });
  windows.set(cmd.window, { procs });
  return { started: procs.length };
}

async function stopSenders(window: string): Promise<SenderResult[]> {
  const w = windows.get(window);
  if (!w) throw new Error(`no senders in window ${window}`);
  windows.delete(window);
  for (const p of w.procs) p.child.kill('SIGTERM');
  await Promise.race([Promise.all(w.procs.map((p) => p.exited)), new Promise((r) => setTimeout(r, 8000))]);
  return w.procs.map(
    (p) =>
      parseSenderLine(p.spec.label, p.out.trim().split('\n').pop() ?? '') ?? {
        label: p.spec.label,
        token: p.spec.token,
        attempts: -1,
        sent: -1,
        refused: -1,
      },
  );
}

async function killTor(): Promise<unknown> {
  const before = (await units())['tor@default.service'];
  // masked first: Debian's unit has Restart=on-failure, and this scenario is "tor stays down"
  const mask = await run('systemctl', ['mask', '--runtime', 'tor@default.service']);
  const kill = await run('systemctl', ['kill', '--signal=SIGKILL', 'tor@default.service']);
  await new Promise((r) => setTimeout(r, 3000));
  const after = (await units())['tor@default.service'];
  const left = await run('pidof', ['tor']);
  return { before, after, mask: mask.code, kill: kill.code, torProcesses: left.stdout.trim(), uptime: uptime() };
}

async function restartFirewall(): Promise<unknown> {
  const t0 = Date.now();
  const r = await run('systemctl', ['restart', 'leakless-firewall.service'], 120_000);
  return { code: r.code, stderr: r.stderr.trim(), ms: Date.now() - t0, uptime: uptime() };
}

const SHUTDOWN_HOOK = '/usr/lib/systemd/system-shutdown/leakless-lab';

async function shutdown(cmd: Extract<AgentCommand, { op: 'shutdown' }>): Promise<unknown> {
  // the final probe runs from systemd-shutdown after every process was killed: a self-contained script
  mkdirSync('/usr/lib/systemd/system-shutdown', { recursive: true });
  writeFileSync(SHUTDOWN_HOOK, lateScript('final', cmd.senders));
  chmodSync(SHUTDOWN_HOOK, 0o755);
  const setup = await run('bash', ['-c', lateScript('setup', cmd.senders)], 60_000);
  // SIGRTMIN+20 (54 with glibc's SIGRTMIN of 34): systemd prints its status lines on the console
  // (systemd(1)), so the serial log shows when NetworkManager stopped; `quiet` had them off
  process.kill(1, 54);
  setTimeout(() => void run('systemctl', ['poweroff', '--no-block']), 500);
  return { setup: setup.stdout.trim().split('\n').pop() ?? '', uptime: uptime() };
}

async function analyze(): Promise<Record<string, string>> {
  const [time, blame, chain] = await Promise.all([
    run('systemd-analyze', ['time']),
    run('systemd-analyze', ['blame', '--no-pager']),
    run('systemd-analyze', ['critical-chain', '--no-pager']),
  ]);
  return { time: time.stdout.trim(), blame: blame.stdout.trim(), criticalChain: chain.stdout.trim(), uptime: String(uptime()) };
}

async function handle(cmd: AgentCommand): Promise<unknown> {
  switch (cmd.op) {
    case 'status':
      return status();
    case 'http':
      return http(cmd);
    case 'lookup':
      return lookup(cmd);
    case 'senders-start':
      return startSenders(cmd);
    case 'senders-stop':
      return stopSenders(cmd.window);
    case 'kill-tor':
      return killTor();
    case 'restart-firewall':
      return restartFirewall();
    case 'shutdown':
      return shutdown(cmd);
    case 'analyze':
      return analyze();
  }
}

function agent(): void {
  portFd = openSync(PORT, 'r+');
  send({ ev: 'hello', uptime: uptime(), settings: readSettings() });
  followJournal();
  createInterface({ input: createReadStream('', { fd: portFd, autoClose: false }) }).on('line', (line) => {
    if (!line.trim()) return;
    const p = parseCommand(line);
    if (!p.ok) {
      send({ id: p.id ?? -1, ok: false, error: p.error });
      return;
    }
    handle(p.cmd).then(
      (result) => send({ id: p.cmd.id, ok: true, result }),
      (e: Error) => send({ id: p.cmd.id, ok: false, error: e.message }),
    );
  });
}

const [mode, arg] = process.argv.slice(2);
if (mode === 'http' && arg) {
  httpWorker(JSON.parse(arg) as HttpJob).then((o) => process.stdout.write(`${JSON.stringify(o)}\n`));
} else if (mode === undefined) {
  agent();
} else {
  process.stderr.write('usage: lab-agent [http JSON]\n');
  process.exitCode = 2;
}

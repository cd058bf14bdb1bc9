// The image's tor in the system under test: the emitted /etc/tor (base torrc,
// torrc.d) plus one test-only drop-in that points it at the private network,
// Debian's tor-service-defaults-torrc with its paths moved into a temporary
// directory, the tor@default drop-in's bind of the clearnet resolver file over
// /etc/resolv.conf, all in a private mount namespace (the host's /etc is never
// touched), started as the policy's tor uid so the firewall sees that uid.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { GeneratedFile, Policy } from '@leakless/policy';
import { DEBIAN_DEFAULTS_TORRC, TORRC_D, unitDropInDir } from '@leakless/tor-config';
import { type Lab, startServer } from '../lab/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SutTorOptions {
  /** The lab whose sut runs it. */
  readonly lab: Lab;
  readonly policy: Policy;
  /** The emitted files (at least tor-config's). */
  readonly files: readonly GeneratedFile[];
  /** Test-only torrc.d drop-in content (the private network's DirAuthority lines …). */
  readonly labDropIn: string;
  /** Content the clearnet resolver file has (what DHCP would have written). */
  readonly clearnetResolv?: string;
}

export interface SutTor {
  readonly dataDir: string;
  readonly cookieFile: string;
  readonly startedAt: number;
  /** Highest "Bootstrapped N%" in the log so far. */
  progress(): number;
  /** The last "Bootstrapped N% (tag): summary" of the log (tor's own word for where it is stuck). */
  lastBootstrap(): string | undefined;
  /** Resolves with the ms from start to 100 %, rejects after timeoutMs. */
  waitBootstrapped(timeoutMs: number): Promise<number>;
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

/** Debian's defaults file, relocated: every path into the run's directory, no User (we start as the tor uid). */
export function labDefaults(debian: string, dataDir: string): string {
  return debian
    .split('\n')
    .filter((l) => !/^(User|RunAsDaemon)\b/.test(l))
    .map((l) =>
      l
        .replace(/^DataDirectory .*/, `DataDirectory ${dataDir}`)
        .replace(/^PidFile .*/, `PidFile ${dataDir}/tor.pid`)
        .replace(/\/run\/tor\//g, `${dataDir}/`),
    )
    .join('\n');
}

/** BindReadOnlyPaths=SRC:DST lines of the emitted tor unit drop-ins. */
export function unitBinds(policy: Policy, files: readonly GeneratedFile[]): { source: string; target: string }[] {
  const dir = `${unitDropInDir(policy)}/`;
  return files
    .filter((f) => f.path.startsWith(dir))
    .flatMap((f) => f.content.split('\n'))
    .map((l) => /^BindReadOnlyPaths=([^:\s]+):(\S+)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ source: m[1]!, target: m[2]! }));
}

export async function startSutTor(opts: SutTorOptions): Promise<SutTor> {
  const { policy, lab } = opts;
  const t = policy.torUser;
  // In the lab's directory: the tor uid must reach its data directory and configuration wherever the checkout is.
  const work = mkdtempSync(join(lab.dir, 'sut-tor-'));
  chmodSync(work, 0o755);
  const etc = join(work, 'etc-tor');
  const data = join(work, 'data');
  mkdirSync(join(etc, 'torrc.d'), { recursive: true });
  mkdirSync(data, { mode: 0o700 });
  chownSync(data, t.uid, t.gid);
  for (const f of opts.files.filter((x) => x.path.startsWith('/etc/tor/'))) {
    const p = join(etc, f.path.slice('/etc/tor/'.length));
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.content, { mode: f.mode });
  }
  writeFileSync(join(etc, TORRC_D.slice('/etc/tor/'.length), '99-lab.conf'), `${opts.labDropIn.trimEnd()}\nLog notice file ${data}/notice.log\n`, {
    mode: 0o644,
  });
  const defaults = join(work, 'defaults-torrc');
  writeFileSync(defaults, labDefaults(readFileSync(DEBIAN_DEFAULTS_TORRC, 'utf8'), data), { mode: 0o644 });
  // The tor@default drop-in: the clearnet resolver file bind-mounted read-only over its target.
  const binds = unitBinds(policy, opts.files);
  if (binds.length !== 1) throw new Error(`sut tor: expected one BindReadOnlyPaths in the emitted ${policy.torUnit} drop-in, found ${binds.length}`);
  const clearnet = join(work, 'clearnet-resolv.conf');
  writeFileSync(clearnet, opts.clearnetResolv ?? '', { mode: 0o644 });

  const startedAt = Date.now();
  // tor reports a refused configuration on stdout, before its log file is open.
  const stdout: string[] = [];
  // The emitted /etc/tor and the unit's bind, in a private mount namespace (the host's /etc is never touched), then the tor uid.
  // The emitted torrc puts the control socket and cookie in /run/tor, which Debian's tor@default
  // makes for the tor user before tor starts (docs/threat-model.md#controlport); the lab makes no
  // such directory on the host, so the command line moves both into the run's data directory,
  // as labDefaults does for Debian's defaults file (a command-line value replaces the torrc's).
  const runDir = ['--ControlSocket', `${data}/control GroupWritable RelaxDirModeCheck`, '--CookieAuthFile', `${data}/control.authcookie`];
  const proc = await startServer(lab, 'sut', ['tor', '--defaults-torrc', defaults, '-f', '/etc/tor/torrc', '--RunAsDaemon', '0', ...runDir], {
    label: 'the sut’s tor',
    as: { uid: t.uid, gid: t.gid },
    // Debian's tor@default has NoNewPrivileges=yes: tor and the pluggable transport it starts run under it here too.
    via: ['setpriv', '--no-new-privs', '--'],
    onLine: (l) => stdout.push(l) > 20 && stdout.shift(),
    binds: [
      { source: etc, target: '/etc/tor' },
      { source: clearnet, target: binds[0]!.target, readOnly: true },
    ],
  });
  const logFile = join(data, 'notice.log');
  const readLog = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const progress = () => Math.max(0, ...[...readLog().matchAll(/Bootstrapped (\d+)%/g)].map((m) => Number(m[1])));
  let stopped = false;
  const logTail = (n = 8) => readLog().trim().split('\n').slice(-n).join('\n');
  return {
    dataDir: data,
    cookieFile: join(data, 'control.authcookie'),
    startedAt,
    progress,
    lastBootstrap: () => [...readLog().matchAll(/Bootstrapped \d+% \([^)]*\): [^\n]*/g)].at(-1)?.[0],
    async waitBootstrapped(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (progress() === 100) return Date.now() - startedAt;
        if (!proc.running()) throw new Error(`sut tor exited: ${proc.stderr().trim()} ${stdout.join(' | ')} ${logTail()}`);
        if (Date.now() > deadline) throw new Error(`sut tor not bootstrapped after ${timeoutMs} ms (at ${progress()} %): ${logTail()}`);
        await sleep(250);
      }
    },
    logTail,
    async stop() {
      if (stopped) return;
      stopped = true;
      // SIGINT: with Sandbox 1 this tor blocks SIGTERM on this kernel (see packages/tor-config notes).
      await proc.stop('SIGINT', 3000);
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** A ControlPort connection as root inside the namespace (root is the policy's ControlPort client). */
export interface Control {
  command(line: string): Promise<string[]>;
  /** Asynchronous events (650 lines) received so far. */
  events(): readonly string[];
  close(): Promise<void>;
}

const CONTROL = new URL('./scripts/control.mjs', import.meta.url);

export async function openControl(lab: Lab, address: string, port: number, cookieFile: string): Promise<Control> {
  const events: string[] = [];
  const waiting: { lines: string[]; resolve: (l: string[]) => void; reject: (e: Error) => void }[] = [];
  let current: string[] = [];
  const onLine = (raw: string) => {
    const line = raw.replace(/\r$/, '');
    if (line.startsWith('650')) {
      events.push(line);
      return;
    }
    if (line.startsWith('ERROR')) {
      waiting.shift()?.reject(new Error(line));
      return;
    }
    current.push(line);
    if (/^\d{3} /.test(line)) {
      const done = current;
      current = [];
      const w = waiting.shift();
      if (w) w.resolve(done);
    }
  };
  // The AUTHENTICATE reply comes first: wait for it from the moment the client starts.
  const auth = new Promise<string[]>((resolve, reject) => {
    waiting.push({ lines: [], resolve, reject });
    setTimeout(() => reject(new Error('ControlPort: no reply to AUTHENTICATE after 5 s')), 5000);
  });
  auth.catch(() => undefined); // awaited below; a failure before then must not go unhandled
  const proc = await startServer(
    lab,
    'sut',
    { helper: CONTROL, args: [address, String(port), cookieFile] },
    { label: 'ControlPort client', stdin: 'pipe', onLine },
  );
  const command = (line: string) =>
    new Promise<string[]>((resolve, reject) => {
      waiting.push({ lines: [], resolve, reject });
      proc.write(line + '\n');
    });
  const reply = await auth;
  if (reply.at(-1) !== '250 OK') throw new Error(`ControlPort: AUTHENTICATE: ${reply.join(' | ')}`);
  return {
    command,
    events: () => [...events],
    async close() {
      proc.endInput();
      await proc.stop('SIGTERM', 2000);
    },
  };
}

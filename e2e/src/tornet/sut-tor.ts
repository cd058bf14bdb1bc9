// The image's tor in the system under test: the emitted /etc/tor (base torrc,
// torrc.d) plus one test-only drop-in that points it at the private network,
// Debian's tor-service-defaults-torrc with its paths moved into a temporary
// directory, the tor@default drop-in's bind of the clearnet resolver file over
// /etc/resolv.conf, all in a private mount namespace (the host's /etc is never
// touched), started as the policy's tor uid so the firewall sees that uid.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import type { GeneratedFile, Policy } from '@leakless/policy';
import { DEBIAN_DEFAULTS_TORRC, TORRC_D, unitDropInDir } from '@leakless/tor-config';
import { NODE, type Scripts } from './scripts.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SutTorOptions {
  readonly ns: string;
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
  const { policy } = opts;
  const t = policy.torUser;
  const work = mkdtempSync(join(tmpdir(), 'lk-sut-tor-'));
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
  writeFileSync(join(etc, TORRC_D.slice('/etc/tor/'.length), '99-lab.conf'), `${opts.labDropIn.trimEnd()}\nLog notice file ${data}/notice.log\n`, { mode: 0o644 });
  const defaults = join(work, 'defaults-torrc');
  writeFileSync(defaults, labDefaults(readFileSync(DEBIAN_DEFAULTS_TORRC, 'utf8'), data), { mode: 0o644 });
  // The tor@default drop-in: the clearnet resolver file bind-mounted read-only over its target.
  const binds = unitBinds(policy, opts.files);
  if (binds.length !== 1) throw new Error(`sut tor: expected one BindReadOnlyPaths in the emitted ${policy.torUnit} drop-in, found ${binds.length}`);
  const clearnet = join(work, 'clearnet-resolv.conf');
  writeFileSync(clearnet, opts.clearnetResolv ?? '', { mode: 0o644 });

  const script = [
    'set -e',
    'mount --bind "$1" /etc/tor',
    `mount --bind -o ro "$2" ${binds[0]!.target}`,
    `exec setpriv --reuid=${t.uid} --regid=${t.gid} --clear-groups tor --defaults-torrc "$3" -f /etc/tor/torrc --RunAsDaemon 0`,
  ].join('\n');
  const startedAt = Date.now();
  const child: ResultPromise = execa('ip', ['netns', 'exec', opts.ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script, 'sh', etc, clearnet, defaults], {
    reject: false,
    buffer: false,
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'pipe',
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
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
    async waitBootstrapped(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (progress() === 100) return Date.now() - startedAt;
        if (child.exitCode !== null) throw new Error(`sut tor exited (${child.exitCode}): ${stderr.trim()} ${logTail()}`);
        if (Date.now() > deadline) throw new Error(`sut tor not bootstrapped after ${timeoutMs} ms (at ${progress()} %): ${logTail()}`);
        await sleep(250);
      }
    },
    logTail,
    async stop() {
      if (stopped) return;
      stopped = true;
      // SIGINT: with Sandbox 1 this tor blocks SIGTERM on this kernel (see packages/tor-config notes).
      child.kill('SIGINT');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await child.catch(() => undefined);
      clearTimeout(killer);
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

export async function openControl(ns: string, address: string, port: number, cookieFile: string, scripts: Scripts): Promise<Control> {
  const child = execa('ip', ['netns', 'exec', ns, NODE, scripts.path('control.mjs'), address, String(port), cookieFile], { reject: false, buffer: false, stdin: 'pipe' });
  const events: string[] = [];
  const waiting: { lines: string[]; resolve: (l: string[]) => void; reject: (e: Error) => void }[] = [];
  let current: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (raw) => {
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
  });
  const command = (line: string) =>
    new Promise<string[]>((resolve, reject) => {
      waiting.push({ lines: [], resolve, reject });
      child.stdin!.write(line + '\n');
    });
  // The AUTHENTICATE reply comes first.
  const auth = await new Promise<string[]>((resolve, reject) => {
    waiting.push({ lines: [], resolve, reject });
    setTimeout(() => reject(new Error('ControlPort: no reply to AUTHENTICATE after 5 s')), 5000);
  });
  if (auth.at(-1) !== '250 OK') throw new Error(`ControlPort: AUTHENTICATE: ${auth.join(' | ')}`);
  return {
    command,
    events: () => [...events],
    async close() {
      child.stdin!.end();
      const k = setTimeout(() => child.kill('SIGKILL'), 2000);
      await child.catch(() => undefined);
      clearTimeout(k);
    },
  };
}

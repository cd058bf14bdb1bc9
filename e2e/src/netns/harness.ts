// The netns module's lab, built from the shared lab's primitives (e2e/src/lab:
// namespaces, veths, capture): two namespaces made by the test and joined
// only to each other.
//
//   lk-sut-XXXX  eth0 192.168.77.2/24, 2001:db8:77::2/64  (the machine under test)
//       | veth
//   lk-wld-XXXX  lan0 192.168.77.1/24 (the LAN router and LAN services)
//                lo 198.51.100.10, 203.0.113.10, 2001:db8::10 ("Internet" hosts)
//
// The emitted setup script runs inside lk-sut under a private mount namespace
// (the "holder"): /run/netns is a private tmpfs, so `ip netns add tbb` never
// meets the host's namespace names, and /etc is an overlay, so the tree's /etc
// files (and the script's /etc/netns link) exist for the test only. The
// script runs byte for byte as shipped: nothing in it knows about the lab.
import { execa, type ResultPromise } from 'execa';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { addRoute, addVeth, createNamespace, deleteNamespace, sh, uniqueSuffix, type Ran } from '../lab/netns.js';
import { startCapture, type CapturedPacket } from '../lab/capture.js';

export { sh, type Ran };

export const LAN = { sut: '192.168.77.2', router: '192.168.77.1', prefix: 24, sut6: '2001:db8:77::2', router6: '2001:db8:77::1' };
export const INET = { a: '198.51.100.10', b: '203.0.113.10', v6: '2001:db8::10' };

export type Run = Ran;

export interface Event {
  event: string;
  listener?: string;
  remote?: string;
  token?: string;
  target?: string;
  error?: string;
}

export interface Servers {
  events: Event[];
  tokens(): Set<string>;
  stop(): Promise<void>;
}

export interface Lab {
  readonly id: string;
  readonly sut: string;
  readonly world: string;
  /** Private directory readable by any uid (probe scripts live here). */
  readonly dir: string;
  /** PID of the holder: inside lk-sut, with the private /run/netns and /etc. */
  holderPid: number;
  /** Run a command inside lk-sut with the holder's mounts (where the script's namespaces are). */
  inSut(cmd: string, args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<Run>;
  /** Write a file through the holder's /etc overlay. */
  writeEtc(path: string, content: string, mode: number): Promise<void>;
  /** Start listeners; resolves once all listen. */
  servers(where: 'sut' | 'world' | { ns: string }, specs: readonly object[], uid?: number): Promise<Servers>;
  teardown(): Promise<void>;
}

const HERE = new URL('.', import.meta.url).pathname;

export async function createLab(): Promise<Lab> {
  const id = uniqueSuffix();
  const sut = `lk-sut-${id}`;
  const world = `lk-wld-${id}`;
  const dir = mkdtempSync(join(tmpdir(), `lk-netns-${id}-`));
  chmodSync(dir, 0o755);
  for (const f of ['probe.mjs', 'servers.mjs']) copyFileSync(join(HERE, f), join(dir, f));
  mkdirSync(join(dir, 'upper'));
  mkdirSync(join(dir, 'work'));
  const children: ResultPromise[] = [];
  const created: string[] = [];
  let holder: ResultPromise | undefined;

  const lab: Lab = {
    id,
    sut,
    world,
    dir,
    holderPid: 0,
    inSut: (cmd, args, opts) => sh('nsenter', ['-t', String(lab.holderPid), '-m', '-n', '--', cmd, ...args], opts),
    async writeEtc(path, content, mode) {
      if (!path.startsWith('/etc/')) throw new Error(`writeEtc: ${path} is not under /etc`);
      const r = await lab.inSut('sh', ['-c', 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"', 'sh', path, mode.toString(8)], { input: content });
      if (r.exitCode !== 0) throw new Error(`writeEtc ${path}: ${r.stderr}`);
    },
    async servers(where, specs, uid) {
      const drop = uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--'];
      const node = [...drop, 'node', join(dir, 'servers.mjs'), JSON.stringify(specs)];
      const argv =
        where === 'world'
          ? ['ip', 'netns', 'exec', world, ...node]
          : where === 'sut'
            ? ['nsenter', '-t', String(lab.holderPid), '-m', '-n', '--', ...node]
            : ['nsenter', '-t', String(lab.holderPid), '-m', '-n', '--', 'ip', 'netns', 'exec', where.ns, ...node];
      const child = execa(argv[0]!, argv.slice(1), { reject: false, buffer: false, stdin: 'ignore' });
      children.push(child);
      const events: Event[] = [];
      let listening = 0;
      let failed: string | undefined;
      let partial = '';
      child.stdout!.on('data', (d: Buffer) => {
        partial += d.toString();
        const lines = partial.split('\n');
        partial = lines.pop()!;
        for (const l of lines) {
          const e = JSON.parse(l) as Event;
          if (e.event === 'listening') listening++;
          else if (e.event === 'error') failed = `${JSON.stringify(e)}`;
          else events.push(e);
        }
      });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const deadline = Date.now() + 10_000;
      while (listening < specs.length) {
        if (failed || child.exitCode !== null || Date.now() > deadline)
          throw new Error(`servers in ${JSON.stringify(where)} did not start: ${failed ?? (stderr.trim() || 'timeout')}`);
        await sleep(20);
      }
      return {
        events,
        tokens: () => new Set(events.map((e) => e.token ?? '').filter(Boolean)),
        async stop() {
          child.kill('SIGKILL');
          await child;
        },
      };
    },
    async teardown() {
      for (const c of children) c.kill('SIGKILL');
      await Promise.allSettled(children);
      // The holder's mount namespace holds the only handles of the script's
      // namespaces: when it dies they go, and their veths with them.
      if (holder) {
        holder.kill('SIGKILL');
        await holder.catch(() => undefined);
      }
      for (const ns of created.reverse()) await deleteNamespace(ns);
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    for (const ns of [sut, world]) {
      await createNamespace(ns);
      created.push(ns);
    }
    await addVeth({ ns: sut, ifname: 'eth0', addrs: [`${LAN.sut}/${LAN.prefix}`, `${LAN.sut6}/64`] }, { ns: world, ifname: 'lan0', addrs: [`${LAN.router}/${LAN.prefix}`, `${LAN.router6}/64`] });
    await addRoute(sut, ['default', 'via', LAN.router]);
    await addRoute(sut, ['default', 'via', LAN.router6]);
    // The "Internet" hosts live on the router's loopback (no dummy module on every kernel).
    for (const a of [`${INET.a}/32`, `${INET.b}/32`]) await mustRun('ip', ['-n', world, 'addr', 'add', a, 'dev', 'lo']);
    await mustRun('ip', ['-n', world, '-6', 'addr', 'add', `${INET.v6}/128`, 'dev', 'lo']);

    const mounts = [
      'set -e',
      'mount -t tmpfs -o mode=0755 lk-run-netns /run/netns',
      `mount -t overlay lk-etc -o lowerdir=/etc,upperdir=${dir}/upper,workdir=${dir}/work /etc`,
      'echo ready',
      'exec sleep 86400',
    ].join('\n');
    holder = execa('ip', ['netns', 'exec', sut, 'unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', mounts], { reject: false, buffer: false, stdin: 'ignore' });
    let out = '';
    holder.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    let err = '';
    holder.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const deadline = Date.now() + 10_000;
    while (!out.includes('ready')) {
      if (holder.exitCode !== null || Date.now() > deadline) throw new Error(`lab holder did not start: ${err.trim() || 'timeout'}`);
      await sleep(10);
    }
    // ip netns exec and unshare exec in place: the holder's pid is the sleep's.
    lab.holderPid = holder.pid!;
    return lab;
  } catch (e) {
    await lab.teardown();
    throw e;
  }
}

export interface ProbeSpec {
  id: string;
  proto: 'tcp' | 'udp' | 'http' | 'socks-http' | 'dns' | 'ifaces' | 'hostname';
  host?: string;
  port?: number;
  via?: { host: string; port: number };
}

export interface ProbeResult {
  id: string;
  outcome: string;
  body?: string;
  detail?: string;
}

/** Run a batch of probes with `prefix` (e.g. the launcher, or nsenter …) in front of `node probe.mjs`. */
export async function probe(lab: Lab, prefix: readonly string[], probes: readonly ProbeSpec[]): Promise<ProbeResult[]> {
  if (probes.length === 0) return [];
  const argv = [...prefix, 'node', join(lab.dir, 'probe.mjs'), JSON.stringify(probes)];
  const r = await sh(argv[0]!, argv.slice(1), { timeoutMs: 20_000 });
  if (r.exitCode !== 0) throw new Error(`probe failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ProbeResult[];
}

/** A unique token for a probe, so a listener's log says which probe arrived. */
export function token(label: string): string {
  return `${label}-${randomBytes(3).toString('hex')}`;
}

async function mustRun(cmd: string, args: readonly string[]): Promise<void> {
  const r = await sh(cmd, args);
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr.trim()}`);
}

/**
 * What applications on the sut sent out of its uplink (the shared lab's
 * capture, -Q out). The kernel's own IPv6 neighbour discovery and multicast
 * listener reports, and ARP, are not traffic anything sent.
 */
export async function capture(lab: Lab): Promise<{ stop(): Promise<CapturedPacket[]> }> {
  const c = await startCapture(lab.sut, 'eth0', { direction: 'out' });
  return {
    async stop() {
      await sleep(300);
      return (await c.stop()).filter((p) => p.ethertype !== 0x0806 && p.proto !== 58 && !(p.family === 6 && p.dst.toLowerCase().startsWith('ff')));
    },
  };
}

// Network namespaces, veths and commands inside them. Every name a lab makes
// carries a random suffix (lk-sut-1a2b), so a leftover from a crashed run never
// collides with the next one, and parallel runs do not see each other.
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';

export interface Ran {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time of the command. */
  readonly ms: number;
}

export interface ShOptions {
  readonly input?: string;
  readonly timeoutMs?: number;
}

/** Run a host command; never throws, a missing binary is exit 127. */
export async function sh(cmd: string, args: readonly string[], opts: ShOptions = {}): Promise<Ran> {
  const t0 = performance.now();
  const r = await execa(cmd, [...args], { reject: false, input: opts.input ?? '', timeout: opts.timeoutMs ?? 30_000, stripFinalNewline: false });
  const ms = performance.now() - t0;
  if (r.exitCode === undefined)
    return { exitCode: 127, stdout: String(r.stdout ?? ''), stderr: `${cmd}: ${r.shortMessage ?? 'could not run'}\n${String(r.stderr ?? '')}`, ms };
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr), ms };
}

/** Like sh, but a non-zero exit throws with the command and its stderr. */
export async function must(cmd: string, args: readonly string[], opts: ShOptions = {}): Promise<Ran> {
  const r = await sh(cmd, args, opts);
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

export async function inNs(ns: string, cmd: string, args: readonly string[], opts: ShOptions = {}): Promise<Ran> {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

export async function mustInNs(ns: string, cmd: string, args: readonly string[], opts: ShOptions = {}): Promise<Ran> {
  return must('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

export function uniqueSuffix(): string {
  return randomBytes(2).toString('hex');
}

/** A uid and gid a lab process runs as. */
export interface Ids {
  readonly uid: number;
  readonly gid: number;
}

/**
 * The prefix that drops root to a real uid with no supplementary groups: the
 * firewall matches on the socket's uid (skuid), so a probe must be that uid,
 * not root pretending.
 */
export function asUser(ids: Ids | undefined): string[] {
  return ids ? ['setpriv', `--reuid=${ids.uid}`, `--regid=${ids.gid}`, '--clear-groups', '--'] : [];
}

/** Create a namespace with lo up. */
export async function createNamespace(name: string): Promise<void> {
  await must('ip', ['netns', 'add', name]);
  await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

/** Delete a namespace and kill whatever still runs in it; never throws (teardown runs on failure paths). */
export async function deleteNamespace(name: string): Promise<void> {
  const pids = await sh('ip', ['netns', 'pids', name]);
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await sh('ip', ['netns', 'del', name]);
}

export async function namespaceExists(name: string): Promise<boolean> {
  const r = await sh('ip', ['netns', 'list']);
  return r.stdout.split('\n').some((l) => l.split(/\s+/)[0] === name);
}

export interface VethEnd {
  readonly ns: string;
  readonly ifname: string;
  /** Addresses with prefix, v4 or v6 (v6 added with nodad: no 1 s duplicate detection wait). */
  readonly addrs: readonly string[];
}

/** A veth pair between two namespaces, both ends up. The pair is made in the first namespace so no host interface ever exists. */
export async function addVeth(a: VethEnd, b: VethEnd): Promise<void> {
  await must('ip', ['-n', a.ns, 'link', 'add', a.ifname, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns]);
  for (const end of [a, b]) {
    for (const addr of end.addrs) await addAddr(end.ns, end.ifname, addr, true);
    await must('ip', ['-n', end.ns, 'link', 'set', end.ifname, 'up']);
  }
}

/** One address (with prefix) on an interface; IPv6 with nodad. */
export async function addAddr(ns: string, dev: string, addr: string, broadcast = false): Promise<void> {
  const v6 = addr.includes(':');
  await must('ip', ['-n', ns, ...(v6 ? ['-6'] : []), 'addr', 'add', addr, 'dev', dev, ...(v6 ? ['nodad'] : broadcast ? ['brd', '+'] : [])]);
}

export async function delAddr(ns: string, dev: string, addr: string): Promise<void> {
  await sh('ip', ['-n', ns, ...(addr.includes(':') ? ['-6'] : []), 'addr', 'del', addr, 'dev', dev]);
}

export async function addRoute(ns: string, route: readonly string[]): Promise<void> {
  const v6 = route.some((x) => x.includes(':'));
  await must('ip', ['-n', ns, ...(v6 ? ['-6'] : []), 'route', 'add', ...route]);
}

export async function sysctl(ns: string, settings: Readonly<Record<string, string>>): Promise<void> {
  const args = Object.entries(settings).flatMap(([k, v]) => ['-w', `${k}=${v}`]);
  await mustInNs(ns, 'sysctl', ['-q', ...args]);
}

// Network namespaces, veths and commands inside them. Every name a lab makes
// carries a random suffix (lk-sut-1a2b), so a leftover from a crashed run never
// collides with the next one, and parallel runs do not see each other.
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';

export interface Ran {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a host command; never throws, a missing binary is exit 127. */
export async function sh(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<Ran> {
  const r = await execa(cmd, [...args], { reject: false, input: opts.input ?? '', timeout: opts.timeoutMs ?? 30_000, stripFinalNewline: false });
  if (r.exitCode === undefined) return { exitCode: 127, stdout: '', stderr: `${cmd}: ${r.shortMessage ?? 'could not run'}` };
  return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Like sh, but a non-zero exit throws with the command and its stderr. */
export async function must(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<Ran> {
  const r = await sh(cmd, args, opts);
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

export function nsArgs(ns: string, cmd: string, args: readonly string[]): [string, string[]] {
  return ['ip', ['netns', 'exec', ns, cmd, ...args]];
}

export async function inNs(ns: string, cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<Ran> {
  const [c, a] = nsArgs(ns, cmd, args);
  return sh(c, a, opts);
}

export async function mustInNs(ns: string, cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<Ran> {
  const [c, a] = nsArgs(ns, cmd, args);
  return must(c, a, opts);
}

export function uniqueSuffix(): string {
  return randomBytes(2).toString('hex');
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
    for (const addr of end.addrs) {
      const v6 = addr.includes(':');
      await must('ip', ['-n', end.ns, ...(v6 ? ['-6'] : []), 'addr', 'add', addr, 'dev', end.ifname, ...(v6 ? ['nodad'] : ['brd', '+'])]);
    }
    await must('ip', ['-n', end.ns, 'link', 'set', end.ifname, 'up']);
  }
}

export async function addRoute(ns: string, route: readonly string[]): Promise<void> {
  const v6 = route.some((x) => x.includes(':'));
  await must('ip', ['-n', ns, ...(v6 ? ['-6'] : []), 'route', 'add', ...route]);
}

export async function sysctl(ns: string, settings: Readonly<Record<string, string>>): Promise<void> {
  const args = Object.entries(settings).flatMap(([k, v]) => ['-w', `${k}=${v}`]);
  await mustInNs(ns, 'sysctl', ['-q', ...args]);
}

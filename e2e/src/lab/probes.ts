// Running probes as real uids: `setpriv --reuid=U --regid=G --clear-groups`
// inside a namespace, one python process per principal, its probes run
// concurrently (bounded) with short timeouts, so a whole matrix takes about
// one timeout of wall time.
//
// Every probe binds a source port (or ICMP echo id) the harness gave it and
// no other probe of the lab gets: the capture attributes packets by it. With
// kernel-chosen ports and concurrent principals, a port one probe released
// (a refused connect frees it at once) was handed to the next, and an allowed
// probe's packets were blamed on a refused one: a false leak, or a real one
// hidden behind an allowed probe.
import { runHelper } from './exec.js';
import type { Lab } from './topology.js';

export type ProbeKind = 'tcp' | 'udp' | 'udp-bcast' | 'icmp' | 'raw' | 'tcp-invalid' | 'udp-closed';

export interface ProbeSpec {
  readonly id: string;
  readonly kind: ProbeKind;
  readonly family: 4 | 6;
  readonly dst: string;
  readonly port?: number;
  /** IP protocol number for kind raw. */
  readonly proto?: number;
  /** Sent as payload, logged by the listener. */
  readonly token: string;
  /** The source port (TCP, UDP) or echo id (ICMP) to bind; runProbes assigns one when absent. Raw probes are found by token. */
  readonly sport?: number;
  /** Seconds. */
  readonly timeout: number;
}

export interface ProbeResult {
  readonly id: string;
  /** Source port (or ICMP echo id) the probe used; null if it failed before binding. */
  readonly sport: number | null;
  /** The source port the harness gave it (null for raw probes, found by token): sport must equal it. */
  readonly assigned: number | null;
  /** Connected / got a reply / sent. */
  readonly ok: boolean;
  /** errno name (ECONNREFUSED, EPERM …) or TIMEOUT. */
  readonly error: string | null;
  readonly ms: number;
}

/** Who sends: a uid in the namespace (setpriv), or root in it. */
export interface Sender {
  readonly ns: string;
  readonly uid: number;
  readonly gid: number;
}

const PROBE = new URL('./py/probe.py', import.meta.url);

/**
 * Probe source ports: below the kernel's ephemeral range (32768–60999), so no
 * socket the kernel numbers can take one, above the lab's listeners.
 */
export const PROBE_PORTS = { first: 20000, last: 32767 } as const;
const nextPort = new WeakMap<object, number>();

/**
 * `n` source ports no probe of this lab had before (wrapping only after the
 * whole range, long after TIME_WAIT), skipping `avoid` (the listeners' ports).
 */
export function probePorts(lab: object, n: number, avoid: ReadonlySet<number> = new Set()): number[] {
  const span = PROBE_PORTS.last - PROBE_PORTS.first + 1;
  const out: number[] = [];
  let next = nextPort.get(lab) ?? PROBE_PORTS.first;
  for (let tries = 0; out.length < n; tries++) {
    if (tries > span) throw new Error(`lab: no free probe source port (${avoid.size} avoided)`);
    if (!avoid.has(next)) out.push(next);
    next = next === PROBE_PORTS.last ? PROBE_PORTS.first : next + 1;
  }
  nextPort.set(lab, next);
  return out;
}

export async function runProbes(
  lab: Lab,
  sender: Sender,
  probes: readonly ProbeSpec[],
  opts: { workers?: number; timeoutMs?: number } = {},
): Promise<ProbeResult[]> {
  if (probes.length === 0) return [];
  const fresh = probePorts(lab, probes.filter((p) => p.sport === undefined).length);
  const withPorts = probes.map((p) => (p.sport === undefined ? { ...p, sport: fresh.shift()! } : p));
  const r = await runHelper(lab, { ns: sender.ns }, PROBE, [], {
    env: { PROBE_WORKERS: String(opts.workers ?? 48) },
    as: { uid: sender.uid, gid: sender.gid },
    input: JSON.stringify(withPorts),
    timeoutMs: opts.timeoutMs ?? 30_000,
  });
  if (r.exitCode !== 0)
    throw new Error(`probe runner as uid ${sender.uid} in ${sender.ns} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const out = JSON.parse(r.stdout) as { uid: number; gid: number; results: ProbeResult[] };
  // The uid the kernel saw is the point of the whole exercise: check it.
  if (out.uid !== sender.uid || out.gid !== sender.gid) throw new Error(`probe runner ran as ${out.uid}:${out.gid}, wanted ${sender.uid}:${sender.gid}`);
  return out.results.map((res, i) => ({ ...res, assigned: withPorts[i]!.kind === 'raw' ? null : withPorts[i]!.sport! }));
}

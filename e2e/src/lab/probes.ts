// Running probes as real uids: `setpriv --reuid=U --regid=G --clear-groups`
// inside a namespace, one python process per principal, its probes run
// concurrently (bounded) with short timeouts, so a whole matrix takes about
// one timeout of wall time.
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
  /** Seconds. */
  readonly timeout: number;
}

export interface ProbeResult {
  readonly id: string;
  /** Source port (or ICMP echo id) the probe used; null if it failed before binding. */
  readonly sport: number | null;
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

export async function runProbes(
  lab: Lab,
  sender: Sender,
  probes: readonly ProbeSpec[],
  opts: { workers?: number; timeoutMs?: number } = {},
): Promise<ProbeResult[]> {
  if (probes.length === 0) return [];
  const r = await runHelper(lab, { ns: sender.ns }, PROBE, [], {
    env: { PROBE_WORKERS: String(opts.workers ?? 48) },
    as: { uid: sender.uid, gid: sender.gid },
    input: JSON.stringify(probes),
    timeoutMs: opts.timeoutMs ?? 30_000,
  });
  if (r.exitCode !== 0)
    throw new Error(`probe runner as uid ${sender.uid} in ${sender.ns} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const out = JSON.parse(r.stdout) as { uid: number; gid: number; results: ProbeResult[] };
  // The uid the kernel saw is the point of the whole exercise: check it.
  if (out.uid !== sender.uid || out.gid !== sender.gid) throw new Error(`probe runner ran as ${out.uid}:${out.gid}, wanted ${sender.uid}:${sender.gid}`);
  return out.results;
}

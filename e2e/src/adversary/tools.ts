// What attacks share: running a helper as the attacker (optionally with a
// capability, for a planted weakness) or as a victim, the uplink capture and
// finding a run's packets by token. Attacks may also use the lab directly
// (../lab/index.js): listeners, probes, namespaces.
import type { Ids } from '../lab/index.js';
import { type CapturedPacket, helper, type Ran, run, startCapture, type Where } from '../lab/index.js';
import { interpreterFor } from '../lab/stage.js';
import type { AttackEnv } from './framework.js';

export interface HelperRun {
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Ambient capabilities kept across the uid change (a planted weakness: e.g. net_raw, as from a setcap'd binary). */
  readonly caps?: readonly string[];
  /** A command the helper runs under, as the same uid (`unshare -r`: inside a user namespace of its own). */
  readonly wrap?: readonly string[];
}

/** Run a staged helper (python or node) as `who` in `where`; never throws (a non-zero exit is in the result). */
export async function runAs(env: AttackEnv, who: Ids, where: Where, source: URL, args: readonly string[], opts: HelperRun = {}): Promise<Ran> {
  const path = helper(env.lab, source);
  const caps = opts.caps ?? [];
  const setpriv = [
    `--reuid=${who.uid}`,
    `--regid=${who.gid}`,
    '--clear-groups',
    ...(caps.length ? [`--inh-caps=${caps.map((c) => `+${c}`).join(',')}`, `--ambient-caps=${caps.map((c) => `+${c}`).join(',')}`] : []),
    '--',
  ];
  return run(env.lab, where, 'setpriv', [...setpriv, ...(opts.wrap ?? []), ...interpreterFor(path), path, ...args], {
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    timeoutMs: opts.timeoutMs ?? 30_000,
  });
}

/** The helper's stdout as JSON; a failed or silent helper is an error (the run is then inconclusive). */
export function jsonOf<T>(r: Ran, what: string): T {
  if (r.exitCode !== 0) throw new Error(`${what} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`${what} printed no JSON: ${r.stdout.slice(0, 200)}`);
  }
}

/** Everything that leaves the sut's uplink while `fn` runs (both IPv4 and IPv6, any protocol). */
export async function captured<T>(env: AttackEnv, fn: () => Promise<T>): Promise<{ result: T; packets: CapturedPacket[] }> {
  const cap = await startCapture(env.lab.sut, env.lab.uplink);
  let result: T;
  try {
    result = await fn();
    // let the last frames reach tcpdump
    await new Promise((r) => setTimeout(r, 300));
  } catch (e) {
    await cap.stop().catch(() => undefined);
    throw e;
  }
  // a capture that dropped packets throws: the run is then inconclusive, never a pass
  return { result, packets: await cap.stop() };
}

/** The packets whose payload starts with one of this run's tokens (`env.token`, or tokens derived from it). */
export function carrying(packets: readonly CapturedPacket[], token: string): CapturedPacket[] {
  return packets.filter((p) => p.token?.startsWith(token) === true);
}

export function describePacket(p: CapturedPacket): string {
  return `IPv${p.family} proto ${p.proto} ${p.src}${p.sport !== undefined ? `:${p.sport}` : ''} → ${p.dst}${p.dport !== undefined ? `:${p.dport}` : ''}`;
}

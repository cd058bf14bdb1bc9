// One matrix run: capture on, every principal's probes in parallel, capture
// off, then attribute each captured packet to the probe that caused it and
// judge each probe against the oracle and the no-firewall control run.
// Attribution is by a marker no two probes share (the source port or echo id
// the harness gives each probe, and the token in its payload); a packet two
// probes could claim, or whose payload names another probe, is an oracle
// failure (inconclusive, never a verdict): guessing once blamed _apt for
// debian-tor's packets on a busy machine, and could as well hide a leak.
import type { Policy } from '@leakless/policy';
import { type CapturedPacket, PROTO, startCapture } from './capture.js';
import { checkInvariants, type InvariantResult, type Maker } from './invariants.js';
import type { Listener } from './listeners.js';
import type { Principal, Probe } from './matrix.js';
import { specOf } from './matrix.js';
import { type Expectation, expectation, type LabFacts } from './oracle.js';
import { type ProbeResult, probePorts, runProbes } from './probes.js';
import type { Lab } from './topology.js';

export interface RunOptions {
  /** Seconds a probe waits for a connection or a reply. */
  readonly timeout?: number;
  /** Milliseconds to wait after the last probe for stragglers at listeners and on the wire. */
  readonly settleMs?: number;
}

export interface MatrixRun {
  readonly label: string;
  readonly probes: readonly Probe[];
  readonly results: ReadonlyMap<string, ProbeResult>;
  /** Tokens the listeners logged during this run. */
  readonly tokens: ReadonlySet<string>;
  readonly packets: readonly Attributed[];
  readonly tokenOf: ReadonlyMap<string, string>;
  readonly wallMs: number;
}

/** A captured packet and the one probe it belongs to, if any. */
export interface Attributed {
  readonly packet: CapturedPacket;
  readonly probe?: Probe;
  /** A kernel ICMP error quoting one of the probe's datagrams. */
  readonly relatedError?: boolean;
  /** The probes the packet could belong to when it is not exactly one (by marker or by payload): the oracle cannot tell. */
  readonly collision?: readonly string[];
}

let runCounter = 0;

export async function runMatrix(lab: Lab, listeners: readonly Listener[], probes: readonly Probe[], label: string, opts: RunOptions = {}): Promise<MatrixRun> {
  const started = Date.now();
  const tag = `lk${(runCounter++).toString(36)}${lab.suffix}`;
  const tokenOf = new Map(probes.map((p, i) => [p.id, `${tag}-${i.toString(36)}`]));
  const avoid = new Set(listeners.flatMap((l) => l.specs.map((s) => s.port)));
  const ports = probePorts(lab, probes.length, avoid);
  const portOf = new Map(probes.map((p, i) => [p.id, ports[i]!]));
  const capture = await startCapture(lab.sut, lab.uplink);
  const byPrincipal = new Map<string, { principal: Principal; probes: Probe[] }>();
  for (const p of probes) {
    const g = byPrincipal.get(p.principal.id) ?? { principal: p.principal, probes: [] };
    g.probes.push(p);
    byPrincipal.set(p.principal.id, g);
  }
  let packets: CapturedPacket[] = [];
  const results = new Map<string, ProbeResult>();
  try {
    const all = await Promise.all(
      [...byPrincipal.values()].map(({ principal, probes: ps }) =>
        runProbes(
          lab,
          { ns: principal.ns, uid: principal.uid, gid: principal.gid },
          ps.map((p) => ({ ...specOf(p, tokenOf.get(p.id)!, opts.timeout ?? 0.7), sport: portOf.get(p.id)! })),
        ),
      ),
    );
    for (const r of all.flat()) results.set(r.id, r);
    await settle(listeners, opts.settleMs ?? 250);
  } finally {
    packets = await capture.stop();
  }
  const tokens = new Set(
    listeners.flatMap((l) =>
      l
        .events()
        .filter((e) => e.token?.startsWith(`${tag}-`))
        .map((e) => e.token!),
    ),
  );
  return { label, probes, results, tokens, packets: attribute(probes, results, packets, tokenOf), tokenOf, wallMs: Date.now() - started };
}

/**
 * Wait at least minMs, then until the listeners have logged nothing new for
 * 200 ms (at most 3 s): a listener slowed down by a busy machine must not turn
 * an arrival into "blocked".
 */
async function settle(listeners: readonly Listener[], minMs: number): Promise<void> {
  const count = () => listeners.reduce((n, l) => n + l.events().length, 0);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await sleep(minMs);
  const deadline = Date.now() + 3000;
  let last = count();
  while (Date.now() < deadline) {
    await sleep(200);
    const now = count();
    if (now === last) return;
    last = now;
  }
}

function l4Of(t: Probe['target']): number {
  if (t.kind === 'icmp') return t.family === 6 ? PROTO.icmpv6 : PROTO.icmp;
  if (t.kind === 'raw') return t.proto!;
  return t.kind === 'tcp' || t.kind === 'tcp-invalid' ? PROTO.tcp : PROTO.udp;
}

/** Whether `pk` carries this probe's marker: its flow, its echo id, an ICMP error quoting its datagram, or (raw) its token. */
function claims(probe: Probe, r: ProbeResult | undefined, pk: CapturedPacket, token: string | undefined): { relatedError?: boolean } | undefined {
  const t = probe.target;
  const l4 = l4Of(t);
  if (t.kind === 'raw') return pk.proto === l4 && pk.dst === t.dst && pk.token === token ? {} : undefined;
  const sport = r?.sport ?? undefined;
  if (sport === undefined) return undefined;
  if (t.kind === 'icmp') {
    const req = t.family === 6 ? 128 : 8;
    const rep = t.family === 6 ? 129 : 0;
    const mine =
      pk.proto === l4 && pk.icmpId === sport && ((pk.icmpType === req && pk.dst === t.dst) || (pk.icmpType === rep && probe.principal.kind === 'inbound'));
    return mine ? {} : undefined;
  }
  // the flow itself, outbound (…→ target) or, for inbound probes, the sut's answer (target → prober)
  if (
    pk.proto === l4 &&
    ((pk.dst === t.dst && pk.dport === t.port && pk.sport === sport) || (probe.principal.kind === 'inbound' && pk.sport === t.port && pk.dport === sport))
  )
    return {};
  // an ICMP error quoting a datagram of the flow
  if (pk.inner && pk.inner.proto === l4 && ((pk.inner.dport === sport && pk.inner.sport === t.port) || (pk.inner.sport === sport && pk.inner.dst === t.dst)))
    return { relatedError: true };
  return undefined;
}

/**
 * Which probe caused each captured packet: exactly one probe's marker, and
 * no other probe's token in its payload; anything else is a collision.
 */
export function attribute(
  probes: readonly Probe[],
  results: ReadonlyMap<string, ProbeResult>,
  packets: readonly CapturedPacket[],
  tokenOf: ReadonlyMap<string, string>,
): Attributed[] {
  const byToken = new Map([...tokenOf].map(([id, tok]) => [tok, id]));
  return packets.map((pk) => {
    const found = probes.flatMap((probe) => {
      const c = claims(probe, results.get(probe.id), pk, tokenOf.get(probe.id));
      return c ? [{ probe, ...c }] : [];
    });
    const named = pk.token !== undefined ? byToken.get(pk.token) : undefined;
    if (found.length > 1) return { packet: pk, collision: found.map((f) => f.probe.id) };
    const one = found[0];
    if (named !== undefined && named !== one?.probe.id) return { packet: pk, collision: [...(one ? [one.probe.id] : []), named] };
    if (!one) return { packet: pk };
    return { packet: pk, probe: one.probe, ...(one.relatedError ? { relatedError: true } : {}) };
  });
}

/** What keeps the oracle from telling, per probe: a marker it did not get, or a packet it shares with another probe. */
export function oracleFailures(run: Pick<MatrixRun, 'probes' | 'results' | 'packets'>): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of run.probes) {
    const r = run.results.get(p.id);
    if (!r) out.set(p.id, 'oracle: no result from the probe runner');
    else if (r.assigned !== null && r.sport !== r.assigned)
      out.set(p.id, `oracle: the probe did not get its own source port ${r.assigned} (${r.sport === null ? (r.error ?? 'unbound') : `got ${r.sport}`})`);
  }
  for (const x of run.packets.filter((a) => a.collision)) {
    for (const id of x.collision!)
      if (!out.has(id))
        out.set(
          id,
          `oracle: a packet (${packetText(x.packet)}) could belong to ${x.collision!.length > 1 ? x.collision!.join(' or ') : 'it but does not carry its marker'}`,
        );
  }
  return out;
}

export type Outcome = 'pass' | 'violation' | 'inconclusive';

export interface ProbeVerdict {
  readonly probe: Probe;
  readonly expected: Expectation;
  readonly result?: ProbeResult;
  readonly atListener: boolean;
  readonly onWire: number;
  readonly reached: boolean;
  readonly baselineReached: boolean;
  readonly outcome: Outcome;
  readonly detail: string;
  /** For a violation: the offending packet as seen on the wire (or at the listener). */
  readonly evidence?: string;
}

function reachedIn(run: MatrixRun, probe: Probe): { atListener: boolean; wire: CapturedPacket[]; reached: boolean } {
  const t = probe.target;
  const atListener = t.listener !== undefined && run.tokens.has(run.tokenOf.get(probe.id)!);
  const mine = run.packets.filter((x) => x.probe?.id === probe.id);
  // for the RELATED probe only the kernel's ICMP error counts: the DNS datagram itself is allowed
  const wire = (t.kind === 'udp-closed' ? mine.filter((x) => x.relatedError) : mine.filter((x) => !x.relatedError)).map((x) => x.packet);
  const r = run.results.get(probe.id);
  let reached: boolean;
  if (t.kind === 'udp-closed') reached = wire.length > 0;
  else if (t.kind === 'raw' || t.kind === 'tcp-invalid') reached = wire.length > 0;
  else if (t.kind === 'icmp') reached = (r?.ok ?? false) || wire.length > 0;
  // a completed TCP handshake or a UDP answer is evidence from the prober's side
  else reached = atListener || (r?.ok ?? false) || (t.external && wire.length > 0) || (probe.principal.kind === 'inbound' && wire.length > 0);
  return { atListener, wire, reached };
}

function packetText(p: CapturedPacket): string {
  return `IPv${p.family} proto ${p.proto} ${p.src}${p.sport !== undefined ? `:${p.sport}` : ''} → ${p.dst}${p.dport !== undefined ? `:${p.dport}` : ''}${p.icmpType !== undefined ? ` icmp ${p.icmpType}/${p.icmpCode}` : ''}`;
}

export interface Judgement {
  readonly label: string;
  /** Why the oracle could not tell, per probe: each of these probes is inconclusive, which is a failure. */
  readonly oracleFailures: readonly string[];
  readonly verdicts: readonly ProbeVerdict[];
  readonly invariants: readonly InvariantResult[];
  readonly counts: Readonly<Record<Outcome, number>>;
  readonly wallMs: number;
}

export function judge(policy: Policy, facts: LabFacts, run: MatrixRun, baseline: MatrixRun | undefined): Judgement {
  // A destination the policy lets someone reach, that nobody reached in this
  // run, is broken in this run: denials towards it prove nothing.
  const allowedReached = new Map<string, boolean>();
  const key = (p: Probe) => `${p.target.kind}|${p.target.dst}|${p.target.port ?? ''}|${p.principal.ns}`;
  const observed = new Map(run.probes.map((p) => [p.id, reachedIn(run, p)]));
  const unknowable = oracleFailures(run);
  const expectations = new Map(run.probes.map((p) => [p.id, expectation(policy, facts, p.principal, p.target)]));
  for (const p of run.probes) {
    if (!expectations.get(p.id)!.allow) continue;
    allowedReached.set(key(p), (allowedReached.get(key(p)) ?? false) || observed.get(p.id)!.reached);
  }
  const verdicts = run.probes.map((probe): ProbeVerdict => {
    const expected = expectations.get(probe.id)!;
    const o = observed.get(probe.id)!;
    const result = run.results.get(probe.id);
    const baselineReached = baseline ? reachedIn(baseline, probe).reached : o.reached;
    const healthy = baselineReached && allowedReached.get(key(probe)) !== false;
    let outcome: Outcome;
    let detail: string;
    let evidence: string | undefined;
    if (unknowable.has(probe.id)) [outcome, detail] = ['inconclusive', unknowable.get(probe.id)!];
    else if (expected.allow) {
      if (o.reached) [outcome, detail] = ['pass', 'reached, as the policy allows'];
      else if (baselineReached) [outcome, detail] = ['violation', `blocked (${result?.error ?? 'no arrival'}) though the policy allows it`];
      else [outcome, detail] = ['inconclusive', 'not reached, and the control run did not reach it either: path broken'];
    } else if (o.reached) {
      outcome = 'violation';
      detail = `LEAK: ${o.wire.length ? `${o.wire.length} packet(s) left the sut` : 'arrived at the listener'}`;
      evidence = o.wire.length ? packetText(o.wire[0]!) : `listener ${probe.target.listener} logged the probe's token`;
    } else if (healthy) [outcome, detail] = ['pass', `refused (${result?.error ?? 'sent, nothing arrived'})`];
    else
      [outcome, detail] = [
        'inconclusive',
        baselineReached ? 'the allowed probes to this destination failed in this run' : 'the control run could not reach it: path broken',
      ];
    return {
      probe,
      expected,
      ...(result ? { result } : {}),
      atListener: o.atListener,
      onWire: o.wire.length,
      reached: o.reached,
      baselineReached,
      outcome,
      detail,
      ...(evidence ? { evidence } : {}),
    };
  });
  const maker = (probe: Probe | undefined, relatedError?: boolean): Maker | undefined => {
    if (!probe) return undefined;
    const p = probe.principal;
    const role: Maker['role'] =
      p.kind === 'uid'
        ? p.role === 'tor-daemon'
          ? 'tor-daemon'
          : p.role === 'clearnet'
            ? 'clearnet'
            : 'other'
        : p.kind === 'netns'
          ? p.netns.kind === 'clearnet'
            ? 'clearnet-netns'
            : 'tor-only-netns'
          : 'other';
    return { principal: p.id, role, ...(relatedError ? { kernelError: true } : {}) };
  };
  const invariants = checkInvariants(
    { lanRanges: policy.lanRanges, internalRange: policy.internalRange },
    // inbound probes' answers are the sut replying, judged by their probe cell, not as egress
    run.packets
      .filter((x) => x.probe?.principal.kind !== 'inbound')
      .map((x) => {
        const m = maker(x.probe, x.relatedError);
        return m ? { packet: x.packet, maker: m } : { packet: x.packet };
      }),
  );
  const counts = { pass: 0, violation: 0, inconclusive: 0 };
  for (const v of verdicts) counts[v.outcome]++;
  return {
    label: run.label,
    oracleFailures: [...unknowable].map(([id, why]) => `${id}: ${why}`),
    verdicts,
    invariants,
    counts,
    wallMs: run.wallMs,
  };
}

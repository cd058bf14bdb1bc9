// The firewall, proven with real packets: the emitted ruleset loaded into
// lk-sut-XXXX the way the image's unit loads it, the probe matrix from the
// policy, the oracle, the uplink capture, the safety
// invariants, and the planted leaks the lab must catch.

import { emit, lockdownRuleset, RULESET_PATH, ruleset, UNIT_PATH, unnamedUid } from '@leakless/firewall';
import { renderNft, renderTable, ruleCount } from '@leakless/nft';
import { buildTree, memoryTree, type Policy, readPolicyFile } from '@leakless/policy';
import { evaluateRuntime, normalizeNftListing } from '@leakless/selftest';
import { skipUnless } from '@leakless/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AntiTestOutcome,
  antiTests,
  buildMatrix,
  controlRuleset,
  expectation,
  inNs,
  type Judgement,
  judge,
  type LabFacts,
  labNeeds,
  loadNft,
  type MatrixRun,
  namespaceExists,
  type Probe,
  type RunningLab,
  runMatrix,
  runProbes,
  specOf,
  startLab,
  startUnitInNs,
  unitFailure,
  writeReport,
} from './lab/index.js';

const skip = skipUnless('the firewall lab (e2e/src/firewall-lab.test.ts)', ...labNeeds('nft', 'tcpdump'));
const POLICY_FILE = new URL('../../image-config/default.yaml', import.meta.url).pathname;

describe.skipIf(skip)('firewall lab: the policy ruleset against real packets', () => {
  const t0 = Date.now();
  let policy: Policy;
  let running: RunningLab | undefined;
  let matrix: Probe[] = [];
  let facts: LabFacts;
  let control: MatrixRun;
  let policyRun: Judgement | undefined;
  const anti: AntiTestOutcome[] = [];
  const extra: Record<string, unknown> = {};
  let created: readonly string[] = [];

  const judgeRun = (run: MatrixRun) => judge(policy, facts, run, control);
  const runWith = async (label: string, text: string) => {
    const r = await loadNft(running!.lab.sut, text);
    if (r.exitCode !== 0) throw new Error(`${label}: nft -f failed: ${r.stderr}`);
    return runMatrix(running!.lab, running!.listeners, matrix, label);
  };

  beforeAll(async () => {
    const loaded = await readPolicyFile(POLICY_FILE);
    if (!loaded.ok) throw new Error(`default policy invalid: ${JSON.stringify(loaded.issues)}`);
    policy = loaded.policy;
    running = await startLab(policy);
    created = running.lab.created;
    const lab = running.lab;
    facts = { sutAddresses: [lab.addresses.sutLan, ...policy.namespaces.map((n) => n.hostAddress)] };
    matrix = buildMatrix(policy, lab, unnamedUid(policy));
    // Control: no filtering, the same translations. Proves each path works,
    // so a refused probe later means the firewall refused it.
    control = await runWith('control (no filtering)', renderNft(controlRuleset(ruleset(policy))));
  }, 120_000);

  afterAll(async () => {
    await running?.teardown();
    const leftOver = (await Promise.all(created.map(namespaceExists))).filter(Boolean).length;
    extra.teardown = { namespaces: created, leftOver };
    if (policyRun && control) {
      const paths = writeReport({
        policy: policy.name,
        generatedAt: new Date().toISOString(),
        ruleCount: ruleCount(ruleset(policy)),
        probes: matrix.length,
        principals: [...new Set(matrix.map((p) => p.principal.id))],
        matrixWallMs: policyRun.wallMs,
        totalWallMs: Date.now() - t0,
        control: { reached: judge(policy, facts, control, undefined).verdicts.filter((v) => v.reached).length, probes: control.probes.length },
        policyRun,
        antiTests: anti,
        extra,
      });
      console.log(`lab report: ${paths.markdown}`);
    }
    expect(leftOver, `namespaces left after teardown: ${created.join(', ')}`).toBe(0);
  });

  it('the control run reaches every destination (the paths work)', () => {
    const j = judge(policy, facts, control, undefined);
    const unreached = j.verdicts.filter((v) => !v.reached).map((v) => `${v.probe.id}: ${v.result?.error ?? '?'}`);
    expect(unreached).toEqual([]);
  });

  it('loads through the unit (lockdown, then the ruleset) and the kernel holds exactly the emitted table', async () => {
    const e = emit(policy);
    const tree = memoryTree(buildTree([e]));
    const steps = await startUnitInNs(running!.lab.sut, tree.read(UNIT_PATH)!, (p) => tree.read(p));
    // the module preload (its failure ignored: a host without /lib/modules still loads the rulesets), lockdown, ruleset
    expect(steps.map((s) => [s.directive, s.command.split(' ')[0], s.failureIgnored])).toEqual([
      ['ExecStartPre', '-/usr/sbin/modprobe', true],
      ['ExecStartPre', '/usr/sbin/nft', false],
      ['ExecStart', '/usr/sbin/nft', false],
    ]);
    expect(unitFailure(steps)).toBeUndefined();
    expect(steps.slice(1).map((s) => s.exitCode)).toEqual([0, 0]);
    const runtime = await evaluateRuntime(
      e.runtimeAssertions.filter((a) => a.scope === 'netns'),
      (cmd, args) => inNs(running!.lab.sut, cmd, args),
    );
    expect(runtime.length).toBeGreaterThan(0);
    expect(runtime.filter((r) => !r.ok)).toEqual([]);
    extra.unit = { steps, runtime };
  });

  it('policy ruleset: every probe matches the policy, every invariant holds', async () => {
    const tree = memoryTree(buildTree([emit(policy)]));
    const run = await runWith('policy', tree.read(RULESET_PATH)!);
    policyRun = judgeRun(run);
    const problems = policyRun.verdicts
      .filter((v) => v.outcome !== 'pass')
      .map((v) => `${v.outcome}: ${v.probe.id}: ${v.detail}${v.evidence ? ` [${v.evidence}]` : ''}`);
    expect(problems).toEqual([]);
    expect(policyRun.invariants.filter((i) => !i.ok)).toEqual([]);
    expect(policyRun.verdicts.length).toBeGreaterThan(200);
  });

  it('every refused local TCP connection fails fast (log + reject, not a silent drop)', async () => {
    // One principal at a time: the matrix fires ~150 refusals at once, more
    // than the kernel's ICMP burst (icmp_msgs_burst 50) lets through, and a
    // suppressed port-unreachable would look like a drop.
    const denied = matrix.filter(
      (p) => p.principal.kind === 'uid' && p.target.kind === 'tcp' && p.target.family === 4 && !expectation(policy, facts, p.principal, p.target).allow,
    );
    const slow: string[] = [];
    for (const uid of new Set(denied.map((p) => p.principal.uid))) {
      const mine = denied.filter((p) => p.principal.uid === uid);
      const p0 = mine[0]!.principal;
      const results = await runProbes(
        running!.lab,
        { ns: p0.ns, uid: p0.uid, gid: p0.gid },
        mine.map((p, i) => specOf(p, `fastfail-${uid}-${i}`, 2)),
      );
      for (const r of results) if (r.error !== 'ECONNREFUSED' || r.ms > 1500) slow.push(`${r.id}: ${r.error ?? 'connected'} after ${r.ms} ms`);
      await new Promise((r) => setTimeout(r, 60));
    }
    expect(denied.length).toBeGreaterThan(50);
    expect(slow).toEqual([]);
    extra.fastFail = { probes: denied.length };
  });

  it('anti-tests: every planted leak is reported as a violation in its cell', async () => {
    const missed: string[] = [];
    for (const a of antiTests) {
      const planted = a.plant(ruleset(policy), policy);
      const j = judgeRun(await runWith(`anti-test ${a.id}`, renderNft(planted)));
      const inCell = j.verdicts.filter(
        (v) =>
          v.outcome === 'violation' &&
          !v.expected.allow &&
          a.cell.principal(v.probe.principal, policy) &&
          v.probe.target.class === a.cell.class &&
          (!a.cell.label || a.cell.label.test(v.probe.target.label)),
      );
      const outcome: AntiTestOutcome = {
        id: a.id,
        leak: a.leak,
        caught: inCell.length > 0,
        violations: j.counts.violation,
        invariantsBroken: j.invariants.filter((i) => !i.ok).map((i) => i.id),
        cellEvidence: inCell.slice(0, 3).map((v) => `${v.probe.id}: ${v.evidence ?? v.detail}`),
      };
      anti.push(outcome);
      if (!outcome.caught) missed.push(`${a.id} (${a.leak}): ${j.counts.violation} violations elsewhere, none in its cell`);
    }
    expect(antiTests.length).toBeGreaterThanOrEqual(8);
    expect(missed).toEqual([]);
  });

  it('lockdown: nothing leaves the sut, and a ruleset that fails to load leaves the lockdown in force', async () => {
    const sut = running!.lab.sut;
    const lock = await runWith('lockdown', renderNft(lockdownRuleset()));
    const left = lock.packets.filter((p) => p.packet.family !== 0 && p.probe?.principal.kind !== 'inbound');
    expect(left.map((p) => `${p.packet.src} → ${p.packet.dst} proto ${p.packet.proto}`)).toEqual([]);
    const lj = judgeRun(lock);
    // not even the tor daemon gets out; nothing arrives from the namespaces
    const torOut = lj.verdicts.filter(
      (v) => v.probe.principal.kind === 'uid' && v.probe.principal.role === 'tor-daemon' && v.probe.target.class === 'internet-v4' && v.reached,
    );
    expect(torOut).toEqual([]);
    expect(lj.verdicts.filter((v) => v.probe.principal.kind === 'netns' && v.reached).map((v) => v.probe.id)).toEqual([]);
    // a policy ruleset that nft rejects: the load fails and the lockdown table stays, unchanged
    const broken = renderNft(ruleset(policy)).replace(/meta skuid (\d+)/, 'meta skuid no-such-user-$1');
    expect((await loadNft(sut, broken)).exitCode).not.toBe(0);
    const listed = await inNs(sut, 'nft', ['list', 'table', 'inet', 'leakless']);
    expect(normalizeNftListing(listed.stdout)).toBe(normalizeNftListing(renderTable(lockdownRuleset(), { listing: true })));
    extra.lockdown = { packetsLeft: left.length, wallMs: lock.wallMs };
  });
});

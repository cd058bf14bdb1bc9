// The oracle under load: the honest matrix with two busy loops on the
// machine's two cores, where kernel-chosen source ports once made one probe's
// packets look like another's (attribution.test.ts has the case). Every probe
// must get its own source port, no packet may be claimed twice, and the
// policy run must still pass cell for cell.
import { rulesetFile, ruleset, unnamedUid } from '@leakless/firewall';
import { renderNft } from '@leakless/nft';
import { type Policy, readPolicyFile } from '@leakless/policy';
import { skipUnless } from '@leakless/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlRuleset } from './anti.js';
import { startServer } from './exec.js';
import { type RunningLab, startLab } from './index.js';
import { buildMatrix, type Probe } from './matrix.js';
import type { LabFacts } from './oracle.js';
import { labNeeds } from './prereq.js';
import type { Proc } from './process.js';
import { judge, type MatrixRun, runMatrix } from './run.js';
import { PYTHON } from './stage.js';
import { loadNft } from './sut.js';

const skip = skipUnless('the oracle under load (e2e/src/lab/oracle-load.test.ts)', ...labNeeds('nft', 'tcpdump'));
const POLICY_FILE = new URL('../../../image-config/default.yaml', import.meta.url).pathname;
/** Seconds a busy loop may live, whatever happens to the test. */
const BUSY_LIMIT = 180;

describe.skipIf(skip)('the oracle under load', () => {
  let policy: Policy;
  let running: RunningLab | undefined;
  let matrix: Probe[] = [];
  let facts: LabFacts;
  let control: MatrixRun;

  beforeAll(async () => {
    const loaded = await readPolicyFile(POLICY_FILE);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
    policy = loaded.policy;
    running = await startLab(policy);
    facts = { sutAddresses: [running.lab.addresses.sutLan, ...policy.namespaces.map((n) => n.hostAddress)] };
    matrix = buildMatrix(policy, running.lab, unnamedUid(policy));
    const r = await loadNft(running.lab.sut, renderNft(controlRuleset(ruleset(policy))));
    if (r.exitCode !== 0) throw new Error(`control ruleset: ${r.stderr}`);
    control = await runMatrix(running.lab, running.listeners, matrix, 'control (no filtering)');
  }, 120_000);

  afterAll(async () => {
    await running?.teardown();
  });

  it('two busy loops on two cores: every probe has its own port, nothing is claimed twice, every cell passes', async () => {
    const lab = running!.lab;
    const loaded = await loadNft(lab.sut, rulesetFile(policy));
    expect(loaded.exitCode, loaded.stderr).toBe(0);
    const busy: Proc[] = [];
    const problems: string[] = [];
    let runs = 0;
    try {
      for (let i = 0; i < 2; i++)
        // one process, no children (a signal reaches the loop itself), ending on its own after BUSY_LIMIT
        busy.push(
          await startServer(lab, 'sut', [PYTHON, '-c', `import time\nend = time.monotonic() + ${BUSY_LIMIT}\nwhile time.monotonic() < end: pass`], {
            label: `busy loop ${i}`,
          }),
        );
      for (; runs < 3; runs++) {
        const run = await runMatrix(lab, running!.listeners, matrix, `policy under load #${runs}`);
        const j = judge(policy, facts, run, control);
        const ports = [...run.results.values()].filter((r) => r.assigned !== null).map((r) => r.sport);
        if (new Set(ports).size !== ports.length) problems.push(`run ${runs}: two probes used one source port`);
        problems.push(...j.oracleFailures.map((f) => `run ${runs}: ${f}`));
        problems.push(...j.verdicts.filter((v) => v.outcome !== 'pass').map((v) => `run ${runs}: ${v.outcome}: ${v.probe.id}: ${v.detail}`));
        problems.push(...j.invariants.filter((x) => !x.ok).map((x) => `run ${runs}: invariant ${x.id}: ${x.offenders.slice(0, 3).join('; ')}`));
      }
    } finally {
      for (const b of busy) await b.stop();
    }
    expect(problems).toEqual([]);
    expect(runs * matrix.length).toBeGreaterThan(600);
  }, 240_000);
});

// The adversary suite: every attack registered in e2e/src/adversary/attacks/,
// as each of its attacker principals, against the emitted tree and against
// its planted weakness, each run in a fresh lab. A row passes only when the
// attack is refused by the artifacts and gets through the weakness; the
// report (dist/lab/adversary.{md,json}) lists attack × principal × outcome.
import { allModules } from '@leakless/crosscheck';
import { assemble, memoryTree, type Policy, readPolicyFile, type TreeReader } from '@leakless/policy';
import { skipUnless } from '@leakless/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labNeeds } from '../lab/index.js';
import { playRow, principalsOf, type Row } from './framework.js';
import { loadAttacks } from './registry.js';
import { writeAdversaryReport } from './report.js';

const POLICY_FILE = new URL('../../../image-config/default.yaml', import.meta.url).pathname;
const registered = await loadAttacks();
const tools = [...new Set(['nft', 'tcpdump', ...registered.flatMap((r) => r.attack.tools ?? [])])];
const skip = skipUnless('the adversary suite (e2e/src/adversary)', ...labNeeds(...tools));

describe.skipIf(skip)('adversary suite: hostile local programs against the emitted artifacts', () => {
  const t0 = Date.now();
  let policy: Policy;
  let tree: TreeReader;
  const rows: (Row & { file: string })[] = [];

  beforeAll(async () => {
    const loaded = await readPolicyFile(POLICY_FILE);
    if (!loaded.ok) throw new Error(`default policy invalid: ${JSON.stringify(loaded.issues)}`);
    policy = loaded.policy;
    tree = memoryTree(assemble(policy, allModules).tree);
  });

  afterAll(() => {
    if (rows.length === 0) return;
    const paths = writeAdversaryReport({ policy: policy.name, generatedAt: new Date().toISOString(), suiteMs: Date.now() - t0, rows });
    console.log(`adversary report: ${paths.markdown}`);
  });

  it('has attacks from the attack files, each with both principals unless it says otherwise', () => {
    expect(registered.length).toBeGreaterThanOrEqual(10);
  });

  for (const { attack, file } of registered) {
    for (const kind of principalsOf(attack)) {
      it(
        `${attack.id} as the ${kind} attacker (${file})`,
        async () => {
          const row = await playRow(attack, policy, tree, kind);
          rows.push({ ...row, file });
          expect(row.why).toBe('');
          expect(row.verdict).toBe('pass');
        },
        2 * (attack.timeoutMs ?? 60_000) + 30_000,
      );
    }
  }
});

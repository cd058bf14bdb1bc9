// The framework without a lab (no root): registration from several files,
// the verdict (inconclusive and an anti-test that does not get through both
// fail), weaknesses planted in the tree, and the report over attacks from
// several files.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { RULESET_PATH, rulesetFile } from '@leakless/firewall';
import { memoryTree, readPolicyFile } from '@leakless/policy';
import { describe, expect, it } from 'vitest';
import { type Attack, type AttackResult, overlayTree, type Row, type RunRecord, verdictOf } from './framework.js';
import { declarationProblems, loadAttacks, register } from './registry.js';
import { figures, renderAdversaryMarkdown } from './report.js';
import { tailsRuleOrder } from './weaknesses.js';

const loaded = await readPolicyFile(new URL('../../../image-config/default.yaml', import.meta.url).pathname);
if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
const policy = loaded.policy;

const refused: AttackResult = { outcome: 'refused', evidence: 'nothing left' };
const succeeded: AttackResult = { outcome: 'succeeded', evidence: '1 packet left' };
const inconclusive: AttackResult = { outcome: 'inconclusive', evidence: 'the victim got no answer' };

const attack = (id: string): Attack => ({
  id,
  title: 't',
  refusal: 'r',
  weakness: { id: 'w', what: 'weaker' },
  run: async () => refused,
});

describe('verdict', () => {
  it('passes only when the artifacts refuse and the planted weakness lets the attack through', () => {
    expect(verdictOf(refused, succeeded)).toEqual({ verdict: 'pass', why: '' });
    expect(verdictOf(succeeded, succeeded).why).toMatch(/gets through the emitted artifacts/);
    expect(verdictOf(refused, refused).why).toMatch(/cannot fail/);
    expect(verdictOf(inconclusive, succeeded).verdict).toBe('fail');
    expect(verdictOf(refused, inconclusive).verdict).toBe('fail');
  });
});

describe('registration', () => {
  it('takes attacks from several files, and refuses a file without attacks, a duplicate id or a missing anti-test', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lk-attacks-'));
    try {
      const file = (name: string, ids: string[]) =>
        writeFileSync(
          join(dir, name),
          `export const attacks = ${JSON.stringify(ids)}.map((id) => ({ id, title: 't', refusal: 'r', weakness: { id: 'w', what: 'weaker' }, run: async () => ({ outcome: 'refused', evidence: '' }) }));\n`,
        );
      file('b.ts', ['b-one']);
      file('a.ts', ['a-one', 'a-two']);
      writeFileSync(join(dir, 'a.test.ts'), 'export const attacks = 1;\n');
      const url = pathToFileURL(`${dir}/`);
      expect((await loadAttacks(url)).map((r) => `${r.file}:${r.attack.id}`)).toEqual(['a.ts:a-one', 'a.ts:a-two', 'b.ts:b-one']);
      file('c.ts', ['a-one']);
      await expect(loadAttacks(url)).rejects.toThrow(/a-one is also declared in a\.ts/);
      rmSync(join(dir, 'c.ts'));
      writeFileSync(join(dir, 'e.ts'), 'export const nothing = 1;\n');
      await expect(loadAttacks(url)).rejects.toThrow(/e\.ts exports no `attacks`/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(declarationProblems({ ...attack('x'), weakness: undefined as never })).toContain('weakness (id, what) is missing: every attack needs its anti-test');
    expect(() => register([{ attack: attack('Not_Kebab'), file: 'x.ts' }])).toThrow(/kebab-case/);
  });
});

describe('planted weaknesses', () => {
  it('replace the ruleset the unit loads with the edited AST, and leave every other file alone', () => {
    const tree = memoryTree({ files: [{ path: RULESET_PATH, content: rulesetFile(policy), mode: 0o644, clause: 'c', module: 'firewall' }], directories: [] });
    const planted = tailsRuleOrder.plant!(tree, policy);
    expect(tree.read(RULESET_PATH)).toContain('#flow-ownership');
    expect(planted.read(RULESET_PATH)).not.toContain('#flow-ownership');
    expect(planted.read(RULESET_PATH)).toContain('ct state established counter accept');
    const o = overlayTree(tree, { '/x': 'y' });
    expect([o.read('/x'), o.mode('/x'), o.paths()]).toEqual(['y', 0o644, [RULESET_PATH, '/x']]);
  });
});

describe('report', () => {
  it('lists attack × principal × outcome from several files, with the figures', () => {
    const run = (r: AttackResult, variant: RunRecord['variant']): RunRecord => ({ ...r, variant, ms: 10 });
    const row = (id: string, file: string, principal: Row['principal'], planted: AttackResult): Row & { file: string } => ({
      attack: id,
      title: 'tries',
      refusal: 'stops',
      weakness: { id: 'w', what: 'weaker' },
      principal,
      attacker: principal,
      artifacts: run(refused, 'artifacts'),
      planted: run(planted, 'weakness'),
      ...verdictOf(refused, planted),
      file,
    });
    const report = {
      policy: 'default',
      generatedAt: 'now',
      suiteMs: 1234,
      rows: [row('one', 'a.ts', 'desktop', succeeded), row('one', 'a.ts', 'unnamed', succeeded), row('two', 'b.ts', 'desktop', refused)],
    };
    expect(figures(report)).toMatchObject({ attacks: 2, files: 2, principals: 2, rows: 3, runs: 6, passed: 2, failed: 1, antiTestsCaught: 2 });
    const md = renderAdversaryMarkdown(report);
    expect(md).toContain('| two | desktop | ✔ refused | ✔ refused | **FAIL** |');
    expect(md).toContain('from: `e2e/src/adversary/attacks/b.ts`');
  });
});

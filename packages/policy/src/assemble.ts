// policy → every module's emission → one tree. The caller picks the modules
// (the CLI takes all of them; a downstream distro may take one).
import type { CheckResult, Emission, LeaklessModule, StaticAssertion, TreeReader, ToolRunner } from './contract.js';
import type { Policy } from './policy.js';
import { buildTree, type Tree } from './tree.js';

export interface Assembly {
  readonly policy: Policy;
  readonly emissions: readonly Emission[];
  readonly tree: Tree;
}

export function assemble(policy: Policy, modules: readonly LeaklessModule[]): Assembly {
  const emissions = modules.map((m) => m.emit(policy));
  return { policy, emissions, tree: buildTree(emissions) };
}

export interface StaticResult {
  readonly module: string;
  readonly id: string;
  readonly statement: string;
  readonly ok: boolean;
  readonly detail: string;
}

export async function checkStatic(
  assembly: Assembly,
  tree: TreeReader,
  run: ToolRunner,
  extra: readonly { module: string; assertion: StaticAssertion }[] = [],
): Promise<StaticResult[]> {
  const all = [...assembly.emissions.flatMap((e) => e.staticAssertions.map((assertion) => ({ module: e.module, assertion }))), ...extra];
  const results: StaticResult[] = [];
  for (const { module, assertion } of all) {
    let r: CheckResult;
    try {
      r = await assertion.check({ tree, policy: assembly.policy, run });
    } catch (e) {
      r = { ok: false, detail: `could not tell: ${(e as Error).message.split('\n')[0]}` };
    }
    results.push({ module, id: assertion.id, statement: assertion.statement, ...r });
  }
  return results;
}

// The adversary suite's framework: an attack is data plus one function that
// plays it in a fresh lab against an emitted tree, as one attacker principal.
// Each attack runs twice per principal: against the emitted artifacts, where
// the expected refusal must hold, and against a planted weakness (the
// anti-test), where the same attack must get through, so the suite can fail.
// A run the lab cannot judge is inconclusive, and inconclusive is a failure
// (docs/threat-model.md#hostile-local-programs-tests).
import { ruleset, RULESET_PATH, UNIT_NAME, unnamedUid } from '@leakless/firewall';
import { renderNft, type Table } from '@leakless/nft';
import type { Policy, TreeReader } from '@leakless/policy';
import { buildLab, type Lab, type LabOptions, startUnitInNs, teardownLab, unitFailure } from '../lab/index.js';

/** Who attacks: the desktop user (an exploited browser, a malicious download) or a uid the policy does not name (a compromised daemon account). */
export type AttackerKind = 'desktop' | 'unnamed';
export const ATTACKER_KINDS: readonly AttackerKind[] = ['desktop', 'unnamed'];

export interface Attacker {
  readonly kind: AttackerKind;
  /** For reports: `amnesia (desktop)`, `uid 59999 (unnamed)`. */
  readonly label: string;
  readonly uid: number;
  readonly gid: number;
}

export function attackerOf(policy: Policy, kind: AttackerKind): Attacker {
  if (kind === 'desktop') {
    const u = policy.desktopUser;
    return { kind, label: `${u.name} (desktop user, uid ${u.uid})`, uid: u.uid, gid: u.gid };
  }
  const uid = unnamedUid(policy);
  return { kind, label: `uid ${uid} (not in the policy)`, uid, gid: uid };
}

/** The artifacts a run is played against: what the image carries, or the same with one weakness planted. */
export type Variant = 'artifacts' | 'weakness';

/**
 * What the anti-test plants: an edit of the emitted tree (a weaker ruleset, an
 * older launcher …). A weakness that is not in the tree (the attacker holding
 * a capability it should not have) has no `plant`: the attack applies it
 * itself when `env.variant` is 'weakness'.
 */
export interface Weakness {
  readonly id: string;
  /** One line: what is weaker than the emitted artifacts. */
  readonly what: string;
  plant?(tree: TreeReader, policy: Policy): TreeReader;
}

/** A tree with some files replaced (or added): the one way weaknesses are planted. */
export function overlayTree(tree: TreeReader, files: Readonly<Record<string, string>>): TreeReader {
  const extra = Object.keys(files).filter((p) => tree.read(p) === undefined);
  return {
    read: (p) => (p in files ? files[p] : tree.read(p)),
    mode: (p) => tree.mode(p) ?? (p in files ? 0o644 : undefined),
    paths: () => [...tree.paths(), ...extra],
  };
}

/** A weakness in the firewall: the policy's ruleset with one AST edit (Tails' rule order, a wider LAN …), written where the unit loads it. */
export function rulesetWeakness(id: string, what: string, edit: (t: Table, policy: Policy) => Table): Weakness {
  return { id, what, plant: (tree, policy) => overlayTree(tree, { [RULESET_PATH]: renderNft(edit(ruleset(policy), policy)) }) };
}

export interface AttackEnv {
  readonly lab: Lab;
  readonly policy: Policy;
  /** The tree this run plays against (with the weakness planted in the anti-test). */
  readonly tree: TreeReader;
  readonly attacker: Attacker;
  readonly variant: Variant;
  /** Unique to this run: put it in every payload the attacker sends, so its packets are found on the wire and at listeners. */
  readonly token: string;
  /** Load the tree's firewall the way the image does (its unit: lockdown, then the ruleset); throws if a step fails. */
  loadFirewall(): Promise<void>;
  /** One progress line (long runs show what they are doing). */
  progress(line: string): void;
}

/**
 * What a run saw. `refused`: the attack did not get through, and the run
 * proved it could have seen it (its positive control held); `succeeded`: it
 * got through; `inconclusive`: the run cannot tell (a control failed).
 */
export interface AttackResult {
  readonly outcome: 'refused' | 'succeeded' | 'inconclusive';
  /** One line: the evidence (what left, what arrived, which errno, which control failed). */
  readonly evidence: string;
  /** Figures worth reporting (ports swept, ms, clients exposed …). */
  readonly facts?: Readonly<Record<string, unknown>>;
}

export interface Attack {
  /** kebab-case, unique across every attack file. */
  readonly id: string;
  /** One line: what the attacker tries. */
  readonly title: string;
  /** One line: the expected refusal and what makes it (a rule, a design decision, with its docs/ anchor). */
  readonly refusal: string;
  readonly weakness: Weakness;
  /** Default: both attacker kinds. */
  readonly principals?: readonly AttackerKind[];
  /** Host tools beyond the lab's own (root, ip, nft, tcpdump, python …). */
  readonly tools?: readonly string[];
  /** Who makes the policy namespaces in this attack's labs (default: the lab). */
  readonly namespaces?: LabOptions['namespaces'];
  /** Bound on one run (default 60 s); a run that takes longer is inconclusive. */
  readonly timeoutMs?: number;
  run(env: AttackEnv): Promise<AttackResult>;
}

export interface RunRecord extends AttackResult {
  readonly variant: Variant;
  readonly ms: number;
}

export interface Row {
  readonly attack: string;
  readonly title: string;
  readonly refusal: string;
  readonly weakness: { readonly id: string; readonly what: string };
  readonly principal: AttackerKind;
  readonly attacker: string;
  readonly artifacts: RunRecord;
  readonly planted: RunRecord;
  readonly verdict: 'pass' | 'fail';
  /** Why it failed (empty when it passed). */
  readonly why: string;
}

/** A row passes only if the attack is refused by the artifacts and gets through the planted weakness: anything else, inconclusive included, fails. */
export function verdictOf(artifacts: AttackResult, planted: AttackResult): { verdict: 'pass' | 'fail'; why: string } {
  const why: string[] = [];
  if (artifacts.outcome === 'succeeded') why.push(`the attack gets through the emitted artifacts: ${artifacts.evidence}`);
  if (artifacts.outcome === 'inconclusive') why.push(`inconclusive against the emitted artifacts: ${artifacts.evidence}`);
  if (planted.outcome === 'refused') why.push(`the anti-test did not get through the planted weakness, so this attack cannot fail here: ${planted.evidence}`);
  if (planted.outcome === 'inconclusive') why.push(`inconclusive against the planted weakness: ${planted.evidence}`);
  return why.length ? { verdict: 'fail', why: why.join('; ') } : { verdict: 'pass', why: '' };
}

let runCounter = 0;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** One run: a fresh lab, the attack, teardown (also on failure). Never throws: whatever goes wrong is an inconclusive result. */
export async function runOnce(attack: Attack, policy: Policy, tree: TreeReader, kind: AttackerKind, variant: Variant): Promise<RunRecord> {
  const t0 = Date.now();
  const attacker = attackerOf(policy, kind);
  const label = `${attack.id} as ${kind} against the ${variant === 'artifacts' ? 'emitted artifacts' : `planted weakness ${attack.weakness.id}`}`;
  let lab: Lab | undefined;
  let result: AttackResult;
  try {
    const played = variant === 'weakness' && attack.weakness.plant ? attack.weakness.plant(tree, policy) : tree;
    lab = await buildLab(policy, { namespaces: attack.namespaces ?? 'lab' });
    const l = lab;
    const env: AttackEnv = {
      lab: l,
      policy,
      tree: played,
      attacker,
      variant,
      token: `lkadv${(runCounter++).toString(36)}${l.suffix}`,
      loadFirewall: async () => {
        // found by name: where units live is the layout's business
        const unitPath = played.paths().find((p) => p.endsWith(`/systemd/system/${UNIT_NAME}`));
        const unit = unitPath === undefined ? undefined : played.read(unitPath);
        if (unit === undefined) throw new Error(`${UNIT_NAME} is not in the tree`);
        const steps = await startUnitInNs(l.sut, unit, (p) => played.read(p));
        const bad = unitFailure(steps);
        if (bad || steps.length === 0) throw new Error(`the firewall unit did not load: ${bad ? `${bad.directive}: ${bad.stderr}` : 'no steps'}`);
      },
      progress: (line) => console.log(`adversary: ${label}: ${line}`),
    };
    result = await withTimeout(attack.run(env), attack.timeoutMs ?? 60_000, label);
  } catch (e) {
    result = { outcome: 'inconclusive', evidence: `could not tell: ${(e as Error).message.split('\n')[0]}` };
  } finally {
    if (lab) await teardownLab(lab);
  }
  const rec: RunRecord = { ...result, variant, ms: Date.now() - t0 };
  console.log(`adversary: ${label}: ${rec.outcome} (${rec.ms} ms): ${rec.evidence}`);
  return rec;
}

/** The principals an attack runs as. */
export function principalsOf(a: Attack): readonly AttackerKind[] {
  return a.principals ?? ATTACKER_KINDS;
}

/** Both runs of one attack as one principal, judged. */
export async function playRow(attack: Attack, policy: Policy, tree: TreeReader, kind: AttackerKind): Promise<Row> {
  const artifacts = await runOnce(attack, policy, tree, kind, 'artifacts');
  const planted = await runOnce(attack, policy, tree, kind, 'weakness');
  return {
    attack: attack.id,
    title: attack.title,
    refusal: attack.refusal,
    weakness: { id: attack.weakness.id, what: attack.weakness.what },
    principal: kind,
    attacker: attackerOf(policy, kind).label,
    artifacts,
    planted,
    ...verdictOf(artifacts, planted),
  };
}

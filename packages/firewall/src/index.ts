// @leakless/firewall: the nftables ruleset compiled from the policy (one inet
// table, loaded atomically), the lockdown ruleset that stays if it cannot load,
// the systemd unit that loads both before network-pre.target, and the static
// checks (nft -c, and the Tails test suite's structural checks on the AST).
// The table is a @leakless/nft model, rendered by its one writer.
import {
  UNITS,
  emission,
  parseUnit,
  sha256,
  unitValues,
  unitWords,
  type CheckResult,
  type Emission,
  type GeneratedFile,
  type Policy,
  type RuntimeAssertion,
  type StaticAssertion,
  type StaticContext,
} from '@leakless/policy';
import { MODPROBE, NFT, kernelModules, renderNft, renderTable, ruleCount, type Table } from '@leakless/nft';
import { normalizeNftListing } from '@leakless/selftest';
import { attackAssertions } from './attacks.js';
import { lockdownCheck, structuralChecks } from './checks.js';
import { lockdownRuleset, ruleset } from './ruleset.js';
import {
  LOCKDOWN_PATH,
  MASKED_UNITS,
  NETWORK_SERVICES,
  RULESET_PATH,
  UNIT_CLAUSE,
  UNIT_NAME,
  UNIT_PATH,
  dropInPath,
  renderRequires,
  renderUnit,
} from './unit.js';

export { ruleset, lockdownRuleset, flowOwners, torEgress, TABLE_NAME, LOOPBACK_ADDRESS } from './ruleset.js';
export type { FlowOwners } from './ruleset.js';
export { listenerGrants, loopbackGrants, unnamedUid } from './grants.js';
export type { ListenerGrant, LoopbackGrant } from './grants.js';
export { structuralChecks, checkRuleset, lockdownCheck } from './checks.js';
export { attackAssertions, inventoryOf, PROBE_DESTINATIONS } from './attacks.js';
export type { AstCheck } from './checks.js';
export { UNIT_NAME, UNIT_PATH, RULESET_PATH, LOCKDOWN_PATH, NETWORK_SERVICES, MASKED_UNITS, dropInPath } from './unit.js';

export const name = 'firewall';

const RULESET_CLAUSE = 'docs/threat-model.md#default-deny: one inet table compiled from the policy';
const LOCKDOWN_CLAUSE = 'docs/threat-model.md#lockdown: lockdown ruleset if the policy ruleset fails to load';

function header(policy: Policy, what: string, t: Table): string[] {
  return [
    `leakless ${what} for policy "${policy.name}" (${ruleCount(t)} rules); generated, do not edit: change the policy.`,
    'Loading this file replaces table inet leakless in one transaction; other tables are untouched.',
    'Every rule has a counter and a comment naming the policy clause it implements.',
  ];
}

export function rulesetFile(policy: Policy): string {
  const t = ruleset(policy);
  return renderNft(t, header(policy, 'firewall', t));
}

export function lockdownFile(policy: Policy): string {
  const t = lockdownRuleset();
  return renderNft(t, header(policy, 'lockdown firewall (loopback only)', t));
}

/** sha256 of the table as `nft list table` prints it, without counters (the evaluator's normalizeNftListing). */
export function listingSha256(t: Table): string {
  return sha256(normalizeNftListing(renderTable(t, { listing: true })));
}

function treeFile(path: string, ctx: StaticContext): string {
  const text = ctx.tree.read(path);
  if (text === undefined) throw new Error(`${path} missing from the tree`);
  return text;
}

function staticAssertions(): StaticAssertion[] {
  const onAst = structuralChecks.map(
    (c): StaticAssertion => ({
      id: c.id,
      statement: c.statement,
      // The tree's file is checked to be the rendering of this AST (firewall.file-is-ast),
      // so what holds for the AST holds for the file.
      check: ({ policy }) => c.check(ruleset(policy), policy),
    }),
  );
  return [
    {
      id: 'firewall.file-is-ast',
      statement: 'the ruleset and lockdown files in the tree are exactly the rendering of the checked ASTs',
      check: (ctx) => {
        const problems: string[] = [];
        if (treeFile(RULESET_PATH, ctx) !== rulesetFile(ctx.policy)) problems.push(`${RULESET_PATH} differs from renderNft(ruleset(policy))`);
        if (treeFile(LOCKDOWN_PATH, ctx) !== lockdownFile(ctx.policy)) problems.push(`${LOCKDOWN_PATH} differs from renderNft(lockdownRuleset())`);
        return { ok: problems.length === 0, detail: problems[0] ?? `${ruleCount(ruleset(ctx.policy))} rules, rendered from the AST` };
      },
    },
    {
      id: 'firewall.nft-check',
      statement: 'nft -c accepts both rulesets (in a throwaway user+network namespace: unshare -rn)',
      tools: ['unshare', 'nft'],
      check: async (ctx): Promise<CheckResult> => {
        for (const path of [LOCKDOWN_PATH, RULESET_PATH]) {
          const r = await ctx.run('unshare', ['-rn', NFT, '-c', '-f', '/dev/stdin'], { input: treeFile(path, ctx) });
          if (r.exitCode !== 0) return { ok: false, detail: `${path}: nft -c failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().split('\n')[0]}` };
        }
        return { ok: true, detail: `nft -c ok for ${LOCKDOWN_PATH} and ${RULESET_PATH}` };
      },
    },
    ...onAst,
    { id: lockdownCheck.id, statement: lockdownCheck.statement, check: () => lockdownCheck.check(lockdownRuleset()) },
    {
      id: 'firewall.unit-fail-closed',
      statement: 'the unit loads lockdown then the ruleset before network-pre.target, never flushes, and network services Require it',
      check: (ctx) => checkUnits(ctx),
    },
  ];
}

function checkUnits(ctx: StaticContext): CheckResult {
  const problems: string[] = [];
  const u = parseUnit(treeFile(UNIT_PATH, ctx));
  const has = (sec: string, key: string, v: string) => unitWords(u, sec, key).includes(v);
  if (!has('Unit', 'DefaultDependencies', 'no')) problems.push('DefaultDependencies is not no');
  if (!has('Unit', 'Before', UNITS.networkPre)) problems.push(`not Before=${UNITS.networkPre}`);
  if (!has('Unit', 'Wants', UNITS.networkPre)) problems.push(`not Wants=${UNITS.networkPre}`);
  if (unitValues(u, 'Unit', 'Conflicts').length) problems.push('has Conflicts= (would stop it at shutdown)');
  if (unitValues(u, 'Service', 'ExecStop').length || unitValues(u, 'Service', 'ExecStopPost').length) problems.push('has a stop command');
  const pre = unitValues(u, 'Service', 'ExecStartPre');
  const start = unitValues(u, 'Service', 'ExecStart');
  // Before the lockdown only the module preload may run, and its failure must not stop the unit ("-").
  if (pre.at(-1) !== `${NFT} -f ${LOCKDOWN_PATH}`) problems.push(`the last ExecStartPre is not the lockdown load (${pre.join('; ')})`);
  const other = pre.slice(0, -1).find((c) => !c.startsWith(`-${MODPROBE} -a `));
  if (other !== undefined) problems.push(`an ExecStartPre before the lockdown load is not an ignored-failure module preload (${other})`);
  if (start.join() !== `${NFT} -f ${RULESET_PATH}`) problems.push(`ExecStart is not the ruleset load (${start.join('; ')})`);
  if (!has('Service', 'Type', 'oneshot') || !has('Service', 'RemainAfterExit', 'yes')) problems.push('not a oneshot that remains active');
  for (const s of NETWORK_SERVICES) {
    const d = parseUnit(treeFile(dropInPath(s), ctx));
    if (!unitWords(d, 'Unit', 'Requires').includes(UNIT_NAME) || !unitWords(d, 'Unit', 'After').includes(UNIT_NAME))
      problems.push(`${s} does not Require+After ${UNIT_NAME}`);
  }
  return { ok: problems.length === 0, detail: problems[0] ?? `${UNIT_NAME} fail-closed; ${NETWORK_SERVICES.join(', ')} require it` };
}

function runtimeAssertions(policy: Policy): RuntimeAssertion[] {
  const t = ruleset(policy);
  return [
    {
      id: 'firewall.table-loaded',
      statement: 'table inet leakless in the kernel is exactly the emitted ruleset',
      check: { kind: 'nft-table', family: t.family, table: t.name, sha256OfRules: listingSha256(t) },
      scope: 'netns',
    },
    {
      id: 'firewall.unit-active',
      statement: `${UNIT_NAME} is active (the ruleset loaded at boot)`,
      check: { kind: 'unit-active', unit: UNIT_NAME },
      scope: 'system',
    },
    ...attackAssertions(policy, t),
  ];
}

export function emit(policy: Policy): Emission {
  const files: GeneratedFile[] = [
    { path: RULESET_PATH, content: rulesetFile(policy), mode: 0o644, clause: RULESET_CLAUSE },
    { path: LOCKDOWN_PATH, content: lockdownFile(policy), mode: 0o644, clause: LOCKDOWN_CLAUSE },
    {
      path: UNIT_PATH,
      content: renderUnit({
        clause: UNIT_CLAUSE,
        nft: NFT,
        modprobe: MODPROBE,
        modules: kernelModules([lockdownRuleset(), ruleset(policy)]).join(' '),
        rulesetPath: RULESET_PATH,
        lockdownPath: LOCKDOWN_PATH,
        target: UNITS.networkPre,
      }),
      mode: 0o644,
      clause: UNIT_CLAUSE,
    },
    ...NETWORK_SERVICES.map((s) => ({
      path: dropInPath(s),
      content: renderRequires({ clause: UNIT_CLAUSE, service: s, unit: UNIT_NAME }),
      mode: 0o644,
      clause: UNIT_CLAUSE,
    })),
  ];
  return emission(name, {
    files,
    packages: ['nftables'],
    units: [UNIT_NAME],
    maskedUnits: [...MASKED_UNITS],
    staticAssertions: staticAssertions(),
    runtimeAssertions: runtimeAssertions(policy),
  });
}

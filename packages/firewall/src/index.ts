// @leakless/firewall: the nftables ruleset compiled from the policy (one inet
// table, loaded atomically), the lockdown ruleset that stays if it cannot load,
// the systemd unit that loads both before network-pre.target, and the static
// checks (nft -c, and the Tails test suite's structural checks on the AST).
import {
  emission,
  sha256,
  type CheckResult,
  type Emission,
  type GeneratedFile,
  type Policy,
  type RuntimeAssertion,
  type StaticAssertion,
  type StaticContext,
} from '@leakless/policy';
import { normalizeNftListing } from '@leakless/selftest';
import { ruleCount, type Table } from './ast.js';
import { lockdownCheck, structuralChecks } from './checks.js';
import { renderNft, renderTable } from './render.js';
import { lockdownRuleset, ruleset } from './ruleset.js';
import {
  LOCKDOWN_PATH,
  MASKED_UNITS,
  NETWORK_SERVICES,
  NFT,
  RULESET_PATH,
  UNIT_CLAUSE,
  UNIT_NAME,
  dropInPath,
  parseUnit,
  renderRequires,
  renderUnit,
  unitValues,
} from './unit.js';

export {
  chainOf,
  withChain,
  withChainPolicy,
  mapRules,
  insertBefore,
  ruleCount,
  LOG_PREFIX,
  type Table,
  type Chain,
  type Rule,
  type Match,
  type Verdict,
  type AddrMatch,
  type PortMatch,
  type IfMatch,
  type CtState,
  type Family,
  type L4Protocol,
  type HookName,
  type BaseChainSpec,
} from './ast.js';
export { renderNft, renderRule, renderTable, type RenderOptions } from './render.js';
export { ruleset, lockdownRuleset, TABLE_NAME, LOOPBACK_ADDRESS } from './ruleset.js';
export {
  evaluateChain,
  evaluateHook,
  evaluateOutput,
  accepted,
  matches,
  listenerGrants,
  loopbackGrants,
  unnamedUid,
  type Packet,
  type Decision,
  type ListenerGrant,
  type LoopbackGrant,
} from './evaluate.js';
export { structuralChecks, checkRuleset, lockdownCheck, type AstCheck } from './checks.js';
export { UNIT_NAME, RULESET_PATH, LOCKDOWN_PATH, NETWORK_SERVICES, MASKED_UNITS, parseUnit, unitValues, dropInPath } from './unit.js';

export const name = 'firewall';

const RULESET_CLAUSE = 'SPEC 2.1: one inet table compiled from the policy';
const LOCKDOWN_CLAUSE = 'SPEC 2.2: lockdown ruleset if the policy ruleset fails to load';

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
  const u = parseUnit(treeFile(`/etc/systemd/system/${UNIT_NAME}`, ctx));
  const has = (sec: string, key: string, v: string) => unitValues(u, sec, key).includes(v);
  if (!has('Unit', 'DefaultDependencies', 'no')) problems.push('DefaultDependencies is not no');
  if (!has('Unit', 'Before', 'network-pre.target')) problems.push('not Before=network-pre.target');
  if (!has('Unit', 'Wants', 'network-pre.target')) problems.push('not Wants=network-pre.target');
  if (unitValues(u, 'Unit', 'Conflicts').length) problems.push('has Conflicts= (would stop it at shutdown)');
  if (unitValues(u, 'Service', 'ExecStop').length || unitValues(u, 'Service', 'ExecStopPost').length) problems.push('has a stop command');
  const pre = unitValues(u, 'Service', 'ExecStartPre');
  const start = unitValues(u, 'Service', 'ExecStart');
  if (pre.join() !== `${NFT} -f ${LOCKDOWN_PATH}`) problems.push(`ExecStartPre is not the lockdown load (${pre.join('; ')})`);
  if (start.join() !== `${NFT} -f ${RULESET_PATH}`) problems.push(`ExecStart is not the ruleset load (${start.join('; ')})`);
  if (!has('Service', 'Type', 'oneshot') || !has('Service', 'RemainAfterExit', 'yes')) problems.push('not a oneshot that remains active');
  for (const s of NETWORK_SERVICES) {
    const d = parseUnit(treeFile(dropInPath(s), ctx));
    if (!unitValues(d, 'Unit', 'Requires').includes(UNIT_NAME) || !unitValues(d, 'Unit', 'After').includes(UNIT_NAME)) problems.push(`${s} does not Require+After ${UNIT_NAME}`);
  }
  for (const m of MASKED_UNITS) if (treeFile(`/etc/systemd/system/${m}`, ctx) !== '') problems.push(`${m} is not masked (empty unit file)`);
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
  ];
}

export function emit(policy: Policy): Emission {
  const files: GeneratedFile[] = [
    { path: RULESET_PATH, content: rulesetFile(policy), mode: 0o644, clause: RULESET_CLAUSE },
    { path: LOCKDOWN_PATH, content: lockdownFile(policy), mode: 0o644, clause: LOCKDOWN_CLAUSE },
    {
      path: `/etc/systemd/system/${UNIT_NAME}`,
      content: renderUnit({ clause: UNIT_CLAUSE, nft: NFT, rulesetPath: RULESET_PATH, lockdownPath: LOCKDOWN_PATH }),
      mode: 0o644,
      clause: UNIT_CLAUSE,
    },
    ...NETWORK_SERVICES.map((s) => ({ path: dropInPath(s), content: renderRequires({ clause: UNIT_CLAUSE, service: s, unit: UNIT_NAME }), mode: 0o644, clause: UNIT_CLAUSE })),
    ...MASKED_UNITS.map((m) => ({ path: `/etc/systemd/system/${m}`, content: '', mode: 0o644, clause: `${UNIT_CLAUSE} (${m} would flush the ruleset)` })),
  ];
  return emission(name, {
    files,
    packages: ['nftables'],
    units: [UNIT_NAME],
    staticAssertions: staticAssertions(),
    runtimeAssertions: runtimeAssertions(policy),
  });
}


// The lab report: the matrix as a principal × destination table (expected vs
// observed), the invariants, the anti-tests, and the figures, as Markdown for
// people and JSON for tools, under dist/lab/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEST_CLASSES, type DestClass } from './matrix.js';
import type { Judgement, ProbeVerdict } from './run.js';

export interface AntiTestOutcome {
  readonly id: string;
  readonly leak: string;
  /** The planted leak was reported as a violation in its cell. */
  readonly caught: boolean;
  readonly violations: number;
  readonly invariantsBroken: readonly string[];
  readonly cellEvidence: readonly string[];
}

export interface LabReport {
  readonly policy: string;
  readonly generatedAt: string;
  readonly ruleCount: number;
  readonly probes: number;
  readonly principals: readonly string[];
  readonly matrixWallMs: number;
  readonly totalWallMs: number;
  readonly control: { readonly reached: number; readonly probes: number };
  readonly policyRun: Judgement;
  readonly antiTests: readonly AntiTestOutcome[];
  readonly extra: Readonly<Record<string, unknown>>;
}

function cell(vs: readonly ProbeVerdict[]): string {
  if (vs.length === 0) return '';
  const a = vs.filter((v) => v.expected.allow).length;
  const d = vs.length - a;
  const exp = a && d ? `${a}A/${d}R` : a ? 'A' : 'R';
  const bad = vs.filter((v) => v.outcome === 'violation').length;
  const inc = vs.filter((v) => v.outcome === 'inconclusive').length;
  const obs = bad ? `✘ ${bad} violation${bad > 1 ? 's' : ''}` : inc ? `? ${inc} inconclusive` : '✔';
  return `${exp} ${obs}`;
}

export function matrixTable(j: Judgement): string {
  const principals = [...new Set(j.verdicts.map((v) => v.probe.principal.id))];
  const classes = DEST_CLASSES.filter((c) => j.verdicts.some((v) => v.probe.target.class === c));
  const rows = principals.map((p) => [p, ...classes.map((c) => cell(j.verdicts.filter((v) => v.probe.principal.id === p && v.probe.target.class === c)))]);
  const head = ['principal \\ destination', ...classes];
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function verdictJson(v: ProbeVerdict) {
  return {
    principal: v.probe.principal.id,
    class: v.probe.target.class as DestClass,
    target: `${v.probe.target.kind} ${v.probe.target.dst}${v.probe.target.port !== undefined ? `:${v.probe.target.port}` : ''}`,
    label: v.probe.target.label,
    expected: v.expected.allow ? 'allow' : 'deny',
    why: v.expected.why,
    observed: v.reached ? 'reached' : 'blocked',
    atListener: v.atListener,
    packetsOnWire: v.onWire,
    probe: v.result ? { ok: v.result.ok, error: v.result.error, ms: v.result.ms } : null,
    controlReached: v.baselineReached,
    outcome: v.outcome,
    detail: v.detail,
    ...(v.evidence ? { evidence: v.evidence } : {}),
  };
}

export function renderMarkdown(r: LabReport): string {
  const j = r.policyRun;
  const bad = j.verdicts.filter((v) => v.outcome !== 'pass');
  return [
    `# leakless firewall lab: policy "${r.policy}"`,
    '',
    `${r.probes} probes from ${r.principals.length} principals against a ${r.ruleCount}-rule ruleset; matrix wall time ${(r.matrixWallMs / 1000).toFixed(2)} s (whole lab ${(r.totalWallMs / 1000).toFixed(1)} s).`,
    `Control run (no filtering, same translations): ${r.control.reached}/${r.control.probes} probes reached their destination.`,
    `Policy run: ${j.counts.pass} pass, ${j.counts.violation} violation, ${j.counts.inconclusive} inconclusive; ${j.oracleFailures.length} attribution failures (every probe has its own source port and token).`,
    `Anti-tests: ${r.antiTests.filter((a) => a.caught).length}/${r.antiTests.length} planted leaks caught.`,
    '',
    'Cells: A = the policy allows, R = it refuses (log + reject, or drop); ✔ = observed at the listener and on the uplink capture as expected.',
    '',
    '## Matrix (policy ruleset)',
    '',
    matrixTable(j),
    '',
    '## Safety invariants',
    '',
    ...j.invariants.map((i) => `- ${i.ok ? '✔' : '✘'} **${i.id}**: ${i.statement}${i.ok ? '' : ` — ${i.offenders.slice(0, 5).join('; ')}`}`),
    '',
    '## Anti-tests (one planted leak each)',
    '',
    '| anti-test | planted leak | caught | violations | invariants broken |',
    '|---|---|---|---|---|',
    ...r.antiTests.map((a) => `| ${a.id} | ${a.leak} | ${a.caught ? '✔' : '✘ MISSED'} | ${a.violations} | ${a.invariantsBroken.join(', ') || '—'} |`),
    '',
    ...(bad.length
      ? ['## Problems in the policy run', '', ...bad.map((v) => `- ${v.outcome}: ${v.probe.id}: ${v.detail}${v.evidence ? ` (${v.evidence})` : ''}`), '']
      : []),
    '## Every probe',
    '',
    '| principal | class | target | expected | observed | outcome | detail |',
    '|---|---|---|---|---|---|---|',
    ...j.verdicts.map((v) => {
      const x = verdictJson(v);
      return `| ${x.principal} | ${x.class} | ${x.label} (${x.target}) | ${x.expected} | ${x.observed} | ${x.outcome} | ${x.detail} |`;
    }),
    '',
  ].join('\n');
}

export function reportJson(r: LabReport) {
  return {
    policy: r.policy,
    generatedAt: r.generatedAt,
    figures: {
      ruleCount: r.ruleCount,
      probes: r.probes,
      principals: r.principals.length,
      matrixWallMs: r.matrixWallMs,
      totalWallMs: r.totalWallMs,
      antiTests: r.antiTests.length,
      antiTestsCaught: r.antiTests.filter((a) => a.caught).length,
    },
    control: r.control,
    policyRun: {
      counts: r.policyRun.counts,
      oracleFailures: r.policyRun.oracleFailures,
      invariants: r.policyRun.invariants,
      probes: r.policyRun.verdicts.map(verdictJson),
    },
    antiTests: r.antiTests,
    ...r.extra,
  };
}

export const REPORT_DIR = new URL('../../../dist/lab/', import.meta.url);

export function writeReport(r: LabReport, dir: string = REPORT_DIR.pathname): { markdown: string; json: string } {
  mkdirSync(dir, { recursive: true });
  const markdown = join(dir, 'firewall-matrix.md');
  const json = join(dir, 'firewall-matrix.json');
  writeFileSync(markdown, renderMarkdown(r));
  writeFileSync(json, JSON.stringify(reportJson(r), null, 2) + '\n');
  return { markdown, json };
}

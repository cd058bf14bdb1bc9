// The adversary report, dist/lab/adversary.{md,json}: attack × principal ×
// outcome (against the emitted artifacts and against the planted weakness),
// whatever file each attack came from, with the figures the closing notes
// quote: attacks and principals run, suite time, anti-tests caught.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Row, RunRecord } from './framework.js';

export interface AdversaryReport {
  readonly policy: string;
  readonly generatedAt: string;
  readonly suiteMs: number;
  /** Each row with the attack file it came from. */
  readonly rows: readonly (Row & { readonly file: string })[];
}

export function figures(r: AdversaryReport) {
  return {
    attacks: new Set(r.rows.map((x) => x.attack)).size,
    files: new Set(r.rows.map((x) => x.file)).size,
    principals: new Set(r.rows.map((x) => x.principal)).size,
    /** attack × principal pairs, each run twice (artifacts, weakness) */
    rows: r.rows.length,
    runs: r.rows.length * 2,
    passed: r.rows.filter((x) => x.verdict === 'pass').length,
    failed: r.rows.filter((x) => x.verdict === 'fail').length,
    /** anti-tests whose planted weakness the attack got through (the suite saw it) */
    antiTestsCaught: r.rows.filter((x) => x.planted.outcome === 'succeeded').length,
    inconclusive: r.rows.filter((x) => x.artifacts.outcome === 'inconclusive' || x.planted.outcome === 'inconclusive').length,
    suiteMs: r.suiteMs,
  };
}

const mark = (o: RunRecord['outcome']) => (o === 'refused' ? '✔ refused' : o === 'succeeded' ? '✘ got through' : '? inconclusive');
const cellText = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderAdversaryMarkdown(r: AdversaryReport): string {
  const f = figures(r);
  const attacks = [...new Map(r.rows.map((x) => [x.attack, x])).values()];
  return [
    `# leakless adversary suite: policy "${r.policy}"`,
    '',
    `${f.attacks} attacks from ${f.files} files × ${f.principals} attacker principals = ${f.rows} rows, ${f.runs} lab runs in ${(f.suiteMs / 1000).toFixed(1)} s.`,
    `${f.passed} passed, ${f.failed} failed; ${f.antiTestsCaught}/${f.rows} anti-tests caught (the attack got through its planted weakness); ${f.inconclusive} inconclusive.`,
    '',
    'A row passes when the attack is refused by the emitted artifacts **and** gets through the planted weakness; an inconclusive run fails it.',
    '',
    '| attack | attacker | emitted artifacts | planted weakness (anti-test) | verdict |',
    '|---|---|---|---|---|',
    ...r.rows.map(
      (x) =>
        `| ${x.attack} | ${cellText(x.attacker)} | ${mark(x.artifacts.outcome)} | ${mark(x.planted.outcome)} | ${x.verdict === 'pass' ? 'pass' : '**FAIL**'} |`,
    ),
    '',
    '## Attacks',
    '',
    ...attacks.flatMap((a) => [
      `### ${a.attack}`,
      '',
      `- tries: ${a.title}`,
      `- expected refusal: ${a.refusal}`,
      `- planted weakness: \`${a.weakness.id}\`, ${a.weakness.what}`,
      `- from: \`e2e/src/adversary/attacks/${a.file}\``,
      '',
      ...r.rows
        .filter((x) => x.attack === a.attack)
        .flatMap((x) => [
          `  - as ${x.attacker}: **${x.verdict}**${x.why ? ` (${x.why})` : ''}`,
          `    - artifacts: ${x.artifacts.outcome} in ${x.artifacts.ms} ms: ${x.artifacts.evidence}`,
          `    - weakness: ${x.planted.outcome} in ${x.planted.ms} ms: ${x.planted.evidence}`,
        ]),
      '',
    ]),
  ].join('\n');
}

export function adversaryJson(r: AdversaryReport) {
  return { policy: r.policy, generatedAt: r.generatedAt, figures: figures(r), rows: r.rows };
}

export const ADVERSARY_REPORT_DIR = fileURLToPath(new URL('../../../dist/lab/', import.meta.url));

export function writeAdversaryReport(r: AdversaryReport, dir: string = ADVERSARY_REPORT_DIR): { markdown: string; json: string } {
  mkdirSync(dir, { recursive: true });
  const markdown = join(dir, 'adversary.md');
  const json = join(dir, 'adversary.json');
  writeFileSync(markdown, `${renderAdversaryMarkdown(r)}\n`);
  writeFileSync(json, `${JSON.stringify(adversaryJson(r), null, 2)}\n`);
  return { markdown, json };
}

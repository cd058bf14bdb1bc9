// The networked boot's report: dist/lab/boot-capture.md (for people: the
// timings, every flow with its class, every leak and unparsable packet with
// the second it was sent, the findings, the scenarios) and
// dist/lab/boot-capture.json (everything, including every classified packet).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALLOWED_CLASSES, type Classification, describePacket, type Finding } from './classify.js';

export const BOOT_REPORT_DIR = new URL('../../../dist/lab/', import.meta.url).pathname;

export interface ScenarioReport {
  readonly name: string;
  /** What must hold, in one line. */
  readonly claim: string;
  readonly ok: boolean;
  /** Why not, or the evidence that it holds. */
  readonly detail: readonly string[];
  readonly seconds: number;
  readonly packets: number;
  readonly flows: number;
  readonly classification?: Classification;
}

export interface BootReport {
  readonly generatedAt: string;
  readonly iso: string;
  readonly accel: string;
  /** One per boot: its name, firmware, timings and whole-run classification. */
  readonly boots: readonly {
    readonly name: string;
    readonly firmware: string;
    readonly settings: string;
    readonly seconds: number;
    readonly timings: Readonly<Record<string, number | undefined>>;
    readonly classification: Classification;
    readonly notes: readonly string[];
  }[];
  readonly scenarios: readonly ScenarioReport[];
  readonly figures: Readonly<Record<string, string>>;
}

const secs = (ms: number | undefined) => (ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`);

function findingLines(fs: readonly Finding[]): string[] {
  return fs.map((f) => `- **${f.kind}** at ${f.t.toFixed(3)} s (${f.count}×): ${f.detail}`);
}

export function renderBootMarkdown(r: BootReport): string {
  const out: string[] = [
    '# The booted image on the lab network',
    '',
    `Generated ${r.generatedAt} from \`${r.iso}\` under ${r.accel.toUpperCase()}. Every frame on the guest's tap is classified against the`,
    `allow-list (${ALLOWED_CLASSES.join(', ')}); anything else the guest sends is a leak, and a frame that cannot be decoded is a failure.`,
    '',
    '## Figures',
    '',
    ...Object.entries(r.figures).map(([k, v]) => `- ${k}: ${v}`),
    '',
    '## Scenarios',
    '',
    '| scenario | result | packets | flows | time | claim |',
    '|---|---|---|---|---|---|',
    ...r.scenarios.map((s) => `| ${s.name} | ${s.ok ? 'passed' : '**FAILED**'} | ${s.packets} | ${s.flows} | ${s.seconds.toFixed(0)} s | ${s.claim} |`),
    '',
  ];
  for (const s of r.scenarios) {
    out.push(`### ${s.name}`, '', `${s.claim}: ${s.ok ? 'passed' : '**FAILED**'}`, '', ...s.detail.map((d) => `- ${d}`), '');
  }
  for (const b of r.boots) {
    const c = b.classification;
    out.push(
      `## Boot: ${b.name} (${b.firmware}, test settings: ${b.settings})`,
      '',
      `${b.seconds.toFixed(0)} s. ${Object.entries(b.timings)
        .map(([k, v]) => `${k}: ${secs(v)}`)
        .join('; ')}.`,
      '',
      ...b.notes.map((n) => `- ${n}`),
      '',
      `Packets: ${Object.entries(c.counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}.`,
      '',
    );
    if (c.leaks.length) out.push('Leaks (second sent, packet):', '', '```', ...c.leaks.slice(0, 200).map(describePacket), '```', '');
    if (c.unparsable.length) out.push('Unparsable:', '', '```', ...c.unparsable.slice(0, 50).map(describePacket), '```', '');
    if (c.findings.length) out.push('Findings (what the LAN learns):', '', ...findingLines(c.findings), '');
    out.push(
      '| flow | class | sent | replies | first | last |',
      '|---|---|---|---|---|---|',
      ...c.flows.slice(0, 300).map((f) => `| \`${f.key}\` | ${f.cls} | ${f.sent} | ${f.replies} | ${f.first.toFixed(1)} s | ${f.last.toFixed(1)} s |`),
      '',
    );
  }
  return `${out.join('\n')}\n`;
}

/** Write dist/lab/boot-capture.{md,json}. */
export function writeBootReport(r: BootReport, dir = BOOT_REPORT_DIR): { markdown: string; json: string } {
  mkdirSync(dir, { recursive: true });
  const markdown = join(dir, 'boot-capture.md');
  const json = join(dir, 'boot-capture.json');
  writeFileSync(markdown, renderBootMarkdown(r));
  writeFileSync(json, `${JSON.stringify(r, null, 2)}\n`);
  return { markdown, json };
}

// The namespace attacks as records: attack × principal × outcome, each run
// against the emitted artifacts and once against the planted weakness (the
// anti-test). Kept as plain data so the adversary report can take them as
// they are; until it does, each suite writes its part under dist/lab/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type Outcome = 'refused' | 'succeeded' | 'inconclusive';

export interface AttackRecord {
  /** Short name of the attack, stable across runs. */
  readonly attack: string;
  /** Who plays it: the application in a namespace (tbb, clearnet), the desktop user, an unnamed uid. */
  readonly principal: string;
  /** 'emitted': against what the policy emits; 'planted': against the weakness an anti-test plants. */
  readonly against: 'emitted' | 'planted';
  readonly outcome: Outcome;
  /** What was seen (one line). */
  readonly detail: string;
  /** The docs/ anchor of the attack. */
  readonly doc: string;
}

/** A run's records, written as dist/lab/adversary-<suite>.{json,md}. */
export class AttackLog {
  readonly records: AttackRecord[] = [];
  constructor(readonly suite: string) {}

  add(r: AttackRecord): AttackRecord {
    this.records.push(r);
    return r;
  }

  /** The emitted artifacts refuse every attack, and every planted weakness lets its attack through. */
  problems(): string[] {
    return this.records
      .filter((r) => r.outcome !== (r.against === 'emitted' ? 'refused' : 'succeeded'))
      .map((r) => `${r.attack} as ${r.principal} against the ${r.against} artifacts: ${r.outcome} (${r.detail})`);
  }

  write(dir = new URL('../../../dist/lab/', import.meta.url).pathname): void {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `adversary-${this.suite}.json`), `${JSON.stringify(this.records, null, 2)}\n`);
    const rows = this.records.map((r) => `| ${r.attack} | ${r.principal} | ${r.against} | ${r.outcome} | ${r.detail.replace(/\|/g, '\\|')} | ${r.doc} |`);
    writeFileSync(
      join(dir, `adversary-${this.suite}.md`),
      [
        `# Adversary: ${this.suite}`,
        '',
        '| attack | principal | against | outcome | seen | doc |',
        '|---|---|---|---|---|---|',
        ...rows,
        '',
        `${this.records.filter((r) => r.against === 'emitted').length} attack runs, ${this.records.filter((r) => r.against === 'planted' && r.outcome === 'succeeded').length}/${this.records.filter((r) => r.against === 'planted').length} anti-tests caught`,
        '',
      ].join('\n'),
    );
  }
}

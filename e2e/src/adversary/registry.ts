// Attacks come from every file in e2e/src/adversary/attacks/ that exports
// `attacks`: a developer adds a file there and the suite and its report pick
// it up; no list to edit (CONTRIBUTING.md, "Adding an attack"). A file that
// exports nothing usable, or an id used twice, stops the suite: an attack that
// silently did not run is worse than none.
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Attack } from './framework.js';

export const ATTACKS_DIR = new URL('./attacks/', import.meta.url);

export interface Registered {
  readonly attack: Attack;
  /** The file it came from, relative to the attacks directory. */
  readonly file: string;
}

const ID = /^[a-z0-9]+(-[a-z0-9]+)*$/;

/** What is wrong with one attack's declaration (empty when nothing). */
export function declarationProblems(a: Partial<Attack>): string[] {
  const p: string[] = [];
  if (typeof a.id !== 'string' || !ID.test(a.id)) p.push(`id ${JSON.stringify(a.id)} is not kebab-case`);
  for (const k of ['title', 'refusal'] as const) if (typeof a[k] !== 'string' || a[k].trim() === '') p.push(`${k} is missing`);
  const w = a.weakness;
  if (!w?.what || !w.id || (w.plant !== undefined && typeof w.plant !== 'function')) p.push('weakness (id, what) is missing: every attack needs its anti-test');
  if (typeof a.run !== 'function') p.push('run is missing');
  if (a.principals !== undefined && a.principals.length === 0) p.push('principals is empty');
  return p;
}

/** Check a set of attacks from several files; throws one error listing every problem. */
export function register(found: readonly Registered[]): Registered[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const { attack, file } of found) {
    for (const p of declarationProblems(attack)) problems.push(`${file}: ${attack.id ?? '?'}: ${p}`);
    const prev = seen.get(attack.id);
    if (prev !== undefined) problems.push(`${file}: attack id ${attack.id} is also declared in ${prev}`);
    seen.set(attack.id, file);
  }
  if (problems.length) throw new Error(`adversary: bad attack declarations:\n  ${problems.join('\n  ')}`);
  return [...found].sort((a, b) => a.file.localeCompare(b.file) || a.attack.id.localeCompare(b.attack.id));
}

/** Every attack of every `*.ts` file (not `*.test.ts`) in the directory, in file order. */
export async function loadAttacks(dir: URL = ATTACKS_DIR): Promise<Registered[]> {
  const files = readdirSync(fileURLToPath(dir))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'))
    .sort();
  const found: Registered[] = [];
  for (const file of files) {
    const mod = (await import(pathToFileURL(fileURLToPath(new URL(file, dir))).href)) as { attacks?: unknown };
    if (!Array.isArray(mod.attacks) || mod.attacks.length === 0)
      throw new Error(`adversary: ${file} exports no \`attacks\` array (every file in ${fileURLToPath(dir)} must)`);
    for (const attack of mod.attacks as Attack[]) found.push({ attack, file });
  }
  return register(found);
}

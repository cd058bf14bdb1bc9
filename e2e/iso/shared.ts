// The default ISO, built cold once per run of the ISO project and shared by
// every suite in it (CI allows at most three cold builds per run). The first
// suite that asks builds it with `leakless iso --fresh-base`; the others find
// the marker of this run next to it and reuse it.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IsoBuildResult, Manifest } from '@leakless/image';
import { execa } from 'execa';
import { inject } from 'vitest';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const cli = join(repo, 'tools', 'leakless', 'bin', 'leakless.js');
export const work = join(repo, 'dist', 'e2e-iso');
export const cache = join(work, 'cache');
/** What a suite's skip reason says about a missing Debian tool. */
export const installHint = 'npm run e2e installs it (tools/leakless/install-deps.sh e2e)';

/** A suite's measured figures, printed at its end for the closing note: one "name: value" line each under a title. */
export function printFigures(title: string, figures: Readonly<Record<string, string>>): void {
  console.log(
    `\n${title}:\n${Object.entries(figures)
      .map(([k, v]) => `  ${k}: ${v}`)
      .join('\n')}`,
  );
}

/** Data read back from JSON: the library's shape, nothing readonly. */
type Parsed<T> = { -readonly [K in keyof T]: Parsed<T[K]> };

/** What `leakless iso --json` prints. */
export type IsoReport = Parsed<
  Pick<IsoBuildResult, 'ok' | 'iso' | 'accel' | 'base' | 'image' | 'verify' | 'totalMs'> & {
    readonly manifest: string;
    readonly sha256: string;
    readonly bytes: number;
  }
>;

export interface SharedIso {
  readonly dir: string;
  readonly iso: string;
  readonly manifest: Manifest;
  /** The `leakless iso --json` report of the cold build, and how long it took. */
  readonly report: IsoReport;
  readonly buildMs: number;
}

export async function leakless(args: readonly string[]): Promise<{ exitCode: number | undefined; stdout: string }> {
  const r = await execa('node', [cli, ...args], { cwd: repo, reject: false, stderr: 'inherit' });
  return { exitCode: r.exitCode, stdout: r.stdout };
}

export const manifestOf = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, 'leakless-amd64.manifest.json'), 'utf8'));

/** The cold-built default ISO of this run (built on first use). Throws if the build fails. */
export async function sharedIso(): Promise<SharedIso> {
  const dir = join(work, 'a');
  const marker = join(dir, 'e2e-build.json');
  const runId = inject('isoRunId');
  const iso = join(dir, 'leakless-amd64.iso');
  if (existsSync(marker)) {
    const m = JSON.parse(readFileSync(marker, 'utf8')) as { runId: string; report: IsoReport; buildMs: number };
    if (m.runId === runId) return { dir, iso, manifest: manifestOf(dir), report: m.report, buildMs: m.buildMs };
  }
  const t = Date.now();
  const r = await leakless(['iso', '--out', dir, '--cache', cache, '--fresh-base', '--json']);
  const buildMs = Date.now() - t;
  if (r.exitCode !== 0) throw new Error(`leakless iso failed (exit ${r.exitCode}); see its output above`);
  const report = JSON.parse(r.stdout) as IsoReport;
  writeFileSync(marker, JSON.stringify({ runId, report, buildMs }));
  return { dir, iso, manifest: manifestOf(dir), report, buildMs };
}

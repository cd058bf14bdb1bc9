// Loading rulesets into the system under test, the way the image does it.
import { parseUnit, unitValues } from '@leakless/policy';
import { inNs, type Ran } from './netns.js';

/** nft -f with the file on stdin, inside the namespace. */
export async function loadNft(ns: string, text: string): Promise<Ran> {
  return inNs(ns, 'nft', ['-f', '/dev/stdin'], { input: text });
}

export interface UnitStep {
  readonly directive: 'ExecStartPre' | 'ExecStart';
  readonly command: string;
  readonly exitCode: number;
  readonly stderr: string;
}

/**
 * Run a oneshot unit's ExecStartPre then ExecStart lines as systemd would (stop
 * at the first failure), inside the namespace. Each line must be
 * `<nft> -f <path>`; the path's content comes from the emitted tree.
 */
export async function startUnitInNs(ns: string, unitText: string, files: (path: string) => string | undefined): Promise<UnitStep[]> {
  const unit = parseUnit(unitText);
  const steps: UnitStep[] = [];
  for (const directive of ['ExecStartPre', 'ExecStart'] as const) {
    for (const command of unitValues(unit, 'Service', directive)) {
      const m = /^(\S+\/nft) -f (\S+)$/.exec(command);
      if (!m) throw new Error(`unit ${directive}=${command}: not an "nft -f FILE" line`);
      const text = files(m[2]!);
      if (text === undefined) throw new Error(`unit ${directive}: ${m[2]} is not in the tree`);
      const r = await loadNft(ns, text);
      steps.push({ directive, command, exitCode: r.exitCode, stderr: r.stderr.trim() });
      if (r.exitCode !== 0) return steps;
    }
  }
  return steps;
}

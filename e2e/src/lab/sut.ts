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
  /** The line's "-" prefix: systemd goes on when it fails. */
  readonly failureIgnored: boolean;
}

/**
 * Run a oneshot unit's ExecStartPre then ExecStart lines as systemd would (stop
 * at the first failure, unless the line starts with "-"), inside the
 * namespace. A line is `<nft> -f <path>`, its file from the emitted tree, or
 * `<modprobe> -a MODULE…`: modules are the kernel's, not the namespace's, so
 * this loads them for the whole host, as the image's unit does for its own.
 */
export async function startUnitInNs(ns: string, unitText: string, files: (path: string) => string | undefined): Promise<UnitStep[]> {
  const unit = parseUnit(unitText);
  const steps: UnitStep[] = [];
  for (const directive of ['ExecStartPre', 'ExecStart'] as const) {
    for (const command of unitValues(unit, 'Service', directive)) {
      const failureIgnored = command.startsWith('-');
      const line = failureIgnored ? command.slice(1) : command;
      const nft = /^(\S+\/nft) -f (\S+)$/.exec(line);
      const modprobe = /^\S+\/modprobe -a((?: [a-z0-9_]+)+)$/.exec(line);
      let r: Ran;
      if (nft) {
        const text = files(nft[2]!);
        if (text === undefined) throw new Error(`unit ${directive}: ${nft[2]} is not in the tree`);
        r = await loadNft(ns, text);
      } else if (modprobe) {
        r = await inNs(ns, 'modprobe', ['-a', ...modprobe[1]!.trim().split(' ')]);
      } else throw new Error(`unit ${directive}=${command}: neither "nft -f FILE" nor "modprobe -a MODULE…"`);
      steps.push({ directive, command, exitCode: r.exitCode, stderr: r.stderr.trim(), failureIgnored });
      if (r.exitCode !== 0 && !failureIgnored) return steps;
    }
  }
  return steps;
}

/** The step that stopped the unit (it failed and systemd would not go on), if any. */
export const unitFailure = (steps: readonly UnitStep[]): UnitStep | undefined => steps.find((s) => s.exitCode !== 0 && !s.failureIgnored);

// What the lab needs from the machine. Without it the lab skips LOUDLY on a
// developer machine, and FAILS under CI=true: a leak test that silently did
// not run is worse than no test.
import { accessSync, constants } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { PYTHON } from './listeners.js';

const TOOLS = ['ip', 'nft', 'tcpdump', 'setpriv', 'sysctl'] as const;

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).status === 0;
}

/** Why the lab cannot run here, or undefined if it can. */
export function labUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root (network namespaces, nft and setpriv need root)';
  const missing: string[] = TOOLS.filter((t) => !onPath(t));
  try {
    accessSync(PYTHON, constants.X_OK);
  } catch {
    missing.push(PYTHON);
  }
  if (missing.length) return `missing ${missing.join(', ')} (tools/leakless/install-deps.sh test installs them)`;
  return undefined;
}

/**
 * Returns true when the caller should skip (after printing why); throws under CI.
 * Use at module level: `const skip = skipLab('firewall lab')` then `describe.skipIf(skip)`.
 */
export function skipLab(what: string): boolean {
  const reason = labUnavailable();
  if (!reason) return false;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${what} cannot run: ${reason}`);
  console.warn(`\n*** SKIPPING ${what}: ${reason}. Run as root to prove the firewall with real packets. ***\n`);
  return true;
}

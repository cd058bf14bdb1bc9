// The one prerequisite check every test uses. A test that needs root or a
// host tool skips LOUDLY on a developer machine and FAILS under CI=true: a
// leak test that silently did not run is worse than no test, and "could not
// tell" is never a pass.
//
//   const skip = skipUnless('the firewall lab', needRoot(), needTool('nft', ['--version']));
//   describe.skipIf(skip)('…', () => { … });
import { spawnSync } from 'node:child_process';

/** Why a test cannot run here: undefined when the prerequisite is met. */
export type Missing = string | undefined;

export function needRoot(why = 'network and mount namespaces, nft and setpriv need root'): Missing {
  return process.getuid?.() === 0 ? undefined : `not root (${why})`;
}

/** The tool runs and exits 0 with these arguments (a version or help flag). */
export function needTool(cmd: string, args: readonly string[] = ['--version'], hint = 'tools/leakless/install-deps.sh installs it'): Missing {
  const r = spawnSync(cmd, [...args], { stdio: 'ignore', timeout: 20_000 });
  return r.status === 0 ? undefined : `${cmd} is not usable (${r.error ? (r.error as NodeJS.ErrnoException).code : `exit ${r.status}`}; ${hint})`;
}

/**
 * True when the caller must skip (after printing every reason); throws under
 * CI=true, so a missing prerequisite fails the run instead of passing it.
 */
export function skipUnless(what: string, ...missing: readonly Missing[]): boolean {
  const reasons = missing.filter((m): m is string => m !== undefined);
  if (reasons.length === 0) return false;
  const text = `${what} cannot run: ${reasons.join('; ')}`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${text}`);
  console.warn(`\n*** SKIPPING ${text} ***\n`);
  return true;
}

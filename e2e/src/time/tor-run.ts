// What the time tools need around them in a lab, whatever tree they come
// from (the emitted one, or a planted older one): tor's run directory made
// like Debian's /run/tor, and their time.conf with the lab's paths put in.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { Policy } from '@leakless/policy';

export interface TorRun {
  /** The stand-in for /run/tor: owned by the tor user, 02755, empty (tor is down until a test starts it). */
  readonly dir: string;
  readonly socket: string;
  readonly cookie: string;
  remove(): void;
}

/**
 * Under /run (root's, 0755), never the lab's /tmp directory: the control
 * client refuses a socket below a directory others may write, and /tmp is 1777.
 */
export function makeTorRun(policy: Policy): TorRun {
  const top = mkdtempSync('/run/lk-tor-');
  chmodSync(top, 0o755);
  const dir = `${top}/tor`;
  mkdirSync(dir);
  chownSync(dir, policy.torUser.uid, policy.torUser.gid);
  chmodSync(dir, 0o2755);
  return { dir, socket: `${dir}/control`, cookie: `${dir}/control.authcookie`, remove: () => rmSync(top, { recursive: true, force: true }) };
}

/**
 * A time.conf with the values of the given keys replaced, keys it does not
 * have left out (an older tool's file has other keys): the same edit works on
 * the emitted file and on a planted one.
 */
export function setConfKeys(text: string, values: Readonly<Record<string, string>>): string {
  return text
    .split('\n')
    .map((line) => {
      const eq = line.indexOf('=');
      if (line.startsWith('#') || eq <= 0) return line;
      const key = line.slice(0, eq);
      return key in values ? `${key}=${values[key]}` : line;
    })
    .join('\n');
}

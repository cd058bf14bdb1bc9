// Every wait of the time tools ends (docs/threat-model.md#time-units): a
// server that never completes, a tor that never bootstraps or a clock
// setter that hangs ends in a named failure, never in a unit that stays
// "activating" forever. The units' TimeoutStartSec is computed from the same
// numbers (index.ts), so systemd's limit is always above the tools' own.
import type { HtpConfig, PreTorConfig } from './config.js';

export const LIMITS = {
  /** set-clock: stop tor, set the date, start tor again. */
  setClockSeconds: 120,
  /** A child process beyond its own network timeout: starting node and exiting. */
  childStartSeconds: 5,
  /** htpdate fetch: TLS, SOCKS and the JSON answer beyond the per-host timeouts. */
  fetchSlackSeconds: 30,
  /** The unit's margin above the longest run of its tool. */
  unitSlackSeconds: 30,
} as const;

/** The longest the fetching half may take: every host of the longest pool timing out in turn. */
export function fetchSeconds(h: Pick<HtpConfig, 'pools' | 'timeoutSeconds'>): number {
  return Math.max(...h.pools.map((p) => p.length)) * h.timeoutSeconds + LIMITS.fetchSlackSeconds;
}

/** leakless-htpdate.service: the bootstrap wait, then fetch and set-clock. */
export function htpdateUnitSeconds(h: Pick<HtpConfig, 'pools' | 'timeoutSeconds' | 'bootstrapTimeoutSeconds'>): number {
  return h.bootstrapTimeoutSeconds + fetchSeconds(h) + LIMITS.setClockSeconds + LIMITS.unitSlackSeconds;
}

/** leakless-pretor-time.service: the check as the clearnet user, then set-clock. */
export function pretorUnitSeconds(p: Pick<PreTorConfig, 'timeoutSeconds'>): number {
  return p.timeoutSeconds + LIMITS.childStartSeconds + LIMITS.setClockSeconds + LIMITS.unitSlackSeconds;
}

// Exit codes of the time tools. 2–7 are Tails' codes for the pre-Tor check
// (Tails' tca/timeutils.py, docs/threat-model.md#pretor-time) so a Tails-like
// UI can map them unchanged; Tails has no code for a bad configuration (its
// "invalid-config" raised a KeyError, exit 1), so every outcome here has one.
export const EXIT = {
  ok: 0,
  /** An uncaught error: a bug, never a decision. */
  internal: 1,
  'missing-date': 2,
  'malformed-date': 3,
  'http-failure': 4,
  'captive-portal': 5,
  'date-in-past': 6,
  timeout: 7,
  /** Bad configuration file, bad arguments, or run as the wrong user. */
  'invalid-config': 8,
  /** The clock-setting helper refused or failed: the clock was not changed. */
  'clock-not-set': 9,
  /** htpdate: a pool had more failures than its allowed ratio (no change made). */
  'pool-failed': 10,
  /** htpdate: tor did not report a finished bootstrap in time. */
  'tor-not-bootstrapped': 11,
  /** set-clock: the clock was set but tor could not be started again. */
  'tor-not-restarted': 12,
  /** A time after the release's ceiling (time.maxYearsAfterRelease): tor could never bootstrap with it. */
  'date-in-future': 13,
} as const;

export type Outcome = keyof typeof EXIT;

/** A decided failure: the tool prints `message` and exits with EXIT[outcome]. */
export class ToolFailure extends Error {
  constructor(
    readonly outcome: Exclude<Outcome, 'ok' | 'internal'>,
    message: string,
  ) {
    super(message);
  }
}

// The root clock-setting helper's logic (Tails' tails-set-date, docs/threat-model.md#time-units). Its
// input crosses a privilege boundary: the timestamp comes from a process that
// talked to the network as an unprivileged user. So it takes exactly one
// strictly formatted UTC timestamp, re-checks the release floor itself (a
// clearnet attacker must not move the clock back to replay an old consensus,
// Whonix Time_Attacks) and the ceiling (a clock set to 9999 keeps tor from
// ever bootstrapping; Whonix's timesanitycheck bounds the clock the same way),
// and hands `date` only an integer it computed. Tor is
// stopped around the change and started again, as Tails does, so it never
// runs across a clock jump with state from the old time.
import { EXIT, type Outcome } from './exit-codes.js';
import { formatUtcTimestamp, parseUtcTimestamp } from './timefmt.js';

export const SYSTEMCTL = '/usr/bin/systemctl';
export const DATE = '/usr/bin/date';

export interface ClockHost {
  readonly uid: number;
  /** Run a program (absolute path), resolve with its exit code. */
  run(cmd: string, args: readonly string[]): Promise<number>;
  log(line: string): void;
}

export interface SetClockRequest {
  readonly epoch: number;
  /** htpdate's small corrections after bootstrap leave tor running (Tails' htpdate does not restart it). */
  readonly keepTor: boolean;
}

/** Parse argv (after the program name): `[--keep-tor] TIMESTAMP`, nothing else, between the release's floor and ceiling (epoch s). */
export function parseSetClockArgs(argv: readonly string[], bounds: { releaseFloor: number; releaseCeiling: number }): SetClockRequest | { error: string } {
  const { releaseFloor, releaseCeiling } = bounds;
  const args = [...argv];
  const keepTor = args[0] === '--keep-tor';
  if (keepTor) args.shift();
  if (args.length !== 1) return { error: 'usage: set-clock [--keep-tor] YYYY-MM-DDTHH:MM:SS+00:00' };
  const epoch = parseUtcTimestamp(args[0]!);
  if (epoch === undefined) return { error: `refused ${JSON.stringify(args[0]!.slice(0, 40))}: not a YYYY-MM-DDTHH:MM:SS+00:00 UTC timestamp` };
  if (epoch < releaseFloor) return { error: `refused ${args[0]}: before this release (${formatUtcTimestamp(releaseFloor * 1000)})` };
  if (epoch > releaseCeiling) return { error: `refused ${args[0]}: after the latest time this release accepts (${formatUtcTimestamp(releaseCeiling * 1000)})` };
  return { epoch, keepTor };
}

/** Stop tor if it runs, set the clock, start tor again. Returns the outcome; never throws for a failed command. */
export async function applyClock(req: SetClockRequest, torUnit: string, host: ClockHost): Promise<Outcome> {
  if (host.uid !== 0) {
    host.log('set-clock: must run as root');
    return 'invalid-config';
  }
  let torWasActive = false;
  if (!req.keepTor) {
    // A start job queued behind the pre-Tor unit (Before=tor) is not active:
    // leave it alone, it starts after us with the right clock.
    torWasActive = (await host.run(SYSTEMCTL, ['is-active', '--quiet', torUnit])) === 0;
    if (torWasActive && (await host.run(SYSTEMCTL, ['stop', torUnit])) !== 0) {
      host.log(`set-clock: could not stop ${torUnit}; clock not changed`);
      return 'clock-not-set';
    }
  }
  const dateOk = (await host.run(DATE, ['-u', `--set=@${req.epoch}`])) === 0;
  if (dateOk) host.log(`set-clock: clock set to ${formatUtcTimestamp(req.epoch * 1000)}`);
  else host.log('set-clock: date --set failed; clock not changed');
  if (torWasActive && (await host.run(SYSTEMCTL, ['start', torUnit])) !== 0) {
    host.log(`set-clock: could not start ${torUnit} again`);
    return dateOk ? 'tor-not-restarted' : 'clock-not-set';
  }
  return dateOk ? 'ok' : 'clock-not-set';
}

export function exitCodeOf(o: Outcome): number {
  return EXIT[o];
}

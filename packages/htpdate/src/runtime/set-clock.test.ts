import { describe, expect, it } from 'vitest';
import { applyClock, DATE, parseSetClockArgs, SYSTEMCTL, type ClockHost } from './set-clock.js';

const FLOOR = 1763769600;
const BOUNDS = { releaseFloor: FLOOR, releaseCeiling: FLOOR + 5 * 31_557_600 };

function host(opts: { uid?: number; torActive?: boolean; fail?: string[] } = {}) {
  const calls: string[] = [];
  const h: ClockHost = {
    uid: opts.uid ?? 0,
    run: async (cmd, args) => {
      const line = [cmd, ...args].join(' ');
      calls.push(line);
      if (line.includes('is-active')) return opts.torActive ? 0 : 3;
      return (opts.fail ?? []).some((f) => line.includes(f)) ? 1 : 0;
    },
    log: () => {},
  };
  return { h, calls };
}

describe('set-clock arguments', () => {
  it('accepts exactly one strict UTC timestamp, optionally after --keep-tor', () => {
    expect(parseSetClockArgs(['2025-12-01T12:00:00+00:00'], BOUNDS)).toEqual({ epoch: 1764590400, keepTor: false });
    expect(parseSetClockArgs(['--keep-tor', '2025-12-01T12:00:00+00:00'], BOUNDS)).toEqual({ epoch: 1764590400, keepTor: true });
  });
  it.each([
    [[]],
    [['2025-12-01T12:00:00+00:00', 'extra']],
    [['2025-12-01T12:00:00+02:00']],
    [['--set=@0']],
    [['@1764590400']],
    [['2025-12-01T12:00:00+00:00; reboot']],
    [['--keep-tor']],
    [['2025-11-21T23:59:59+00:00']],
    // the far-future attack: a clock tor could never bootstrap with
    [['9999-12-31T23:59:59+00:00']],
    [['2030-11-22T06:00:01+00:00']],
  ])('refuses %j', (argv) => {
    expect(parseSetClockArgs(argv, BOUNDS)).toHaveProperty('error');
  });
  it('the ceiling itself is still accepted', () => {
    expect(parseSetClockArgs(['2030-11-22T06:00:00+00:00'], BOUNDS)).toEqual({ epoch: BOUNDS.releaseCeiling, keepTor: false });
  });
});

describe('applyClock', () => {
  const req = { epoch: 1764590400, keepTor: false };
  it('stops a running tor, sets the clock with an integer epoch, starts tor again', async () => {
    const { h, calls } = host({ torActive: true });
    expect(await applyClock(req, 'tor@default.service', h)).toBe('ok');
    expect(calls).toEqual([
      `${SYSTEMCTL} is-active --quiet tor@default.service`,
      `${SYSTEMCTL} stop tor@default.service`,
      `${DATE} -u --set=@1764590400`,
      `${SYSTEMCTL} start tor@default.service`,
    ]);
  });
  it('leaves a tor that is not running (its start is queued behind the pre-Tor unit) alone', async () => {
    const { h, calls } = host({ torActive: false });
    expect(await applyClock(req, 'tor@default.service', h)).toBe('ok');
    expect(calls).toEqual([`${SYSTEMCTL} is-active --quiet tor@default.service`, `${DATE} -u --set=@1764590400`]);
  });
  it('--keep-tor does not touch tor', async () => {
    const { h, calls } = host({ torActive: true });
    expect(await applyClock({ ...req, keepTor: true }, 'tor@default.service', h)).toBe('ok');
    expect(calls).toEqual([`${DATE} -u --set=@1764590400`]);
  });
  it('refuses to run as non-root, running nothing', async () => {
    const { h, calls } = host({ uid: 1000 });
    expect(await applyClock(req, 'tor@default.service', h)).toBe('invalid-config');
    expect(calls).toEqual([]);
  });
  it('does not change the clock when tor cannot be stopped', async () => {
    const { h, calls } = host({ torActive: true, fail: ['stop'] });
    expect(await applyClock(req, 'tor@default.service', h)).toBe('clock-not-set');
    expect(calls.some((c) => c.startsWith(DATE))).toBe(false);
  });
  it('starts tor again when date fails, and reports the clock unchanged', async () => {
    const { h, calls } = host({ torActive: true, fail: ['--set'] });
    expect(await applyClock(req, 'tor@default.service', h)).toBe('clock-not-set');
    expect(calls.at(-1)).toBe(`${SYSTEMCTL} start tor@default.service`);
  });
  it('reports a tor that did not come back', async () => {
    const { h } = host({ torActive: true, fail: ['start'] });
    expect(await applyClock(req, 'tor@default.service', h)).toBe('tor-not-restarted');
  });
});

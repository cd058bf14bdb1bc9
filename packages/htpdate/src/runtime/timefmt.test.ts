import { describe, expect, it } from 'vitest';
import { formatHttpDate, formatUtcTimestamp, parseHttpDate, parseUtcTimestamp } from './timefmt.js';

describe('parseHttpDate (IMF-fixdate only)', () => {
  it('reads the canonical form', () => {
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT')).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseHttpDate('Sat, 22 Nov 2025 00:00:00 GMT')).toBe(1763769600_000);
  });
  it.each([
    ['wrong weekday', 'Mon, 06 Nov 1994 08:49:37 GMT'],
    ['RFC 850 form', 'Sunday, 06-Nov-94 08:49:37 GMT'],
    ['asctime form', 'Sun Nov  6 08:49:37 1994'],
    ['not GMT', 'Sun, 06 Nov 1994 08:49:37 UTC'],
    ['Feb 30', 'Thu, 30 Feb 2023 00:00:00 GMT'],
    ['hour 24', 'Sun, 06 Nov 1994 24:00:00 GMT'],
    ['leap second', 'Sun, 06 Nov 1994 08:49:60 GMT'],
    ['one-digit day', 'Sun, 6 Nov 1994 08:49:37 GMT'],
    ['trailing text', 'Sun, 06 Nov 1994 08:49:37 GMT x'],
    ['empty', ''],
    ['garbage', 'yesterday'],
  ])('refuses %s', (_, v) => expect(parseHttpDate(v)).toBeUndefined());
  it('round-trips formatHttpDate', () => {
    const t = Date.UTC(2031, 0, 2, 3, 4, 5);
    expect(parseHttpDate(formatHttpDate(t + 999))).toBe(t);
  });
});

describe('UTC timestamps for set-clock', () => {
  it('formats and parses the one accepted form', () => {
    expect(formatUtcTimestamp(1763769600_999)).toBe('2025-11-22T00:00:00+00:00');
    expect(parseUtcTimestamp('2025-11-22T00:00:00+00:00')).toBe(1763769600);
  });
  it.each([
    '2025-11-22T00:00:00+01:00',
    '2025-11-22T00:00:00Z',
    '2025-11-22T00:00:00+00:00\n',
    ' 2025-11-22T00:00:00+00:00',
    '2025-11-22 00:00:00+00:00',
    '2025-02-30T00:00:00+00:00',
    '2025-11-22T24:00:00+00:00',
    '2025-13-01T00:00:00+00:00',
    '1969-12-31T23:59:59+00:00',
    '@1763769600',
    '1763769600',
    '2025-11-22T00:00:00.5+00:00',
    '',
  ])('refuses %j', (v) => expect(parseUtcTimestamp(v)).toBeUndefined());
  it('refuses to format a time outside 1970-9999', () => {
    expect(() => formatUtcTimestamp(-1000)).toThrow();
  });
});

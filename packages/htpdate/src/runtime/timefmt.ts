// The two time formats the tools accept. Both parsers are strict on purpose:
// the HTTP Date header comes from an unauthenticated clearnet server (pre-Tor)
// and the timestamp crosses a privilege boundary (clearnet user → root), so
// anything but the one canonical form is refused rather than guessed at.

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

// RFC 9110 §5.6.7 IMF-fixdate, the only form a server may generate. The
// obsolete RFC 850 and asctime forms are refused (Tails' Python parser
// accepted them; nothing in a Date header needs them today).
const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;

/** Epoch milliseconds for y-m-d h:m:s UTC, or undefined if any field is out of range (Feb 30, 24:00, :60). */
function utc(y: number, mo: number, d: number, h: number, mi: number, s: number): number | undefined {
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return undefined;
  const t = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(t);
  // Date.UTC rolls over (Feb 30 → Mar 2) and maps years 0–99 to 1900+; refuse both.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return undefined;
  return t;
}

/** Epoch milliseconds of an HTTP Date header value, or undefined if it is not a valid IMF-fixdate. */
export function parseHttpDate(value: string): number | undefined {
  const m = IMF_FIXDATE.exec(value);
  if (!m) return undefined;
  const [, wd, d, mon, y, h, mi, s] = m;
  const t = utc(Number(y), MONTHS.indexOf(mon as (typeof MONTHS)[number]) + 1, Number(d), Number(h), Number(mi), Number(s));
  if (t === undefined || DAYS[new Date(t).getUTCDay()] !== wd) return undefined;
  return t;
}

/** The IMF-fixdate of a time (for servers in tests, and to print what was seen). */
export function formatHttpDate(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toUTCString();
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** `YYYY-MM-DDTHH:MM:SS+00:00`, the one format the clock-setting helper accepts (seconds, UTC). */
export function formatUtcTimestamp(ms: number): string {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const y = d.getUTCFullYear();
  if (y < 1970 || y > 9999) throw new RangeError(`time ${ms} is outside 1970–9999`);
  return `${pad(y, 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}+00:00`;
}

// Tails' set-system-time accepts any ±hh:mm offset (exactly 25 characters);
// this accepts UTC only, so a value has exactly one spelling.
const UTC_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\+00:00$/;

/** Epoch seconds of a strict UTC timestamp, or undefined for anything else (other offsets, spaces, a trailing newline, Feb 30). */
export function parseUtcTimestamp(value: string): number | undefined {
  const m = UTC_TIMESTAMP.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const t = utc(y, mo, d, h, mi, s);
  if (t === undefined || y < 1970) return undefined;
  return t / 1000;
}

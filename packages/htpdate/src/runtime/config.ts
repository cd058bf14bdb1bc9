// /usr/lib/leakless/time.conf: the one file the time tools read, generated from
// the policy by the htpdate module (templates/time.conf.ejs). The parser is
// strict: an unknown key, a repeated key, a value out of range is a bad
// configuration (exit 8), never a default silently taken.
import { isIPv4 } from 'node:net';
import { ToolFailure } from './exit-codes.js';
import { parsePlainHttpUrl, type PlainHttpUrl } from './http.js';
import type { ControlEndpoint } from './tor-control.js';

export const DEFAULT_CONFIG = '/usr/lib/leakless/time.conf';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface PreTorConfig {
  readonly url: PlainHttpUrl;
  readonly urlText: string;
  readonly expectedBody: string;
  readonly timeoutSeconds: number;
  readonly uid: number;
  readonly gid: number;
}

export interface HtpConfig {
  readonly uid: number;
  readonly gid: number;
  readonly socks: Endpoint;
  readonly failureRatio: number;
  readonly minOffsetSeconds: number;
  readonly timeoutSeconds: number;
  /** How long htpdate waits for tor's bootstrap before it gives up (exit 11). */
  readonly bootstrapTimeoutSeconds: number;
  readonly caFile: string;
  readonly pools: readonly (readonly string[])[];
  readonly doneFile: string;
  readonly successFile: string;
}

export interface TimeConfig {
  /** Epoch seconds: no time before this is ever accepted (release.sourceDateEpoch). */
  readonly releaseFloor: number;
  /** Epoch seconds: no time after this is ever accepted (time.maxYearsAfterRelease after the floor). */
  readonly releaseCeiling: number;
  readonly torUnit: string;
  /** tor's control socket and cookie (never the cookie path a server names). */
  readonly torControl: ControlEndpoint;
  /** Absolute path of the root clock-setting helper. */
  readonly setClock: string;
  readonly pretor?: PreTorConfig;
  readonly htp: HtpConfig;
}

/** key → one value (or, for htp-pool, several), in file order. */
export type ConfEntries = ReadonlyMap<string, readonly string[]>;

const KEYS = [
  'release-floor',
  'release-ceiling',
  'tor-unit',
  'tor-control-socket',
  'tor-control-cookie',
  'tor-uid',
  'set-clock',
  'pretor-url',
  'pretor-expected-body',
  'pretor-timeout',
  'pretor-uid',
  'pretor-gid',
  'htp-uid',
  'htp-gid',
  'htp-socks',
  'htp-failure-ratio',
  'htp-min-offset',
  'htp-timeout',
  'htp-bootstrap-timeout',
  'htp-ca-file',
  'htp-pool',
  'htp-done-file',
  'htp-success-file',
] as const;
const REPEATABLE = new Set(['htp-pool']);
const PRETOR_KEYS = KEYS.filter((k) => k.startsWith('pretor-'));

const bad = (msg: string): ToolFailure => new ToolFailure('invalid-config', msg);

export function parseConfEntries(text: string): ConfEntries {
  const out = new Map<string, string[]>();
  text.split('\n').forEach((raw, i) => {
    // values are taken verbatim (no trimming): the expected body may hold spaces
    const line = raw;
    if (line.trim() === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq <= 0) throw bad(`line ${i + 1}: expected key=value`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (!(KEYS as readonly string[]).includes(key)) throw bad(`line ${i + 1}: unknown key ${JSON.stringify(key)}`);
    if (/[\u0000-\u001f\u007f]/.test(value) || value === '') throw bad(`line ${i + 1}: ${key} has an empty value or a control character`);
    const prev = out.get(key);
    if (prev && !REPEATABLE.has(key)) throw bad(`line ${i + 1}: ${key} is set twice`);
    out.set(key, [...(prev ?? []), value]);
  });
  return out;
}

function one(e: ConfEntries, key: string): string {
  const v = e.get(key);
  if (!v) throw bad(`${key} is missing`);
  return v[0]!;
}

function int(e: ConfEntries, key: string, min: number, max: number): number {
  const s = one(e, key);
  if (!/^\d{1,10}$/.test(s) || Number(s) < min || Number(s) > max) throw bad(`${key}=${s} is not an integer in ${min}–${max}`);
  return Number(s);
}

function num(e: ConfEntries, key: string, min: number, max: number): number {
  const s = one(e, key);
  if (!/^\d{1,6}(\.\d{1,6})?$/.test(s) || Number(s) < min || Number(s) > max) throw bad(`${key}=${s} is not a number in ${min}–${max}`);
  return Number(s);
}

function absPath(e: ConfEntries, key: string): string {
  const s = one(e, key);
  if (!/^(\/[A-Za-z0-9._@+-]+)+$/.test(s) || s.split('/').includes('..')) throw bad(`${key}=${s} is not an absolute path`);
  return s;
}

function endpoint(e: ConfEntries, key: string): Endpoint {
  const s = one(e, key);
  const m = /^([0-9.]+):(\d{1,5})$/.exec(s);
  if (!m || !isIPv4(m[1]!) || Number(m[2]) < 1 || Number(m[2]) > 65535) throw bad(`${key}=${s} is not IPv4-address:port`);
  return { address: m[1]!, port: Number(m[2]) };
}

/** 9999-12-31T23:59:59Z: the last second an HTTP date (and `date`) can name. */
const MAX_EPOCH = 253402300799;

const HOST = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function parseTimeConf(text: string): TimeConfig {
  const e = parseConfEntries(text);
  const unit = one(e, 'tor-unit');
  if (!/^[A-Za-z0-9:_.@-]+\.service$/.test(unit)) throw bad(`tor-unit=${unit} is not a service unit name`);
  const pools = (e.get('htp-pool') ?? []).map((p, i) => {
    const hosts = p.split(',');
    const badHost = hosts.find((h) => !HOST.test(h));
    if (badHost !== undefined) throw bad(`htp-pool #${i + 1}: ${JSON.stringify(badHost)} is not a host name`);
    return hosts;
  });
  if (pools.length === 0) throw bad('htp-pool is missing (at least one pool)');
  const present = PRETOR_KEYS.filter((k) => e.has(k));
  let pretor: PreTorConfig | undefined;
  if (present.length > 0) {
    // all or nothing: a half-configured check is a mistake, not "disabled"
    const urlText = one(e, 'pretor-url');
    const url = parsePlainHttpUrl(urlText);
    if (!url) throw bad(`pretor-url=${urlText} is not a plain http://host[:port]/path URL`);
    pretor = {
      url,
      urlText,
      expectedBody: one(e, 'pretor-expected-body'),
      timeoutSeconds: int(e, 'pretor-timeout', 1, 120),
      uid: int(e, 'pretor-uid', 1, 4294967294),
      gid: int(e, 'pretor-gid', 1, 4294967294),
    };
  }
  const releaseFloor = int(e, 'release-floor', 0, MAX_EPOCH);
  return {
    releaseFloor,
    releaseCeiling: int(e, 'release-ceiling', releaseFloor + 1, MAX_EPOCH),
    torUnit: unit,
    torControl: { socket: absPath(e, 'tor-control-socket'), cookie: absPath(e, 'tor-control-cookie'), torUid: int(e, 'tor-uid', 1, 4294967294) },
    setClock: absPath(e, 'set-clock'),
    ...(pretor ? { pretor } : {}),
    htp: {
      uid: int(e, 'htp-uid', 1, 4294967294),
      gid: int(e, 'htp-gid', 1, 4294967294),
      socks: endpoint(e, 'htp-socks'),
      failureRatio: num(e, 'htp-failure-ratio', 0, 1),
      minOffsetSeconds: num(e, 'htp-min-offset', 0, 86400),
      timeoutSeconds: int(e, 'htp-timeout', 1, 600),
      bootstrapTimeoutSeconds: int(e, 'htp-bootstrap-timeout', 10, 86400),
      caFile: absPath(e, 'htp-ca-file'),
      pools,
      doneFile: absPath(e, 'htp-done-file'),
      successFile: absPath(e, 'htp-success-file'),
    },
  };
}

/** The key=value lines a TimeConfig is written as (the template adds a comment per line). */
export function confLines(c: TimeConfig): { key: (typeof KEYS)[number]; value: string }[] {
  const ep = (x: Endpoint): string => `${x.address}:${x.port}`;
  return [
    { key: 'release-floor', value: String(c.releaseFloor) },
    { key: 'release-ceiling', value: String(c.releaseCeiling) },
    { key: 'tor-unit', value: c.torUnit },
    { key: 'tor-control-socket', value: c.torControl.socket },
    { key: 'tor-control-cookie', value: c.torControl.cookie },
    { key: 'tor-uid', value: String(c.torControl.torUid) },
    { key: 'set-clock', value: c.setClock },
    ...(c.pretor
      ? ([
          { key: 'pretor-url', value: c.pretor.urlText },
          { key: 'pretor-expected-body', value: c.pretor.expectedBody },
          { key: 'pretor-timeout', value: String(c.pretor.timeoutSeconds) },
          { key: 'pretor-uid', value: String(c.pretor.uid) },
          { key: 'pretor-gid', value: String(c.pretor.gid) },
        ] as const)
      : []),
    { key: 'htp-uid', value: String(c.htp.uid) },
    { key: 'htp-gid', value: String(c.htp.gid) },
    { key: 'htp-socks', value: ep(c.htp.socks) },
    { key: 'htp-failure-ratio', value: String(c.htp.failureRatio) },
    { key: 'htp-min-offset', value: String(c.htp.minOffsetSeconds) },
    { key: 'htp-timeout', value: String(c.htp.timeoutSeconds) },
    { key: 'htp-bootstrap-timeout', value: String(c.htp.bootstrapTimeoutSeconds) },
    { key: 'htp-ca-file', value: c.htp.caFile },
    ...c.htp.pools.map((p) => ({ key: 'htp-pool' as const, value: p.join(',') })),
    { key: 'htp-done-file', value: c.htp.doneFile },
    { key: 'htp-success-file', value: c.htp.successFile },
  ];
}

// The time tools' settings as data, derived from the policy once; the config
// file, the units and the assertions are all rendered from this.
import { PATHS, UNITS, type Policy } from '@leakless/policy';
import { TOR_CONTROL } from '@leakless/policy/names';
import type { TimeConfig } from './runtime/config.js';
import { parsePlainHttpUrl } from './runtime/http.js';

export const LIB_DIR = PATHS.lib;
/** The tools read this by default (runtime/config.ts DEFAULT_CONFIG, which a test holds equal). */
export const CONFIG_FILE = `${PATHS.lib}/time.conf`;
export const UNIT_DIR = PATHS.units;
export const HTPDATE_UNIT = UNITS.htpdate;
/** Debian's ca-certificates bundle: the trust anchors for htpdate's HTTPS hosts. */
export const CA_FILE = '/etc/ssl/certs/ca-certificates.crt';
export const RUN_DIR = '/run/htpdate';

export const TOOL_PATHS = {
  'pretor-time': `${LIB_DIR}/pretor-time`,
  htpdate: `${LIB_DIR}/htpdate`,
  'set-clock': `${LIB_DIR}/set-clock`,
} as const;

/** A year of the ceiling: 365.25 days, so maxYearsAfterRelease years never fall short of the calendar. */
export const YEAR_SECONDS = 31_557_600;

/** The policy's time section resolved to the values the tools read (users → ids, SocksPort name → address:port). */
export function timeConfigOf(policy: Policy): TimeConfig {
  const t = policy.document.time;
  const htpUser = policy.userByName(t.htpdate.user);
  const socks = policy.socksPorts.find((s) => s.name === t.htpdate.socksPort);
  if (!socks) throw new Error(`internal: SocksPort ${t.htpdate.socksPort} not found after validation`);
  const pre = t.preTorCheck;
  const preUser = pre.enabled ? policy.userByName(pre.user) : undefined;
  return {
    releaseFloor: policy.sourceDateEpoch,
    releaseCeiling: policy.sourceDateEpoch + t.maxYearsAfterRelease * YEAR_SECONDS,
    torUnit: policy.torUnit,
    torControl: { socket: TOR_CONTROL.socket, cookie: TOR_CONTROL.cookie, torUid: policy.torUser.uid },
    setClock: TOOL_PATHS['set-clock'],
    ...(preUser
      ? {
          pretor: {
            url: parsePlainHttpUrl(pre.url) ?? fail(`${pre.url} passed validation but is not http://host[:port]/path`),
            urlText: pre.url,
            expectedBody: pre.expectedBody,
            timeoutSeconds: pre.timeoutSeconds,
            uid: preUser.uid,
            gid: preUser.gid,
          },
        }
      : {}),
    htp: {
      uid: htpUser.uid,
      gid: htpUser.gid,
      socks: { address: socks.address, port: socks.port },
      failureRatio: t.htpdate.perPoolFailureRatio,
      minOffsetSeconds: t.htpdate.minimumOffsetSeconds,
      timeoutSeconds: t.htpdate.requestTimeoutSeconds,
      bootstrapTimeoutSeconds: t.htpdate.bootstrapTimeoutSeconds,
      caFile: CA_FILE,
      pools: t.htpdate.pools.map((p) => [...p]),
      doneFile: `${RUN_DIR}/done`,
      successFile: `${RUN_DIR}/success`,
    },
  };
}

function fail(msg: string): never {
  throw new Error(`internal: ${msg}`);
}

/** The policy clause behind each config key, written above it in time.conf. */
export function clauseOf(policy: Policy, key: string): string {
  const t = policy.document.time;
  const userIdx = (name: string): number => policy.document.users.findIndex((u) => u.name === name);
  const socksIdx = policy.document.tor.socksPorts.findIndex((s) => s.name === t.htpdate.socksPort);
  const clauses: Record<string, string> = {
    'release-floor': 'release.sourceDateEpoch: no time before the release is accepted',
    'release-ceiling': 'release.sourceDateEpoch + time.maxYearsAfterRelease years: no time after this is accepted',
    'tor-unit': "Debian's tor unit (policy view torUnit): restarted around a clock change",
    'tor-control-socket': "tor's control socket (docs/threat-model.md#controlport): htpdate waits there for the bootstrap",
    'tor-control-cookie': "tor's control cookie: read from here, never from the path a server names (SAFECOOKIE)",
    'tor-uid': 'users[role=tor-daemon].uid: besides root, the only owner of the socket, the cookie and their directories',
    'set-clock': 'the root clock-setting helper (htpdate module)',
    'pretor-url': 'time.preTorCheck.url',
    'pretor-expected-body': 'time.preTorCheck.expectedBody',
    'pretor-timeout': 'time.preTorCheck.timeoutSeconds',
    'pretor-uid': `time.preTorCheck.user → users[${userIdx(t.preTorCheck.user)}].uid`,
    'pretor-gid': `time.preTorCheck.user → users[${userIdx(t.preTorCheck.user)}].gid`,
    'htp-uid': `time.htpdate.user → users[${userIdx(t.htpdate.user)}].uid`,
    'htp-gid': `time.htpdate.user → users[${userIdx(t.htpdate.user)}].gid`,
    'htp-socks': `time.htpdate.socksPort → tor.socksPorts[${socksIdx}]`,
    'htp-failure-ratio': 'time.htpdate.perPoolFailureRatio',
    'htp-min-offset': 'time.htpdate.minimumOffsetSeconds',
    'htp-timeout': 'time.htpdate.requestTimeoutSeconds',
    'htp-bootstrap-timeout': 'time.htpdate.bootstrapTimeoutSeconds',
    'htp-ca-file': "Debian's ca-certificates bundle: trust anchors for the pools' HTTPS",
    'htp-pool': 'time.htpdate.pools',
    'htp-done-file': 'Tails /run/htpdate/done (a run finished)',
    'htp-success-file': 'Tails /run/htpdate/success (the run succeeded)',
  };
  const c = clauses[key];
  if (c === undefined) throw new Error(`internal: no clause for ${key}`);
  return c;
}

import { describe, expect, it } from 'vitest';
import { confLines, parseTimeConf, type TimeConfig } from './config.js';
import { ToolFailure } from './exit-codes.js';

const cfg: TimeConfig = {
  releaseFloor: 1763769600,
  releaseCeiling: 1921557600,
  torUnit: 'tor@default.service',
  torControl: { socket: '/run/tor/control', cookie: '/run/tor/control.authcookie', torUid: 106 },
  setClock: '/usr/lib/leakless/set-clock',
  pretor: {
    url: { host: 'fedoraproject.org', port: 80, path: '/static/hotspot.txt' },
    urlText: 'http://fedoraproject.org/static/hotspot.txt',
    expectedBody: 'O K',
    timeoutSeconds: 10,
    uid: 114,
    gid: 123,
  },
  htp: {
    uid: 116,
    gid: 124,
    socks: { address: '127.0.0.1', port: 9062 },
    failureRatio: 0.34,
    minOffsetSeconds: 1,
    timeoutSeconds: 30,
    bootstrapTimeoutSeconds: 600,
    caFile: '/etc/ssl/certs/ca-certificates.crt',
    pools: [['a.example', 'b.example'], ['c.example'], ['d.example']],
    doneFile: '/run/htpdate/done',
    successFile: '/run/htpdate/success',
  },
};
const text = (c: TimeConfig): string =>
  confLines(c)
    .map((l) => `# comment\n${l.key}=${l.value}\n`)
    .join('');

function failure(t: string): string {
  try {
    parseTimeConf(t);
  } catch (e) {
    expect(e).toBeInstanceOf(ToolFailure);
    expect((e as ToolFailure).outcome).toBe('invalid-config');
    return (e as Error).message;
  }
  throw new Error('parsed');
}

describe('time.conf', () => {
  it('round-trips through its lines (values verbatim, spaces kept)', () => {
    expect(parseTimeConf(text(cfg))).toEqual(cfg);
  });
  it('without pretor-* keys the pre-Tor check is absent', () => {
    const { pretor: _, ...rest } = cfg;
    expect(parseTimeConf(text(rest)).pretor).toBeUndefined();
  });
  it.each([
    ['an unknown key', (t: string) => t + 'colour=blue\n', /unknown key/],
    ['a repeated key', (t: string) => t + 'htp-uid=117\n', /set twice/],
    ['a missing key', (t: string) => t.replace(/^htp-socks=.*$/m, ''), /htp-socks is missing/],
    ['half a pre-Tor section', (t: string) => t.replace(/^pretor-url=.*$/m, ''), /pretor-url is missing/],
    ['a non-integer uid', (t: string) => t.replace('htp-uid=116', 'htp-uid=11x'), /htp-uid/],
    ['uid 0 for the network half', (t: string) => t.replace('pretor-uid=114', 'pretor-uid=0'), /pretor-uid/],
    ['a ratio above 1', (t: string) => t.replace('htp-failure-ratio=0.34', 'htp-failure-ratio=1.5'), /failure-ratio/],
    ['an https URL', (t: string) => t.replace('pretor-url=http:', 'pretor-url=https:'), /pretor-url/],
    ['a relative path', (t: string) => t.replace('set-clock=/usr', 'set-clock=usr'), /absolute/],
    ['a path with ..', (t: string) => t.replace('set-clock=/usr', 'set-clock=/../usr'), /absolute/],
    ['a bad pool host', (t: string) => t.replace('a.example', 'a_example'), /host name/],
    ['a SOCKS port on IPv6', (t: string) => t.replace('htp-socks=127.0.0.1:9062', 'htp-socks=::1:9062'), /htp-socks/],
    ['a line without =', (t: string) => t + 'htp-uid\n', /key=value/],
    ['a non-service tor unit', (t: string) => t.replace('tor@default.service', 'tor; rm -rf /'), /tor-unit/],
    ['a ceiling at or before the floor', (t: string) => t.replace('release-ceiling=1921557600', 'release-ceiling=1763769600'), /release-ceiling/],
    ['no ceiling', (t: string) => t.replace(/^release-ceiling=.*$/m, ''), /release-ceiling is missing/],
    ['a relative control socket', (t: string) => t.replace('tor-control-socket=/run', 'tor-control-socket=run'), /absolute/],
    ['tor as root', (t: string) => t.replace('tor-uid=106', 'tor-uid=0'), /tor-uid/],
    ['a bootstrap wait under 10 s', (t: string) => t.replace('htp-bootstrap-timeout=600', 'htp-bootstrap-timeout=0'), /htp-bootstrap-timeout/],
    ['no bootstrap wait (never infinite)', (t: string) => t.replace(/^htp-bootstrap-timeout=.*$/m, ''), /htp-bootstrap-timeout is missing/],
  ])('refuses %s (exit 8)', (_, edit, msg) => {
    expect(failure(edit(text(cfg)))).toMatch(msg);
  });
});

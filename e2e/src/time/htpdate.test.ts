// htpdate in the lab, end to end: the emitted tools and config, the emitted
// firewall in the sut, the fetch made as the htp user through a SOCKS5 server
// on the policy's SocksPort (a stand-in for tor, run as the tor-daemon user so
// the firewall treats it as tor), against HTTPS servers on documentation
// addresses with certificates from a CA made for this run. The clock setter
// is a recording stand-in: the host clock is never touched.

import { existsSync, readFileSync } from 'node:fs';
import { EXIT, type TimeConfig } from '@leakless/htpdate';
import { skipUnless } from '@leakless/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAYS, makeTestCa, type TestCa } from '../../../packages/htpdate/src/test/certs.js';
import { type Ids, labNeeds, startServer } from '../lab/index.js';
import { poolAddress, SERVERS, startTimeLab, type TimeLab } from './setup.js';

const skip = skipUnless('the htpdate lab (e2e/src/time)', ...labNeeds('nft', 'openssl', 'tor'));
const HOUR = 3_600_000;

let t: TimeLab;
let ca: TestCa;
let htp: Ids;
const timings: Record<string, number> = {};

/** 9999-12-31T23:00:00Z from now (an hour short of the last date an HTTP header can name). */
const TO_9999 = Date.UTC(9999, 11, 31, 23, 0, 0) - Date.now();

// name → [certificate kind, Date offset]
const HOSTS: Record<string, ['valid' | 'future' | 'expired' | 'otherhost' | 'email-sub-future', number]> = {
  'p1a.pool.example': ['valid', HOUR],
  'p1b.pool.example': ['valid', HOUR],
  'p2a.pool.example': ['valid', HOUR + 5000],
  'p2b.pool.example': ['valid', HOUR + 5000],
  'liar.pool.example': ['valid', -24 * HOUR], // one pool lying by a day cannot move the median
  'z1.pool.example': ['valid', 0],
  'z2.pool.example': ['valid', 0],
  'z3.pool.example': ['valid', 0],
  'notyet.pool.example': ['future', HOUR],
  'expired.pool.example': ['expired', HOUR],
  'wronghost.pool.example': ['otherhost', HOUR],
  // the attacks: a not-yet-valid certificate from a sub-CA for e-mail only; hosts saying it is 9999
  'www.torproject.org': ['email-sub-future', HOUR],
  'f1.pool.example': ['valid', TO_9999],
  'f2.pool.example': ['valid', TO_9999],
  'f3.pool.example': ['valid', TO_9999],
};

function config(name: string, pools: string[][], edit: (c: TimeConfig) => TimeConfig = (c) => c): string {
  return t.conf(name, edit({ ...t.base, htp: { ...t.base.htp, pools, doneFile: `${t.dir}/${name}.done`, successFile: `${t.dir}/${name}.success` } }));
}
const tool = (): string => t.tool('htpdate');

describe.skipIf(skip)('htpdate through a SOCKS port in the lab', () => {
  beforeAll(async () => {
    t = await startTimeLab();
    const { policy } = t;
    htp = t.ids(policy.document.time.htpdate.user);
    ca = makeTestCa('leakless lab CA');
    t.base = { ...t.base, htp: { ...t.base.htp, caFile: t.file('ca.pem', ca.certPem) } };

    const now = Date.now();
    // a real CA of the lab's root, allowed to sign certificates, but for e-mail only
    const emailOnly = ca.intermediate('e-mail only sub-CA', { extendedKeyUsage: 'emailProtection' });
    const hosts = Object.entries(HOSTS).map(([name, [kind, offsetMs]], i) => {
      const validity =
        kind === 'future' || kind === 'email-sub-future'
          ? { notBefore: now + 3 * DAYS, notAfter: now + 90 * DAYS }
          : kind === 'expired'
            ? { notBefore: now - 90 * DAYS, notAfter: now - DAYS }
            : { notBefore: now - DAYS, notAfter: now + 90 * DAYS };
      const issuer = kind === 'email-sub-future' ? emailOnly : ca;
      const cert = issuer.issue({ dns: [kind === 'otherhost' ? 'elsewhere.example' : name], ...validity });
      return {
        name,
        address: poolAddress(i),
        // the server sends its chain: leaf, then the sub-CA
        certFile: t.file(`${name}.pem`, cert.certPem + (issuer === ca ? '' : emailOnly.certPem)),
        keyFile: t.file(`${name}.key`, cert.keyPem, 0o600),
        offsetMs,
      };
    });
    await t.startServer('inet', SERVERS.pool, [t.file('pool-spec.json', JSON.stringify({ dir: t.dir, hosts }))]);
    // tor's stand-in on the policy's SocksPort, as the tor-daemon user (its log must be writable for it)
    t.file('socks.jsonl', '', 0o666);
    const tor = policy.torUser;
    const socksSpec = t.file(
      'socks-spec.json',
      JSON.stringify({ dir: t.dir, listen: t.base.htp.socks, names: Object.fromEntries(hosts.map((h) => [h.name, h.address])) }),
    );
    await t.startServer('sut', SERVERS.socks5, [socksSpec], { uid: tor.uid, gid: tor.gid });
  });
  afterAll(async () => {
    if (Object.keys(timings).length) console.log(`htpdate timings (ms): ${JSON.stringify(timings)}`);
    await t?.teardown();
    ca?.remove();
  });

  it('loads the emitted firewall ruleset in the sut', () => {
    expect(t.rulesetLoaded).toBeUndefined();
  });

  it('median of the pools: one pool a day off does not move it; the clock setter gets now + 1 h, tor kept running', async () => {
    const before = t.clockCalls().length;
    const conf = config('median', [['p1a.pool.example', 'p1b.pool.example'], ['p2a.pool.example', 'p2b.pool.example'], ['liar.pool.example']]);
    const t0 = Date.now();
    const r = await t.run(tool(), ['sync', '--config', conf]);
    timings.sync = Math.round(r.ms);
    expect(r.exitCode, r.stderr).toBe(0);
    const c = t.clockCalls().slice(before);
    expect(c).toHaveLength(1);
    const [flag, ts] = c[0]!.split(' ');
    expect(flag).toBe('--keep-tor');
    const set = Date.parse(ts!.replace('+00:00', 'Z'));
    // pool offsets +1 h, +1 h 5 s, -1 day: the median is +1 h
    expect(set - t0).toBeGreaterThan(HOUR - 3000);
    expect(set - t0).toBeLessThan(HOUR + 4000);
    expect(existsSync(`${t.dir}/median.done`) && existsSync(`${t.dir}/median.success`)).toBe(true);
    expect(r.stderr).toMatch(/median offset 3(59\d|60\d)\.\d+ s/);
  });

  it('the fetch went through the SOCKS port by host name, HEAD only, no redirect followed', () => {
    const socks = readFileSync(`${t.dir}/socks.jsonl`, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { host: string; port: number; atyp: number });
    expect(socks.length).toBeGreaterThanOrEqual(3);
    expect(socks.every((s) => s.atyp === 3 && s.port === 443)).toBe(true);
    const hits = readFileSync(`${t.dir}/hits.jsonl`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { name: string; servername: string; request: string });
    for (const h of hits) {
      expect(h.request).toBe(`HEAD / HTTP/1.1\r\nHost: ${h.name}\r\nConnection: close\r\n\r\n`);
      expect(h.servername).toBe(h.name);
    }
  });

  it('no change under the threshold', async () => {
    const before = t.clockCalls().length;
    const r = await t.run(tool(), ['sync', '--config', config('zero', [['z1.pool.example'], ['z2.pool.example'], ['z3.pool.example']])]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/clock not changed/);
    expect(t.clockCalls().length).toBe(before);
    expect(existsSync(`${t.dir}/zero.success`)).toBe(true);
  });

  it('a pool that fails aborts: exit 10, the clock is not touched, done but no success', async () => {
    const before = t.clockCalls().length;
    const conf = config('poolfail', [['p1a.pool.example'], ['expired.pool.example', 'wronghost.pool.example', 'gone.pool.example'], ['p2a.pool.example']]);
    const r = await t.run(tool(), ['sync', '--config', conf]);
    expect(r.exitCode, r.stderr).toBe(EXIT['pool-failed']);
    expect(r.stderr).toMatch(/pool 2 could not be reached/);
    expect(t.clockCalls().length).toBe(before);
    expect(existsSync(`${t.dir}/poolfail.done`)).toBe(true);
    expect(existsSync(`${t.dir}/poolfail.success`)).toBe(false);
  });

  it('certificates: not yet valid accepted; expired and wrong host refused (fetch as htp)', async () => {
    const conf = config('certs', [['notyet.pool.example'], ['expired.pool.example'], ['wronghost.pool.example']]);
    const r = await t.run(tool(), ['fetch', '--config', conf], { as: htp });
    expect(r.exitCode, r.stderr).toBe(0);
    const { pools } = JSON.parse(r.stdout) as { pools: { ok: boolean; offsetMs?: number; failures: { error: string }[] }[] };
    expect(pools[0]).toMatchObject({ ok: true });
    expect(Math.abs(pools[0]!.offsetMs! - HOUR)).toBeLessThan(3000);
    expect(pools[1]).toMatchObject({ ok: false });
    expect(pools[1]!.failures[0]!.error).toMatch(/expired/i);
    expect(pools[2]).toMatchObject({ ok: false });
    expect(pools[2]!.failures[0]!.error).toMatch(/not for wronghost|ALTNAME/);
    expect(r.stderr).toMatch(/not-yet-valid/);
  });

  describe('attack: a not-yet-valid certificate for www.torproject.org from a sub-CA for e-mail only (a malicious exit or a mis-issuing CA)', () => {
    const pools = [['www.torproject.org'], ['p1a.pool.example'], ['p2a.pool.example']];
    type Fetched = { pools: { ok: boolean; offsetMs?: number; failures: { error: string }[] }[] };
    it('refused: the pool fails with the sub-CA’s usage named, nothing else is believed', async () => {
      const r = await t.run(tool(), ['fetch', '--config', config('email-ca', pools)], { as: htp });
      expect(r.exitCode, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout) as Fetched;
      expect(got.pools[0]).toMatchObject({ ok: false });
      expect(got.pools[0]!.failures[0]!.error).toMatch(/may not vouch for TLS servers \(extended key usage\).*e-mail only sub-CA/);
      expect(got.pools.slice(1).every((p) => p.ok)).toBe(true); // control: the other pools answer through the same SOCKS port
    });
    it('anti-test: htpdate as shipped before takes its Date', async () => {
      const r = await t.run(t.oldTool('htpdate'), ['fetch', '--config', t.oldConf('email-ca-old', { ...t.base, htp: { ...t.base.htp, pools } })], { as: htp });
      expect(r.exitCode, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout) as Fetched;
      expect(got.pools[0]).toMatchObject({ ok: true });
      expect(Math.abs(got.pools[0]!.offsetMs! - HOUR)).toBeLessThan(5000);
    });
  });

  describe('attack: every pool says it is 9999 (tor would never bootstrap again)', () => {
    const pools = [['f1.pool.example'], ['f2.pool.example'], ['f3.pool.example']];
    it('refused: each such host is a failed host, exit 10, the clock setter is never called', async () => {
      const before = t.clockCalls().length;
      const r = await t.run(tool(), ['sync', '--config', config('far-future', pools)]);
      expect(r.exitCode, r.stderr).toBe(EXIT['pool-failed']);
      expect(r.stderr).toMatch(/after the latest time this release accepts/);
      expect(t.clockCalls().length).toBe(before);
    });
    it('anti-test: htpdate as shipped before sets the clock to 9999', async () => {
      const before = t.clockCalls().length;
      const old = t.oldConf('far-future-old', {
        ...t.base,
        htp: { ...t.base.htp, pools, doneFile: `${t.dir}/ff-old.done`, successFile: `${t.dir}/ff-old.success` },
      });
      const r = await t.run(t.oldTool('htpdate'), ['sync', '--config', old]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(t.clockCalls().slice(before)).toEqual([expect.stringMatching(/^--keep-tor 9999-12-31T2\d:\d\d:\d\d\+00:00$/)]);
    });
  });

  it('fetch refuses to run as root', async () => {
    const r = await t.run(tool(), ['fetch', '--config', config('root', [['z1.pool.example']])]);
    expect(r.exitCode).toBe(EXIT['invalid-config']);
  });

  it('a user that is not a client of the SocksPort gets nowhere (firewall)', async () => {
    expect(t.rulesetLoaded).toBeUndefined();
    const r = await t.run(tool(), ['fetch', '--config', config('apt', [['z1.pool.example'], ['z2.pool.example'], ['z3.pool.example']])], { as: t.ids('_apt') });
    const { pools } = JSON.parse(r.stdout) as { pools: { ok: boolean; failures: { error: string }[] }[] };
    expect(pools.every((p) => !p.ok && /ECONNREFUSED|EPERM/.test(p.failures[0]!.error))).toBe(true);
  });

  describe('waiting for the bootstrap over tor’s control socket', () => {
    it('a real tor (as the tor user) that cannot bootstrap (DisableNetwork): SAFECOOKIE works, exit 11 at the deadline', async () => {
      const tor = t.policy.torUser;
      const data = `${t.dir}/tor-data`;
      await t.run('install', ['-d', '-m', '0700', '-o', String(tor.uid), '-g', String(tor.gid), data]);
      const torrc = t.file('torrc', '');
      const ctl = t.base.torControl;
      const real = await startServer(
        t.lab,
        'sut',
        [
          'tor',
          '-f',
          torrc,
          '--ignore-missing-torrc',
          '--DataDirectory',
          data,
          '--SocksPort',
          '0',
          '--ControlSocket',
          `${ctl.socket} GroupWritable RelaxDirModeCheck`,
          '--CookieAuthentication',
          '1',
          '--CookieAuthFile',
          ctl.cookie,
          '--CookieAuthFileGroupReadable',
          '1',
          '--DisableNetwork',
          '1',
          '--Log',
          'notice stdout',
        ],
        { as: { uid: tor.uid, gid: tor.gid }, ready: /Opened Control listener connection \(ready\)/, readyTimeoutMs: 15_000 },
      );
      try {
        const r = await t.run(tool(), ['wait-bootstrap', '--config', config('wait', [['z1.pool.example']]), '--timeout', '3']);
        expect(r.exitCode, r.stderr).toBe(EXIT['tor-not-bootstrapped']);
        expect(r.stderr).toMatch(/tor bootstrap at \d+ %/); // authenticated and read the phase
      } finally {
        await real.stop();
      }
    });
    it('exit 0 once tor reports 100 %', async () => {
      const ctl = t.base.torControl;
      const tor = t.policy.torUser;
      const control = await t.startServer('sut', SERVERS.fakeControl, [ctl.socket, ctl.cookie, '1500'], { uid: tor.uid, gid: tor.gid });
      try {
        const r = await t.run(tool(), ['wait-bootstrap', '--config', config('wait2', [['z1.pool.example']]), '--timeout', '20']);
        expect(r.exitCode, r.stderr).toBe(0);
        expect(r.stderr).toMatch(/at 50 %[\s\S]*tor has bootstrapped/);
      } finally {
        await control.stop();
      }
    });
  });
});

// The pre-Tor time check in the lab, end to end: the emitted tools and
// config, the emitted firewall loaded in the sut, the request made as the
// clearnet user against HTTP servers on documentation addresses. Each outcome
// gets its Tails exit code and none but "online" reaches the clock setter
// (a recording stand-in: the host clock is never touched).

import { existsSync, readFileSync } from 'node:fs';
import * as htpdate from '@leakless/htpdate';
import { EXIT, type TimeConfig } from '@leakless/htpdate';
import { skipUnless } from '@leakless/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Ids, labNeeds } from '../lab/index.js';
import { DNS, HTTP, SERVERS, startTimeLab, type TimeLab } from './setup.js';

const FIXTURE = readFileSync(new URL('../../../packages/htpdate/fixtures/nm-connectivity-request.bin', import.meta.url));
const skip = skipUnless('the pre-Tor time check lab (e2e/src/time)', ...labNeeds('nft'));

let t: TimeLab;
let clearnet: Ids;
let resolv: string;
const timings: Record<string, number> = {};

interface Logged {
  address?: string;
  request?: string;
  dns?: string;
  remote?: string;
}
const logged = (): Logged[] =>
  existsSync(`${t.dir}/requests.jsonl`)
    ? readFileSync(`${t.dir}/requests.jsonl`, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Logged)
    : [];

const config = (name: string, edit: (c: TimeConfig) => TimeConfig): string => t.conf(name, edit(t.base));
const withUrl =
  (url: string) =>
  (c: TimeConfig): TimeConfig => ({ ...c, pretor: { ...c.pretor!, urlText: url, url: htpdate.parsePlainHttpUrl(url)! } });

const tool = (): string => t.tool('pretor-time');
const sync = (conf: string) => t.run(tool(), ['sync', '--config', conf], { resolv, timeout: 60_000 });
const check = (conf: string, as: Ids) => t.run(tool(), ['check', '--config', conf], { resolv, as, timeout: 60_000 });

describe.skipIf(skip)('pre-Tor time check in the lab', () => {
  beforeAll(async () => {
    t = await startTimeLab();
    const { policy } = t;
    clearnet = t.ids(policy.document.time.preTorCheck.user);
    // what the resolver module bind-mounts over /etc/resolv.conf for this unit: the DHCP DNS server
    resolv = t.file('resolv-over-clearnet.conf', `nameserver ${DNS}\n`);
    const spec = t.file(
      'pretor-spec.json',
      JSON.stringify({
        dir: t.dir,
        floorMs: policy.sourceDateEpoch * 1000,
        // where the captive portal redirects to: the LAN router's login page
        portal: t.lab.addresses.lanRouter,
        dns: {
          address: DNS,
          names: {
            'fedoraproject.org': HTTP.online,
            'portal-redirect.example': HTTP.redirect,
            'portal-page.example': HTTP['portal-body'],
            'silent.example': HTTP.silent,
            'no-date.example': HTTP['no-date'],
            'bad-date.example': HTTP['bad-date'],
            'past.example': HTTP.past,
            'future.example': HTTP.future,
            'closed.example': HTTP.closed,
          },
        },
        http: (['online', 'redirect', 'portal-body', 'silent', 'no-date', 'bad-date', 'past', 'future'] as const).map((mode) => ({
          address: HTTP[mode],
          port: 80,
          mode,
        })),
      }),
    );
    await t.startServer('inet', SERVERS.pretor, [spec]);
  });
  afterAll(async () => {
    if (Object.keys(timings).length) console.log(`pre-Tor check timings (ms): ${JSON.stringify(timings)}`);
    await t?.teardown();
  });

  it('loads the emitted firewall ruleset in the sut', () => {
    expect(t.rulesetLoaded).toBeUndefined();
  });

  it('online: exit 0, the clock setter gets the server’s Date, and the request is NetworkManager’s, byte for byte', async () => {
    const before = logged().length;
    const t0 = Date.now();
    const r = await sync(config('online', (c) => c)); // the policy's own URL: http://fedoraproject.org/static/hotspot.txt
    timings.syncOnline = Math.round(r.ms);
    expect(r.exitCode, r.stderr).toBe(0);
    const c = t.clockCalls();
    expect(c).toHaveLength(1);
    const set = Date.parse(c[0]!.replace('+00:00', 'Z'));
    expect(Math.abs(set - t0)).toBeLessThan(5000);
    expect(c[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    const reqs = logged()
      .slice(before)
      .filter((l) => l.request);
    expect(reqs).toHaveLength(1);
    expect(reqs[0]!.address).toBe(HTTP.online);
    expect(Buffer.from(reqs[0]!.request!, 'base64').equals(FIXTURE)).toBe(true);
    // the name was resolved through the clearnet DNS server, A only (IPv4 check)
    expect(
      logged()
        .slice(before)
        .filter((l) => l.dns === 'fedoraproject.org')
        .map((l) => (l as { qtype?: number }).qtype),
    ).toEqual([1]);
  });

  it('check as the clearnet user prints the time and nothing else', async () => {
    const r = await check(
      config('online-check', (c) => c),
      clearnet,
    );
    timings.checkOnline = Math.round(r.ms);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00\n$/);
  });

  it.each([
    ['captive portal (redirect)', 'captive-portal', 'http://portal-redirect.example/static/hotspot.txt'],
    ['captive portal (login page)', 'captive-portal', 'http://portal-page.example/static/hotspot.txt'],
    ['missing Date', 'missing-date', 'http://no-date.example/static/hotspot.txt'],
    ['malformed Date', 'malformed-date', 'http://bad-date.example/static/hotspot.txt'],
    ['Date before the release', 'date-in-past', 'http://past.example/static/hotspot.txt'],
    ['connection refused', 'http-failure', 'http://closed.example/static/hotspot.txt'],
    ['unknown host', 'http-failure', 'http://nxdomain.example/static/hotspot.txt'],
    ['a server that never answers (policy timeout)', 'timeout', 'http://silent.example/static/hotspot.txt'],
  ] as const)('%s → %s; the clock is not touched', async (name, outcome, url) => {
    const before = t.clockCalls().length;
    const r = await sync(config(name.replace(/\W+/g, '-'), withUrl(url)));
    timings[name] = Math.round(r.ms);
    expect(r.exitCode, r.stderr).toBe(EXIT[outcome]);
    expect(r.stderr).toContain(outcome);
    expect(t.clockCalls().length).toBe(before);
  });

  describe('attack: the answer says "Date: Fri, 31 Dec 9999" (from the LAN or the path)', () => {
    const url = 'http://future.example/static/hotspot.txt';
    it('refused: exit 13, the clock setter is never called', async () => {
      const before = t.clockCalls().length;
      const r = await sync(config('future', withUrl(url)));
      expect(r.exitCode, r.stderr).toBe(EXIT['date-in-future']);
      expect(r.stderr).toMatch(/after the latest time this release accepts \(2030-11-22T06:00:00\+00:00\)/);
      expect(t.clockCalls().length).toBe(before);
    });
    it('anti-test: the pre-Tor check as shipped before sets the clock to 9999', async () => {
      const before = t.clockCalls().length;
      const r = await t.run(t.oldTool('pretor-time'), ['sync', '--config', t.oldConf('future-old', withUrl(url)(t.base))], { resolv, timeout: 60_000 });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(t.clockCalls().slice(before)).toEqual(['9999-12-31T23:59:59+00:00']);
    });
  });

  it('the Tails codes: missing 2, malformed 3, http failure 4, portal 5, past 6, timeout 7; bad configuration 8', () => {
    expect([
      EXIT['missing-date'],
      EXIT['malformed-date'],
      EXIT['http-failure'],
      EXIT['captive-portal'],
      EXIT['date-in-past'],
      EXIT.timeout,
      EXIT['invalid-config'],
    ]).toEqual([2, 3, 4, 5, 6, 7, 8]);
  });

  it('bad configuration: exit 8 and the clock is not touched', async () => {
    const before = t.clockCalls().length;
    const bad = t.file(
      'bad.conf',
      readFileSync(
        config('good-for-bad', (c) => c),
        'utf8',
      ) + 'pretor-proxy=127.0.0.1:8080\n',
    );
    const r1 = await sync(bad);
    expect(r1.exitCode).toBe(8);
    expect(r1.stderr).toMatch(/unknown key "pretor-proxy"/);
    const r2 = await sync(`${t.dir}/missing.conf`);
    expect(r2.exitCode).toBe(8);
    const r3 = await t.run(tool(), ['check', '--config', config('root', (c) => c)], { resolv });
    expect(r3.exitCode).toBe(8); // check refuses to talk to the network as root
    expect(r3.stderr).toMatch(/must not run as root/);
    expect(t.clockCalls().length).toBe(before);
  });

  describe('the firewall lets only the clearnet user make the request', () => {
    const others = (): [string, Ids][] =>
      t.policy.users
        .filter((u) => u.role !== 'clearnet' && u.role !== 'tor-daemon' && u.uid !== 0)
        .map((u) => [u.name, { uid: u.uid, gid: u.gid }] as [string, Ids])
        .concat([['nobody', { uid: 65534, gid: 65534 }]]);

    it('as clearnet the request by address gets through (control)', async () => {
      expect(t.rulesetLoaded).toBeUndefined();
      const r = await check(config('by-address', withUrl(`http://${HTTP.online}/static/hotspot.txt`)), clearnet);
      expect(r.exitCode, r.stderr).toBe(0);
    });

    it('as every other user (desktop, htp, _apt, nobody) the request is refused and nothing reaches the server', async () => {
      expect(t.rulesetLoaded).toBeUndefined();
      const conf = config('by-address', withUrl(`http://${HTTP.online}/static/hotspot.txt`));
      const named = config('by-name', (c) => c);
      for (const [name, ids] of others()) {
        const before = logged().length;
        const r = await check(conf, ids);
        expect(r.exitCode, `${name}: ${r.stderr}`).toBe(EXIT['http-failure']);
        expect(r.stderr, name).toMatch(/ECONNREFUSED|EPERM/);
        expect(r.ms, name).toBeLessThan(5000); // refused at once, not timed out
        // by name, the DNS query is refused first
        const n = await check(named, ids);
        expect([EXIT['http-failure'], EXIT.timeout], `${name}: ${n.stderr}`).toContain(n.exitCode);
        expect(logged().slice(before), name).toEqual([]);
      }
    });

    it('anti-test: without the ruleset the same request from the desktop user does get out (the refusal was the firewall’s)', async () => {
      expect(t.rulesetLoaded).toBeUndefined();
      const desktop = t.policy.desktopUser;
      const conf = config('by-address', withUrl(`http://${HTTP.online}/static/hotspot.txt`));
      const del = await t.run('nft', ['delete', 'table', 'inet', 'leakless']);
      expect(del.exitCode, del.stderr).toBe(0);
      try {
        const r = await check(conf, { uid: desktop.uid, gid: desktop.gid });
        expect(r.exitCode, r.stderr).toBe(0);
      } finally {
        const l = await t.loadRuleset();
        expect(l.exitCode, l.stderr).toBe(0);
      }
      const again = await check(conf, { uid: desktop.uid, gid: desktop.gid });
      expect(again.exitCode).toBe(EXIT['http-failure']);
    });
  });
});

// htpdate in the lab, end to end: the emitted tools and config, the emitted
// firewall in the sut, the fetch made as the htp user through a SOCKS5 server
// on the policy's SocksPort (a stand-in for tor, run as the tor-daemon user so
// the firewall treats it as tor), against HTTPS servers on documentation
// addresses with certificates from a CA made for this run. The clock setter
// is a recording stand-in: the host clock is never touched.
import * as firewall from '@leakless/firewall';
import * as htpdate from '@leakless/htpdate';
import { confLines, CONFIG_FILE, EXIT, parseTimeConf, TOOL_PATHS, type TimeConfig } from '@leakless/htpdate';
import { readPolicyFile, type Policy } from '@leakless/policy';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAYS, makeTestCa, type TestCa } from '../../../packages/htpdate/src/test/certs.js';
import { createTimeLab, poolAddress, requireLab, type Ids, type TimeLab } from './lab.js';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const ok = await requireLab(['ip', 'nft', 'setpriv', 'node', 'openssl', 'tor']);
const HOUR = 3_600_000;

let lab: TimeLab;
let policy: Policy;
let base: TimeConfig;
let ca: TestCa;
let htp: Ids;
let calls: string;
let rulesetLoaded: string | undefined;
const timings: Record<string, number> = {};

// name → [certificate kind, Date offset]
const HOSTS: Record<string, ['valid' | 'future' | 'expired' | 'otherhost', number]> = {
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
};

const clockCalls = (): string[] => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n').filter(Boolean) : []);
function config(name: string, pools: string[][], edit: (c: TimeConfig) => TimeConfig = (c) => c): string {
  const c = edit({ ...base, htp: { ...base.htp, pools, doneFile: `${lab.dir}/${name}.done`, successFile: `${lab.dir}/${name}.success` } });
  return lab.file(`${name}.conf`, confLines(c).map((l) => `${l.key}=${l.value}\n`).join(''));
}
const tool = (): string => `${lab.dir}/bin/htpdate`;

describe.skipIf(!ok)('htpdate through a SOCKS port in the lab', () => {
  beforeAll(async () => {
    const r = await readPolicyFile(here('../../../image-config/default.yaml'));
    if (!r.ok) throw new Error('default policy invalid');
    policy = r.policy;
    lab = await createTimeLab();
    const e = htpdate.emit(policy);
    await lab.run('mkdir', ['-p', `${lab.dir}/bin`]);
    for (const [name, path] of Object.entries(TOOL_PATHS)) {
      const f = e.files.find((x) => x.path === path);
      if (f) lab.file(`bin/${name}`, f.content, 0o755);
    }
    base = parseTimeConf(e.files.find((f) => f.path === CONFIG_FILE)!.content);
    const u = policy.userByName(policy.document.time.htpdate.user);
    htp = { uid: u.uid, gid: u.gid };
    calls = `${lab.dir}/set-clock.calls`;
    const fake = lab.file('fake-set-clock', `#!/bin/sh\nprintf '%s\\n' "$*" >> ${calls}\n`, 0o755);
    ca = makeTestCa('leakless lab CA');
    const caFile = lab.file('ca.pem', ca.certPem);
    base = { ...base, setClock: fake, htp: { ...base.htp, caFile } };

    const now = Date.now();
    const hosts = Object.entries(HOSTS).map(([name, [kind, offsetMs]], i) => {
      const validity =
        kind === 'future' ? { notBefore: now + 3 * DAYS, notAfter: now + 90 * DAYS } : kind === 'expired' ? { notBefore: now - 90 * DAYS, notAfter: now - DAYS } : { notBefore: now - DAYS, notAfter: now + 90 * DAYS };
      const cert = ca.issue({ dns: [kind === 'otherhost' ? 'elsewhere.example' : name], ...validity });
      return {
        name,
        address: poolAddress(i),
        certFile: lab.file(`${name}.pem`, cert.certPem),
        keyFile: lab.file(`${name}.key`, cert.keyPem, 0o600),
        offsetMs,
      };
    });
    await lab.start('inet', 'node', [here('./servers/pool-servers.mjs'), lab.file('pool-spec.json', JSON.stringify({ dir: lab.dir, hosts }))]);
    // tor's stand-in on the policy's SocksPort, as the tor-daemon user (its log must be writable for it)
    lab.file('socks.jsonl', '', 0o666);
    const socks = base.htp.socks;
    const tor = policy.torUser;
    await lab.start(
      'sut',
      'node',
      [here('./servers/socks5-server.mjs'), lab.file('socks-spec.json', JSON.stringify({ dir: lab.dir, listen: socks, names: Object.fromEntries(hosts.map((h) => [h.name, h.address])) }))],
      { as: { uid: tor.uid, gid: tor.gid } },
    );
    const fw = firewall.emit(policy).files.find((f) => f.path === firewall.RULESET_PATH);
    if (!fw) rulesetLoaded = `@leakless/firewall emits no ${firewall.RULESET_PATH}`;
    else {
      const l = await lab.run('nft', ['-f', '-'], { input: fw.content });
      if (l.exitCode !== 0) rulesetLoaded = `nft -f failed: ${l.stderr.trim()}`;
    }
  });
  afterAll(async () => {
    if (Object.keys(timings).length) console.log(`htpdate timings (ms): ${JSON.stringify(timings)}`);
    await lab?.teardown();
    ca?.remove();
  });

  it('loads the emitted firewall ruleset in the sut', () => {
    expect(rulesetLoaded).toBeUndefined();
  });

  it('median of the pools: one pool a day off does not move it; the clock setter gets now + 1 h, tor kept running', async () => {
    const before = clockCalls().length;
    const conf = config('median', [['p1a.pool.example', 'p1b.pool.example'], ['p2a.pool.example', 'p2b.pool.example'], ['liar.pool.example']]);
    const t0 = Date.now();
    const r = await lab.run(tool(), ['sync', '--config', conf]);
    timings.sync = Math.round(r.ms);
    expect(r.exitCode, r.stderr).toBe(0);
    const c = clockCalls().slice(before);
    expect(c).toHaveLength(1);
    const [flag, ts] = c[0]!.split(' ');
    expect(flag).toBe('--keep-tor');
    const set = Date.parse(ts!.replace('+00:00', 'Z'));
    // pool offsets +1 h, +1 h 5 s, -1 day: the median is +1 h
    expect(set - t0).toBeGreaterThan(HOUR - 3000);
    expect(set - t0).toBeLessThan(HOUR + 4000);
    expect(existsSync(`${lab.dir}/median.done`) && existsSync(`${lab.dir}/median.success`)).toBe(true);
    expect(r.stderr).toMatch(/median offset 3(59\d|60\d)\.\d+ s/);
  });

  it('the fetch went through the SOCKS port by host name, HEAD only, no redirect followed', () => {
    const socks = readFileSync(`${lab.dir}/socks.jsonl`, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { host: string; port: number; atyp: number });
    expect(socks.length).toBeGreaterThanOrEqual(3);
    expect(socks.every((s) => s.atyp === 3 && s.port === 443)).toBe(true);
    const hits = readFileSync(`${lab.dir}/hits.jsonl`, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { name: string; servername: string; request: string });
    for (const h of hits) {
      expect(h.request).toBe(`HEAD / HTTP/1.1\r\nHost: ${h.name}\r\nConnection: close\r\n\r\n`);
      expect(h.servername).toBe(h.name);
    }
  });

  it('no change under the threshold', async () => {
    const before = clockCalls().length;
    const r = await lab.run(tool(), ['sync', '--config', config('zero', [['z1.pool.example'], ['z2.pool.example'], ['z3.pool.example']])]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/clock not changed/);
    expect(clockCalls().length).toBe(before);
    expect(existsSync(`${lab.dir}/zero.success`)).toBe(true);
  });

  it('a pool that fails aborts: exit 10, the clock is not touched, done but no success', async () => {
    const before = clockCalls().length;
    const conf = config('poolfail', [['p1a.pool.example'], ['expired.pool.example', 'wronghost.pool.example', 'gone.pool.example'], ['p2a.pool.example']]);
    const r = await lab.run(tool(), ['sync', '--config', conf]);
    expect(r.exitCode, r.stderr).toBe(EXIT['pool-failed']);
    expect(r.stderr).toMatch(/pool 2 could not be reached/);
    expect(clockCalls().length).toBe(before);
    expect(existsSync(`${lab.dir}/poolfail.done`)).toBe(true);
    expect(existsSync(`${lab.dir}/poolfail.success`)).toBe(false);
  });

  it('certificates: not yet valid accepted; expired and wrong host refused (fetch as htp)', async () => {
    const conf = config('certs', [['notyet.pool.example'], ['expired.pool.example'], ['wronghost.pool.example']]);
    const r = await lab.run(tool(), ['fetch', '--config', conf], { as: htp });
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

  it('fetch refuses to run as root', async () => {
    const r = await lab.run(tool(), ['fetch', '--config', config('root', [['z1.pool.example']])]);
    expect(r.exitCode).toBe(EXIT['invalid-config']);
  });

  it('a user that is not a client of the SocksPort gets nowhere (firewall)', async () => {
    expect(rulesetLoaded).toBeUndefined();
    const apt = policy.userByName('_apt');
    const r = await lab.run(tool(), ['fetch', '--config', config('apt', [['z1.pool.example'], ['z2.pool.example'], ['z3.pool.example']])], { as: { uid: apt.uid, gid: apt.gid } });
    const { pools } = JSON.parse(r.stdout) as { pools: { ok: boolean; failures: { error: string }[] }[] };
    expect(pools.every((p) => !p.ok && /ECONNREFUSED|EPERM/.test(p.failures[0]!.error))).toBe(true);
  });

  describe('waiting for the bootstrap over the ControlPort', () => {
    it('a real tor that cannot bootstrap (DisableNetwork): cookie auth works, exit 11 at the deadline', async () => {
      const data = `${lab.dir}/tor-data`;
      await lab.run('install', ['-d', '-m', '0700', data]);
      const torrc = lab.file('torrc', '');
      const ctl = base.torControl;
      const stop = await lab.start('sut', 'tor', [
        '-f', torrc, '--ignore-missing-torrc', '--DataDirectory', data, '--SocksPort', '0',
        '--ControlPort', `${ctl.address}:${ctl.port}`, '--CookieAuthentication', '1', '--DisableNetwork', '1', '--Log', 'notice stdout',
      ]);
      try {
        const r = await lab.run(tool(), ['wait-bootstrap', '--config', config('wait', [['z1.pool.example']]), '--timeout', '3']);
        expect(r.exitCode, r.stderr).toBe(EXIT['tor-not-bootstrapped']);
        expect(r.stderr).toMatch(/tor bootstrap at \d+ %/); // authenticated and read the phase
      } finally {
        await stop();
      }
    });
    it('exit 0 once tor reports 100 %', async () => {
      const ctl = base.torControl;
      const stop = await lab.start('sut', 'node', [here('./servers/fake-control.mjs'), ctl.address, String(ctl.port), '1500']);
      try {
        const r = await lab.run(tool(), ['wait-bootstrap', '--config', config('wait2', [['z1.pool.example']]), '--timeout', '20']);
        expect(r.exitCode, r.stderr).toBe(0);
        expect(r.stderr).toMatch(/at 50 %[\s\S]*tor has bootstrapped/);
      } finally {
        await stop();
      }
    });
  });
});

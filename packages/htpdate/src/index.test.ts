import { assemble, checkStatic, memoryTree, parsePolicy, parseUnit, unitValues, unitWords, type Policy, type TreeReader } from '@leakless/policy';
import { defaultPolicy, defaultPolicyInput, policyWith } from '@leakless/policy/testing';
import { describe, expect, it } from 'vitest';
import * as htpdate from './index.js';
import { parseTimeConf } from './runtime/config.js';
import { CONFIG_FILE, TOOL_PATHS } from './settings.js';

const policy = defaultPolicy();
const disabled = policyWith((d) => (d.time.preTorCheck.enabled = false));

const noTools = async () => {
  throw new Error('no host tools in these checks');
};

function edited(tree: TreeReader, path: string, f: (s: string | undefined) => string | undefined): TreeReader {
  return {
    ...tree,
    read: (p) => (p === path ? f(tree.read(p)) : tree.read(p)),
    paths: () => [...new Set([...tree.paths(), path])].filter((p) => (p === path ? f(tree.read(p)) !== undefined : true)),
  };
}

async function results(p: Policy, tree?: (t: TreeReader) => TreeReader) {
  const a = assemble(p, [htpdate]);
  const t = memoryTree(a.tree);
  return checkStatic(a, tree ? tree(t) : t, noTools);
}

describe('emit', () => {
  it('ships the tools, the config and both units for the default (consenting) policy', () => {
    const e = htpdate.emit(policy);
    expect(e.files.map((f) => [f.path, f.mode.toString(8)]).sort()).toEqual(
      [
        ['/usr/lib/leakless/time.conf', '644'],
        ['/usr/lib/systemd/system/leakless-htpdate.service', '644'],
        ['/usr/lib/systemd/system/leakless-pretor-time.service', '644'],
        ['/usr/lib/leakless/htpdate', '755'],
        ['/usr/lib/leakless/pretor-time', '755'],
        ['/usr/lib/leakless/set-clock', '755'],
      ].sort(),
    );
    expect(e.units).toEqual(['leakless-htpdate.service', 'leakless-pretor-time.service']);
    expect(e.packages).toEqual(['nodejs', 'ca-certificates']);
    expect(e.users).toEqual([
      { name: 'htp', uid: 116, gid: 124 },
      { name: 'clearnet', uid: 114, gid: 123 },
    ]);
  });
  it('is deterministic', () => {
    expect(JSON.stringify(htpdate.emit(policy).files)).toBe(JSON.stringify(htpdate.emit(policy).files));
  });
  it('takes every value from the policy (config parsed by the tools’ own parser)', () => {
    const c = parseTimeConf(htpdate.emit(policy).files.find((f) => f.path === CONFIG_FILE)!.content);
    const t = policy.document.time;
    expect(c.releaseFloor).toBe(policy.sourceDateEpoch);
    expect(c.pretor).toMatchObject({ urlText: t.preTorCheck.url, expectedBody: 'OK', timeoutSeconds: 10, uid: 114, gid: 123 });
    expect(c.htp).toMatchObject({
      uid: 116,
      gid: 124,
      socks: { address: '127.0.0.1', port: 9062 },
      failureRatio: 0.34,
      minOffsetSeconds: 1,
      timeoutSeconds: 30,
    });
    expect(c.htp.pools).toEqual(t.htpdate.pools);
    expect(c.htp.bootstrapTimeoutSeconds).toBe(600);
    expect(c.torControl).toEqual({ socket: '/run/tor/control', cookie: '/run/tor/control.authcookie', torUid: policy.torUser.uid });
    // five years of 365.25 days after the release: 2030-11-22T06:00:00Z
    expect(c.releaseCeiling).toBe(policy.sourceDateEpoch + 5 * 31_557_600);
  });
  it('follows a changed policy (SocksPort, users, URL, release)', async () => {
    const p = policyWith((d) => {
      d.tor.socksPorts[1].port = 9162;
      d.users.find((u: { name: string }) => u.name === 'htp').uid = 216;
      d.time.preTorCheck.url = 'http://connectivity-check.example:8080/hotspot';
      d.release.sourceDateEpoch = 1800000000;
      d.time.maxYearsAfterRelease = 2;
      d.time.htpdate.bootstrapTimeoutSeconds = 120;
    });
    const c = parseTimeConf(htpdate.emit(p).files.find((f) => f.path === CONFIG_FILE)!.content);
    expect(c.htp.socks.port).toBe(9162);
    expect(c.htp.uid).toBe(216);
    expect(c.pretor!.url).toEqual({ host: 'connectivity-check.example', port: 8080, path: '/hotspot' });
    expect(c.releaseFloor).toBe(1800000000);
    expect(c.releaseCeiling).toBe(1800000000 + 2 * 31_557_600);
    expect(c.htp.bootstrapTimeoutSeconds).toBe(120);
    const h = parseUnit(htpdate.emit(p).files.find((f) => f.path.endsWith('leakless-htpdate.service'))!.content);
    // 120 s bootstrap + 14 hosts × 30 s + 30 s fetch slack + 120 s set-clock + 30 s margin
    expect(unitValues(h, 'Service', 'TimeoutStartSec')).toEqual([String(120 + 14 * 30 + 30 + 120 + 30)]);
  });
  it('without consent ships no pre-Tor tool, unit or settings', () => {
    const e = htpdate.emit(disabled);
    expect(e.files.map((f) => f.path).filter((p) => p.includes('pretor'))).toEqual([]);
    expect(e.files.find((f) => f.path === CONFIG_FILE)!.content).not.toMatch(/^pretor-/m);
    expect(e.users.map((u) => u.name)).toEqual(['htp']);
    const unit = parseUnit(e.files.find((f) => f.path.endsWith('leakless-htpdate.service'))!.content);
    expect(unitWords(unit, 'Unit', 'After')).toEqual(['tor@default.service']);
  });
  it('every config line is preceded by the policy clause it comes from', () => {
    const lines = htpdate
      .emit(policy)
      .files.find((f) => f.path === CONFIG_FILE)!
      .content.split('\n');
    lines.forEach((l, i) => {
      if (/^[a-z-]+=/.test(l)) expect(lines[i - 1]).toMatch(/^# \S/);
    });
  });
  it('units: htpdate after tor, waiting for the bootstrap, with tor’s group for the control socket and cookie; every wait bounded', () => {
    const e = htpdate.emit(policy);
    const h = parseUnit(e.files.find((f) => f.path.endsWith('leakless-htpdate.service'))!.content);
    expect(unitWords(h, 'Unit', 'After')).toEqual(['tor@default.service', 'leakless-pretor-time.service']);
    expect(unitValues(h, 'Service', 'ExecStartPre')).toEqual([`${TOOL_PATHS.htpdate} wait-bootstrap`]);
    expect(unitValues(h, 'Service', 'SupplementaryGroups')).toEqual([String(policy.torUser.gid)]);
    expect(unitValues(h, 'Service', 'IPAddressAllow')).toEqual(['127.0.0.1']);
    const pre = parseUnit(e.files.find((f) => f.path.endsWith('leakless-pretor-time.service'))!.content);
    expect(unitWords(pre, 'Unit', 'Before')).toContain('tor@default.service');
    expect(unitValues(pre, 'Service', 'ExecStart')).toEqual([`${TOOL_PATHS['pretor-time']} sync`]);
    // 10 s request + 5 s child + 120 s set-clock + 30 s margin
    expect(unitValues(pre, 'Service', 'TimeoutStartSec')).toEqual(['165']);
    // 600 s bootstrap + 14 × 30 s + 30 + 120 + 30: never "infinity" (a tor that never bootstraps held the unit forever)
    expect(unitValues(h, 'Service', 'TimeoutStartSec')).toEqual(['1200']);
  });
});

describe('static assertions', () => {
  it('all hold on the emitted tree, for both consent settings', async () => {
    for (const p of [policy, disabled]) {
      const r = await results(p);
      expect(r.filter((x) => !x.ok)).toEqual([]);
      expect(r.length).toBe(7);
    }
  });
  const failing = async (p: Policy, path: string, f: (s: string | undefined) => string | undefined) =>
    (await results(p, (t) => edited(t, path, f))).filter((x) => !x.ok).map((x) => x.id);
  it('catch a config value that drifted from the policy', async () => {
    expect(await failing(policy, CONFIG_FILE, (s) => s!.replace('htp-socks=127.0.0.1:9062', 'htp-socks=127.0.0.1:9063'))).toEqual([
      'htpdate.config-matches-policy',
      'htpdate.principals',
    ]);
  });
  it('catch a unit that keeps an extra capability or lost a sandbox directive', async () => {
    const unit = '/usr/lib/systemd/system/leakless-htpdate.service';
    expect(await failing(policy, unit, (s) => s!.replace('CAP_SYS_TIME', 'CAP_SYS_TIME CAP_NET_ADMIN'))).toEqual(['htpdate.units-hardened']);
    expect(await failing(policy, unit, (s) => s!.replace('ProtectSystem=full', 'ProtectSystem=no'))).toEqual(['htpdate.units-hardened']);
    expect(await failing(policy, unit, (s) => s!.replace(/^ExecStartPre=.*$/m, ''))).toEqual(['htpdate.ordering']);
    expect(await failing(policy, unit, (s) => s!.replace(/^IPAddressDeny=any$/m, ''))).toEqual(['htpdate.units-hardened']);
    expect(await failing(policy, unit, (s) => s!.replace(/^IPAddressAllow=.*$/m, 'IPAddressAllow=any'))).toEqual(['htpdate.units-hardened']);
  });
  it('catch a unit that may wait forever, or less than its tool needs', async () => {
    const unit = '/usr/lib/systemd/system/leakless-htpdate.service';
    const pre = '/usr/lib/systemd/system/leakless-pretor-time.service';
    expect(await failing(policy, unit, (s) => s!.replace(/^TimeoutStartSec=.*$/m, 'TimeoutStartSec=infinity'))).toEqual(['htpdate.waits-bounded']);
    expect(await failing(policy, unit, (s) => s!.replace(/^TimeoutStartSec=.*$/m, 'TimeoutStartSec=600'))).toEqual(['htpdate.waits-bounded']);
    expect(await failing(policy, pre, (s) => s!.replace(/^TimeoutStartSec=.*$/m, ''))).toEqual(['htpdate.waits-bounded']);
  });
  it('catch a tool that is not the committed bundle', async () => {
    expect(await failing(policy, TOOL_PATHS['set-clock'], (s) => s + '\n// patched')).toEqual(['htpdate.tools-bundled']);
  });
  it('catch a pre-Tor tool shipped without consent', async () => {
    expect(await failing(disabled, TOOL_PATHS['pretor-time'], () => '#!/usr/bin/node\n')).toEqual(['htpdate.pretor-only-with-consent']);
  });
  it('count the pre-Tor unit where systemd reads units, not deb-systemd-helper’s state file of the same name (an installed system)', async () => {
    const state = '/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/leakless-pretor-time.service';
    expect(await failing(policy, state, () => '')).toEqual([]);
    expect(await failing(disabled, '/etc/systemd/system/leakless-pretor-time.service', () => '[Service]\n')).toEqual(['htpdate.pretor-only-with-consent']);
  });
  it('catch a pre-Tor request that would run as a non-clearnet user', async () => {
    expect(await failing(policy, CONFIG_FILE, (s) => s!.replace('pretor-uid=114', 'pretor-uid=1000'))).toEqual([
      'htpdate.config-matches-policy',
      'htpdate.principals',
    ]);
  });
});

describe('runtime assertions', () => {
  it('check every installed file and both users', () => {
    const r = htpdate.emit(policy).runtimeAssertions;
    expect(r.filter((a) => a.check.kind === 'file')).toHaveLength(6);
    expect(r.filter((a) => a.check.kind === 'user').map((a) => a.id)).toEqual(['htpdate.user.htp', 'htpdate.user.clearnet']);
  });
});

describe('policy rules for the time tools (bad input never produces output)', () => {
  const issues = async (edit: (d: Record<string, any>) => void) => {
    const doc = defaultPolicyInput();
    edit(doc);
    const r = parsePolicy(doc);
    return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
  };
  it('a pre-Tor URL that is not printable ASCII', async () => {
    expect(await issues((d) => (d.time.preTorCheck.url = 'http://fedoraproject.org/stätic'))).toEqual([
      expect.stringMatching(/^time\.preTorCheck\.url: .*ASCII/),
    ]);
  });
  it('a pre-Tor URL with port 0 or 70000', async () => {
    expect(await issues((d) => (d.time.preTorCheck.url = 'http://a.example:70000/'))).toEqual([expect.stringMatching(/^time\.preTorCheck\.url: port 70000/)]);
  });
  it('htpdate as root', async () => {
    expect(
      await issues((d) => {
        d.time.htpdate.user = 'root';
        d.tor.socksPorts[1].clients.push('root');
      }),
    ).toEqual([expect.stringMatching(/^time\.htpdate\.user: must not be root/)]);
  });
  it('a request timeout out of range', async () => {
    expect((await issues((d) => (d.time.htpdate.requestTimeoutSeconds = 0))).join()).toMatch(/time\.htpdate\.requestTimeoutSeconds/);
  });
  it('a bootstrap wait or a ceiling out of range', async () => {
    expect((await issues((d) => (d.time.htpdate.bootstrapTimeoutSeconds = 0))).join()).toMatch(/time\.htpdate\.bootstrapTimeoutSeconds/);
    expect((await issues((d) => (d.time.maxYearsAfterRelease = 0))).join()).toMatch(/time\.maxYearsAfterRelease/);
    expect((await issues((d) => (d.time.maxYearsAfterRelease = 7975))).join()).toMatch(/time\.maxYearsAfterRelease/);
  });
});

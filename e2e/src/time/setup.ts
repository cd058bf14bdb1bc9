// The time tools' lab, on the one lab topology (e2e/src/lab): the emitted
// tools and time.conf in the lab's directory, a recording clock setter (the
// host clock is never touched), the emitted firewall loaded in the sut, and
// the servers the tools talk to on documentation addresses in the lab's
// Internet, and a run directory for tor's control socket made like Debian's
// /run/tor (only the tor user writes it). The pre-Tor check, htpdate and the
// time attacks of the adversary suite all start from here.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as firewall from '@leakless/firewall';
import * as htpdate from '@leakless/htpdate';
import { CONFIG_FILE, confLines, parseTimeConf, type TimeConfig, TOOL_PATHS } from '@leakless/htpdate';
import { type Policy, readPolicyFile } from '@leakless/policy';
import { addInternetHosts, buildLab, type Ids, type Lab, labFile, type Proc, type Ran, run, startServer, teardownLab } from '../lab/index.js';
import { oldConf, oldTool } from './before-hardening.js';
import { makeTorRun, type TorRun } from './tor-run.js';

/** The DNS server the pre-Tor check's resolv.conf names. */
export const DNS = '203.0.113.153';
/** Scenario hosts of the pre-Tor check. */
export const HTTP = {
  online: '198.51.100.110',
  redirect: '198.51.100.111',
  'portal-body': '198.51.100.112',
  silent: '198.51.100.113',
  'no-date': '198.51.100.114',
  'bad-date': '198.51.100.115',
  past: '198.51.100.116',
  closed: '198.51.100.117',
  future: '198.51.100.118',
} as const;
const POOL_HOSTS = 30;
/** Addresses for htpdate's pool hosts. */
export const poolAddress = (i: number): string => {
  if (i < 0 || i >= POOL_HOSTS) throw new Error(`time lab: pool host ${i} out of 0..${POOL_HOSTS - 1}`);
  return `203.0.113.${120 + i}`;
};

/** The servers the time tools talk to (node helpers, staged by the lab; each prints "ready"). */
export const SERVERS = {
  pretor: new URL('./servers/pretor-servers.mjs', import.meta.url),
  pool: new URL('./servers/pool-servers.mjs', import.meta.url),
  socks5: new URL('./servers/socks5-server.mjs', import.meta.url),
  fakeControl: new URL('./servers/fake-control.mjs', import.meta.url),
} as const;

export interface TimeLab {
  readonly lab: Lab;
  readonly policy: Policy;
  /** The lab's directory (tools, configs, certificates, server logs). */
  readonly dir: string;
  /** The emitted time.conf with the recording clock setter and the lab's tor run directory; a suite may replace parts (its CA). */
  base: TimeConfig;
  /**
   * The lab's stand-in for /run/tor: a directory under /run (root's, 0755)
   * owned by the tor user, 02755, as Debian's tor@default makes it; nothing
   * listens there until a suite starts tor or a stand-in as the tor user.
   */
  readonly torRun: string;
  /** Why the emitted firewall ruleset could not be loaded in the sut, or undefined. */
  readonly rulesetLoaded: string | undefined;
  tool(name: keyof typeof TOOL_PATHS): string;
  /** The same tool as shipped before its hardening (the planted weakness of the time attacks). */
  oldTool(name: 'htpdate' | 'pretor-time'): string;
  /** A time.conf the old tools read (their keys only), from `c`. */
  oldConf(name: string, c: TimeConfig): string;
  /** Every call the clock setter got, oldest first. */
  clockCalls(): string[];
  file(name: string, content: string | Buffer, mode?: number): string;
  /** A time.conf written from `c`. */
  conf(name: string, c: TimeConfig): string;
  ids(userName: string): Ids;
  /** Run in the sut, optionally as a uid, optionally with `resolv` bound over /etc/resolv.conf. */
  run(cmd: string, args: readonly string[], opts?: { as?: Ids; resolv?: string; timeout?: number; input?: string }): Promise<Ran>;
  /** Load the emitted ruleset again (after an anti-test removed it). */
  loadRuleset(): Promise<Ran>;
  /** A server helper in the lab's Internet (or the sut), with its spec as a JSON file; resolves once it prints "ready". */
  startServer(where: 'inet' | 'sut', server: URL, args: readonly string[], as?: Ids): Promise<Proc>;
  teardown(): Promise<void>;
}

const POLICY_FILE = fileURLToPath(new URL('../../../image-config/default.yaml', import.meta.url));

export async function startTimeLab(): Promise<TimeLab> {
  const r = await readPolicyFile(POLICY_FILE);
  if (!r.ok) throw new Error('default policy invalid');
  const policy = r.policy;
  const lab = await buildLab(policy);
  let torRun: TorRun | undefined;
  try {
    await addInternetHosts(lab, [...Object.values(HTTP), DNS, ...Array.from({ length: POOL_HOSTS }, (_, i) => poolAddress(i))]);
    const e = htpdate.emit(policy);
    for (const [name, path] of Object.entries(TOOL_PATHS)) {
      const f = e.files.find((x) => x.path === path);
      if (f) labFile(lab, `bin/${name}`, f.content, 0o755);
    }
    const calls = `${lab.dir}/set-clock.calls`;
    const setClock = labFile(lab, 'fake-set-clock', `#!/bin/sh\nprintf '%s\\n' "$*" >> ${calls}\n`, 0o755);
    const ruleset = firewall.emit(policy).files.find((f) => f.path === firewall.RULESET_PATH);
    const inSut = (cmd: string, args: readonly string[], opts: { as?: Ids; resolv?: string; timeout?: number; input?: string } = {}) =>
      run(lab, 'sut', cmd, args, {
        ...(opts.as ? { as: opts.as } : {}),
        ...(opts.resolv ? { binds: [{ source: opts.resolv, target: '/etc/resolv.conf' }] } : {}),
        timeoutMs: opts.timeout ?? 60_000,
        ...(opts.input !== undefined ? { input: opts.input } : {}),
      });
    const loadRuleset = () => inSut('nft', ['-f', '-'], { input: ruleset?.content ?? '' });
    let rulesetLoaded: string | undefined;
    if (!ruleset) rulesetLoaded = `@leakless/firewall emits no ${firewall.RULESET_PATH}`;
    else {
      const l = await loadRuleset();
      if (l.exitCode !== 0) rulesetLoaded = `nft -f failed: ${l.stderr.trim()}`;
    }
    torRun = makeTorRun(policy);
    const emitted = parseTimeConf(e.files.find((f) => f.path === CONFIG_FILE)!.content);
    const t: TimeLab = {
      lab,
      policy,
      dir: lab.dir,
      torRun: torRun.dir,
      base: { ...emitted, setClock, torControl: { ...emitted.torControl, socket: torRun.socket, cookie: torRun.cookie } },
      rulesetLoaded,
      tool: (name) => `${lab.dir}/bin/${name}`,
      oldTool: (name) => labFile(lab, `old-bin/${name}`, oldTool(name), 0o755),
      oldConf: (name, c) => labFile(lab, `${name}.old.conf`, oldConf(c, policy.controlPort)),
      clockCalls: () => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n').filter(Boolean) : []),
      file: (name, content, mode = 0o644) => labFile(lab, name, content, mode),
      conf: (name, c) =>
        labFile(
          lab,
          `${name}.conf`,
          confLines(c)
            .map((l) => `${l.key}=${l.value}\n`)
            .join(''),
        ),
      ids: (name) => {
        const u = policy.userByName(name);
        return { uid: u.uid, gid: u.gid };
      },
      run: inSut,
      loadRuleset,
      startServer: (where, server, args, as) =>
        startServer(lab, where, { helper: server, args }, { ...(as ? { as } : {}), ready: /^ready$/, readyTimeoutMs: 15_000 }),
      teardown: async () => {
        torRun?.remove();
        await teardownLab(lab);
      },
    };
    return t;
  } catch (e) {
    torRun?.remove();
    await teardownLab(lab);
    throw e;
  }
}

// htpdate: the clock from HTTPS Date headers fetched through Tor (policy time.htpdate).
//   htpdate wait-bootstrap [--config FILE] [--timeout SECONDS]  until tor reports 100 %, at most htp-bootstrap-timeout (ExecStartPre)
//   htpdate fetch [--config FILE]   as the htp user: query every pool, print the results as one JSON line
//   htpdate sync  [--config FILE]   as root: run `fetch` as htp, take the median, call the clock-setting helper
// Exit codes: runtime/exit-codes.ts (8 bad configuration, 9 clock not set, 10 a pool failed, 11 tor not bootstrapped, 13 date too far ahead).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { ToolFailure, type Outcome } from '../runtime/exit-codes.js';
import { dateOffset, decide, queryPool, type PoolResult } from '../runtime/htp.js';
import { LIMITS, fetchSeconds } from '../runtime/limits.js';
import { loadConfig, log, parseArgv, runMain, runProgram, runSelfAs, uid, type Parsed } from '../runtime/proc.js';
import { formatUtcTimestamp } from '../runtime/timefmt.js';
import { parsePemBundle } from '../runtime/tls-verify.js';
import { ControlConnection, readCookie, waitForBootstrap } from '../runtime/tor-control.js';

const TOOL = 'htpdate';
const USAGE = 'usage: htpdate wait-bootstrap|fetch|sync [--config FILE] [--timeout SECONDS]';

async function waitBootstrap(args: Parsed): Promise<Outcome> {
  const cfg = loadConfig(args.config);
  const t = args.flags.get('--timeout');
  if (t !== undefined && (typeof t !== 'string' || !/^\d{1,6}$/.test(t))) throw new ToolFailure('invalid-config', '--timeout takes whole seconds');
  const seconds = t === undefined ? cfg.htp.bootstrapTimeoutSeconds : Number(t);
  try {
    await waitForBootstrap({
      deadlineMs: Date.now() + seconds * 1000,
      open: (deadlineMs) => ControlConnection.open(cfg.torControl, deadlineMs),
      cookie: () => readCookie(cfg.torControl),
      log: (l) => log(TOOL, l),
    });
  } catch (e) {
    throw new ToolFailure('tor-not-bootstrapped', (e as Error).message);
  }
  log(TOOL, 'tor has bootstrapped');
  return 'ok';
}

async function fetch(args: Parsed): Promise<Outcome> {
  if (uid() === 0) throw new ToolFailure('invalid-config', 'fetch talks to the network and must not run as root (sync runs it as the htp user)');
  const cfg = loadConfig(args.config);
  const h = cfg.htp;
  let caPem: string;
  try {
    caPem = readFileSync(h.caFile, 'utf8');
  } catch (e) {
    throw new ToolFailure('invalid-config', `cannot read ${h.caFile}: ${(e as NodeJS.ErrnoException).code}`);
  }
  const anchors = parsePemBundle(caPem);
  if (anchors.length === 0) throw new ToolFailure('invalid-config', `${h.caFile} holds no certificate`);
  const settings = {
    socks: h.socks,
    anchors,
    caPem,
    timeoutMs: h.timeoutSeconds * 1000,
    bounds: { floorMs: cfg.releaseFloor * 1000, ceilingMs: cfg.releaseCeiling * 1000 },
    log: (l: string) => log(TOOL, l),
  };
  // The pools run side by side (Tails: one thread per pool).
  const pools = await Promise.all(h.pools.map((hosts) => queryPool(hosts, h.failureRatio, (host) => dateOffset(host, settings))));
  pools.forEach((p, i) => {
    for (const f of p.failures) log(TOOL, `pool ${i + 1}: ${f.host}: ${f.error}`);
    if (p.ok) log(TOOL, `pool ${i + 1}: ${p.host}: offset ${(p.offsetMs / 1000).toFixed(3)} s`);
  });
  process.stdout.write(`${JSON.stringify({ pools })}\n`);
  return 'ok';
}

/** The unprivileged half's answer, checked field by field before root acts on it. */
function readPools(stdout: string, pools: readonly (readonly string[])[]): PoolResult[] {
  let data: unknown;
  try {
    data = JSON.parse(stdout);
  } catch {
    throw new ToolFailure('pool-failed', 'fetch printed no valid JSON');
  }
  const list = (data as { pools?: unknown }).pools;
  if (!Array.isArray(list) || list.length !== pools.length) throw new ToolFailure('pool-failed', 'fetch returned the wrong number of pools');
  return list.map((r: unknown, i): PoolResult => {
    const x = r as Record<string, unknown>;
    const failures = Array.isArray(x.failures)
      ? x.failures.map((f) => ({ host: String((f as { host?: unknown }).host), error: String((f as { error?: unknown }).error) }))
      : [];
    if (x.ok === true && typeof x.offsetMs === 'number' && Number.isFinite(x.offsetMs) && typeof x.host === 'string' && pools[i]!.includes(x.host))
      return { ok: true, host: x.host, offsetMs: x.offsetMs, failures };
    if (x.ok === false) return { ok: false, failures };
    throw new ToolFailure('pool-failed', `fetch returned a malformed result for pool ${i + 1}`);
  });
}

async function sync(args: Parsed): Promise<Outcome> {
  if (uid() !== 0) throw new ToolFailure('invalid-config', 'sync sets the clock and must run as root');
  const cfg = loadConfig(args.config);
  const h = cfg.htp;
  rmSync(h.doneFile, { force: true });
  rmSync(h.successFile, { force: true });
  const finish = (ok: boolean): void => {
    writeFileSync(h.doneFile, '');
    if (ok) writeFileSync(h.successFile, '');
  };
  try {
    const child = await runSelfAs({ uid: h.uid, gid: h.gid }, ['fetch', '--config', args.config], {
      timeoutMs: fetchSeconds(h) * 1000,
      maxStdout: 1 << 20,
    });
    if (child.code !== 0)
      throw new ToolFailure(child.code === 8 ? 'invalid-config' : 'pool-failed', `fetch ended with ${child.signal ?? `exit ${child.code}`}`);
    const d = decide(readPools(child.stdout, h.pools), h.minOffsetSeconds * 1000);
    if (d.kind === 'pool-failed')
      throw new ToolFailure('pool-failed', `pool ${d.pool} could not be reached (${d.failures.length} failures); clock not changed`);
    const s = (d.medianMs / 1000).toFixed(3);
    if (d.kind === 'no-change') {
      log(TOOL, `median offset ${s} s is under ${h.minOffsetSeconds} s: clock not changed`);
      finish(true);
      return 'ok';
    }
    const targetMs = Date.now() + d.medianMs + 500;
    const target = formatUtcTimestamp(targetMs);
    if (targetMs < cfg.releaseFloor * 1000) throw new ToolFailure('date-in-past', `median time ${target} is before this release`);
    if (targetMs > cfg.releaseCeiling * 1000) throw new ToolFailure('date-in-future', `median time ${target} is after the latest time this release accepts`);
    log(TOOL, `median offset ${s} s: setting the clock to ${target}`);
    const set = await runProgram(cfg.setClock, ['--keep-tor', target], { timeoutMs: LIMITS.setClockSeconds * 1000, maxStdout: 4096 });
    if (set.code !== 0) throw new ToolFailure('clock-not-set', `${cfg.setClock} ended with ${set.signal ?? `exit ${set.code}`}`);
    finish(true);
    return 'ok';
  } catch (e) {
    finish(false);
    throw e;
  }
}

runMain(TOOL, async () => {
  const args = parseArgv(process.argv.slice(2), ['--timeout'], []);
  if (args.positionals.length > 0) throw new ToolFailure('invalid-config', USAGE);
  if (args.flags.has('--timeout') && args.command !== 'wait-bootstrap') throw new ToolFailure('invalid-config', USAGE);
  if (args.command === 'wait-bootstrap') return waitBootstrap(args);
  if (args.command === 'fetch') return fetch(args);
  if (args.command === 'sync') return sync(args);
  throw new ToolFailure('invalid-config', USAGE);
});

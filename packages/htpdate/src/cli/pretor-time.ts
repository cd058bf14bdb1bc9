// pretor-time: the consented pre-Tor time check (policy time.preTorCheck).
//   pretor-time check [--config FILE]  as the clearnet user: print the network time, or exit with the outcome's code
//   pretor-time sync  [--config FILE]  as root: run `check` as the clearnet user, then the clock-setting helper
// Exit codes: runtime/exit-codes.ts (Tails' 2–7, 8 bad configuration, 9 clock not set).
import { lookup } from 'node:dns/promises';
import { connect } from 'node:net';
import { ToolFailure, type Outcome } from '../runtime/exit-codes.js';
import { LIMITS } from '../runtime/limits.js';
import { preTorCheck } from '../runtime/pretor.js';
import { loadConfig, log, outcomeOfCode, parseArgv, runMain, runProgram, runSelfAs, uid, type Parsed } from '../runtime/proc.js';
import { formatUtcTimestamp, parseUtcTimestamp } from '../runtime/timefmt.js';

const TOOL = 'pretor-time';
const USAGE = 'usage: pretor-time check|sync [--config FILE]';

async function check(args: Parsed): Promise<Outcome> {
  // The request must leave as the clearnet user, the only one the firewall lets out (besides tor).
  if (uid() === 0) throw new ToolFailure('invalid-config', 'check talks to the network and must not run as root (sync runs it as the clearnet user)');
  const cfg = loadConfig(args.config);
  if (!cfg.pretor) throw new ToolFailure('invalid-config', `${args.config}: the pre-Tor check is not configured (time.preTorCheck.enabled is false)`);
  const p = cfg.pretor;
  const started = Date.now();
  const r = await preTorCheck(
    {
      url: p.url,
      expectedBody: p.expectedBody,
      timeoutMs: p.timeoutSeconds * 1000,
      releaseFloorMs: cfg.releaseFloor * 1000,
      releaseCeilingMs: cfg.releaseCeiling * 1000,
    },
    {
      // getaddrinfo with AF_INET, as curl does for NetworkManager's IPv4 check
      lookup4: async (host) => (await lookup(host, { family: 4 })).address,
      connect: (address, port) => connect({ host: address, port, family: 4 }),
    },
  );
  log(TOOL, `online via ${r.address}; network time ${r.timestamp} (${Date.now() - started} ms)`);
  process.stdout.write(`${r.timestamp}\n`);
  return 'ok';
}

async function sync(args: Parsed): Promise<Outcome> {
  if (uid() !== 0) throw new ToolFailure('invalid-config', 'sync sets the clock and must run as root');
  const cfg = loadConfig(args.config);
  if (!cfg.pretor) throw new ToolFailure('invalid-config', `${args.config}: the pre-Tor check is not configured (time.preTorCheck.enabled is false)`);
  const p = cfg.pretor;
  const child = await runSelfAs({ uid: p.uid, gid: p.gid }, ['check', '--config', args.config], {
    timeoutMs: (p.timeoutSeconds + LIMITS.childStartSeconds) * 1000,
    maxStdout: 256,
  });
  if (child.timedOut) throw new ToolFailure('timeout', 'the check did not finish in time');
  if (child.code !== 0) {
    const o = outcomeOfCode(child.code);
    if (o === undefined || o === 'ok') throw new ToolFailure('http-failure', `the check ended with ${child.signal ?? `exit ${child.code}`}`);
    // the child already said why on stderr; pass its outcome on unchanged
    return o;
  }
  // The clearnet half is not trusted with more than one well-formed line.
  const m = /^([^\n]{1,40})\n$/.exec(child.stdout);
  const epoch = m ? parseUtcTimestamp(m[1]!) : undefined;
  if (epoch === undefined) throw new ToolFailure('malformed-date', `the check printed ${JSON.stringify(child.stdout.slice(0, 60))}`);
  if (epoch < cfg.releaseFloor) throw new ToolFailure('date-in-past', `${m![1]} is before this release`);
  if (epoch > cfg.releaseCeiling) throw new ToolFailure('date-in-future', `${m![1]} is after the latest time this release accepts`);
  const set = await runProgram(cfg.setClock, [formatUtcTimestamp(epoch * 1000)], { timeoutMs: LIMITS.setClockSeconds * 1000, maxStdout: 4096 });
  if (set.code !== 0) throw new ToolFailure('clock-not-set', `${cfg.setClock} ended with ${set.signal ?? `exit ${set.code}`}`);
  return 'ok';
}

runMain(TOOL, async () => {
  const args = parseArgv(process.argv.slice(2), [], []);
  if (args.positionals.length > 0) throw new ToolFailure('invalid-config', USAGE);
  if (args.command === 'check') return check(args);
  if (args.command === 'sync') return sync(args);
  throw new ToolFailure('invalid-config', USAGE);
});

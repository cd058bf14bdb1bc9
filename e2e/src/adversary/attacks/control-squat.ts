// A hostile local program where root's htpdate dials tor's control endpoint,
// while tor is down (docs/threat-model.md#controlport):
//   control-port-squat: it listens on the policy's TCP ControlPort, names a
//     root-only file as the cookie in its PROTOCOLINFO reply and reports a
//     finished bootstrap; it also tries to listen at the control socket path.
//     htpdate's wait-bootstrap runs as root (its unit's ExecStartPre).
//   control-never-answers: the same place, but every connection is accepted
//     and never answered (and tor itself is wedged the same way on its
//     socket); wait-bootstrap runs as its unit runs it, with no --timeout.
// The tool and time.conf come from the tree the run plays against: the
// emitted ones, or those shipped before SAFECOOKIE (the planted weakness,
// kept verbatim in e2e/src/time/fixtures/before-hardening/). The firewall is
// not loaded in either run: its own refusal of squatted answers
// (docs/threat-model.md#flow-ownership) is played by the squatting attacks;
// these prove htpdate does not depend on it.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { CONFIG_FILE, TOOL_PATHS } from '@leakless/htpdate';
import { labFile, type Ran, run, startServer } from '../../lab/index.js';
import { makeTorRun, setConfKeys } from '../../time/tor-run.js';
import type { Attack, AttackEnv, AttackResult, Weakness } from '../framework.js';
import { overlayTree } from '../framework.js';

const FIXTURES = new URL('../../time/fixtures/before-hardening/', import.meta.url);
const SQUATTER = new URL('../../time/servers/control-squatter.mjs', import.meta.url);
const FAKE_CONTROL = new URL('../../time/servers/fake-control.mjs', import.meta.url);
/** tor.controlPort's exit code for "not bootstrapped" in both the old and the new tool. */
const NOT_BOOTSTRAPPED = 11;

const beforeSafecookie: Weakness = {
  id: 'htpdate-before-safecookie',
  what: 'htpdate and time.conf as shipped before this fix: TCP ControlPort, the cookie path from the server’s PROTOCOLINFO, plain COOKIE, a bootstrap wait without end',
  plant: (tree) =>
    overlayTree(tree, {
      [TOOL_PATHS.htpdate]: readFileSync(new URL('htpdate.cjs', FIXTURES), 'utf8'),
      [CONFIG_FILE]: readFileSync(new URL('time.conf', FIXTURES), 'utf8'),
    }),
};

interface Staged {
  readonly tool: string;
  readonly conf: string;
  readonly log: string;
  readonly socket: string;
  readonly cookie: string;
  readonly remove: () => void;
}

/** The tree's htpdate and time.conf in the lab, pointed at a tor run directory where nothing listens yet. */
function stage(env: AttackEnv, bootstrapSeconds: number): Staged {
  const tool = env.tree.read(TOOL_PATHS.htpdate);
  const conf = env.tree.read(CONFIG_FILE);
  if (tool === undefined || conf === undefined) throw new Error(`the tree has no ${TOOL_PATHS.htpdate} or ${CONFIG_FILE}`);
  const torRun = makeTorRun(env.policy);
  return {
    tool: labFile(env.lab, 'bin/htpdate', tool, 0o755),
    conf: labFile(
      env.lab,
      'time.conf',
      setConfKeys(conf, { 'tor-control-socket': torRun.socket, 'tor-control-cookie': torRun.cookie, 'htp-bootstrap-timeout': String(bootstrapSeconds) }),
    ),
    log: labFile(env.lab, 'squatter.jsonl', '', 0o666),
    socket: torRun.socket,
    cookie: torRun.cookie,
    remove: torRun.remove,
  };
}

type Logged = { event: string; via?: string; line?: string; result?: string };
const logged = (path: string): Logged[] =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Logged)
    : [];

async function squat(env: AttackEnv, s: Staged, mode: 'lie' | 'stall', cookieFile: string): Promise<string> {
  const cp = env.policy.controlPort;
  const spec = labFile(env.lab, 'squatter.json', JSON.stringify({ tcp: { address: cp.address, port: cp.port }, unix: s.socket, log: s.log, mode, cookieFile }));
  await startServer(
    env.lab,
    'sut',
    { helper: SQUATTER, args: [spec] },
    { as: { uid: env.attacker.uid, gid: env.attacker.gid }, ready: /^ready$/, readyTimeoutMs: 15_000 },
  );
  return logged(s.log).find((e) => e.event === 'unix')?.result ?? 'not tried';
}

/** The harness stops a victim after this long: with a 10 s bootstrap limit, anything still waiting then has no end. */
const VICTIM_LIMIT_MS = 25_000;
const stopped = (r: Ran): boolean => r.ms >= VICTIM_LIMIT_MS - 1000;
const exitOf = (r: Ran): string => (stopped(r) ? `still waiting after ${Math.round(r.ms / 1000)} s, stopped` : `exit ${r.exitCode}`);

const squatAttack: Attack = {
  id: 'control-port-squat',
  title:
    'while tor is down, listen on the ControlPort (and try the control socket path), name a root-only 32-byte file as the cookie and report "bootstrapped" to root’s htpdate wait-bootstrap',
  refusal:
    'htpdate dials only tor’s unix control socket, in a directory only the tor user can write (so the attacker cannot listen there), reads the cookie from time.conf and authenticates with SAFECOOKIE, which needs the server to prove it knows the cookie first (docs/threat-model.md#controlport): nothing is read for the squatter, nothing is sent, the wait fails with exit 11',
  weakness: beforeSafecookie,
  timeoutMs: 90_000,
  async run(env): Promise<AttackResult> {
    const s = stage(env, 10);
    try {
      // the root-only file the squatter wants: 32 bytes, like a cookie
      const secret = randomBytes(32);
      const secretFile = labFile(env.lab, `root-only-${env.token}`, secret, 0o600);
      const unix = await squat(env, s, 'lie', secretFile);
      // control: the squatter answers on the ControlPort (so silence below means refusal, not a dead squatter)
      const cp = env.policy.controlPort;
      const probe = await run(env.lab, 'sut', 'bash', ['-c', `exec 3<>/dev/tcp/${cp.address}/${cp.port}; printf 'PROTOCOLINFO 1\\r\\n' >&3; head -c 40 <&3`], {
        timeoutMs: 10_000,
      });
      if (!/250-PROTOCOLINFO/.test(probe.stdout))
        return { outcome: 'inconclusive', evidence: `the squatter does not answer on ${cp.port}: ${probe.stderr.trim()}` };
      env.progress(`squatter as uid ${env.attacker.uid} on ${cp.address}:${cp.port}; control socket path: ${unix}`);
      const victim = await run(env.lab, 'sut', s.tool, ['wait-bootstrap', '--config', s.conf, '--timeout', '6'], { timeoutMs: VICTIM_LIMIT_MS });
      const lines = logged(s.log).filter((e) => e.event === 'line' && e.line !== 'PROTOCOLINFO 1');
      const leaked = lines.some((e) => e.line?.includes(secret.toString('hex')));
      const believed = victim.exitCode === 0 && !stopped(victim);
      const facts = { controlSocketSquat: unix, victim: exitOf(victim), squatterGot: lines.map((e) => e.line?.slice(0, 30)) };
      if (leaked || believed)
        return {
          outcome: 'succeeded',
          evidence: `${leaked ? 'root sent the bytes of the root-only file (AUTHENTICATE <its hex>)' : ''}${leaked && believed ? '; ' : ''}${believed ? 'wait-bootstrap believed the fake "100 %" (exit 0)' : ''}`,
          facts,
        };
      if (unix === 'listening')
        return {
          outcome: 'inconclusive',
          evidence: 'the attacker could listen at the control socket path (the lab’s tor run directory is not tor’s alone)',
          facts,
        };
      if (stopped(victim) || victim.exitCode !== NOT_BOOTSTRAPPED)
        return { outcome: 'inconclusive', evidence: `wait-bootstrap ended with ${exitOf(victim)}: ${victim.stderr.trim().slice(-200)}`, facts };
      return {
        outcome: 'refused',
        evidence: `no byte of the root-only file reached the squatter (it got: ${lines.length ? lines.map((e) => e.line?.split(' ')[0]).join(', ') : 'no command'}), the control socket path refused it (${unix}), wait-bootstrap exit 11: ${victim.stderr.trim().split('\n').pop()}`,
        facts,
      };
    } finally {
      s.remove();
    }
  },
};

const stallAttack: Attack = {
  id: 'control-never-answers',
  title:
    'accept root’s htpdate on the ControlPort and never answer (tor wedged the same way on its socket), against wait-bootstrap run as its unit runs it (no --timeout)',
  refusal:
    'every control reply has a deadline and the whole wait ends at time.htpdate.bootstrapTimeoutSeconds (10 s here) with exit 11; the unit’s TimeoutStartSec is finite and above it (htpdate.waits-bounded, docs/threat-model.md#time-units)',
  weakness: beforeSafecookie,
  timeoutMs: 90_000,
  async run(env): Promise<AttackResult> {
    const s = stage(env, 10);
    try {
      await squat(env, s, 'stall', '/nonexistent');
      // tor itself wedged: accepts on its socket and never answers (the tor user, in tor's directory)
      const tor = env.policy.torUser;
      await startServer(
        env.lab,
        'sut',
        { helper: FAKE_CONTROL, args: [s.socket, s.cookie, '0', 'stall'] },
        { as: { uid: tor.uid, gid: tor.gid }, ready: /^ready$/ },
      );
      const victim = await run(env.lab, 'sut', s.tool, ['wait-bootstrap', '--config', s.conf], { timeoutMs: VICTIM_LIMIT_MS });
      const ms = Math.round(victim.ms);
      const reached = logged(s.log).some((e) => e.event === 'connect');
      const facts = { victim: exitOf(victim), ms, squatterReached: reached };
      if (stopped(victim))
        return { outcome: 'succeeded', evidence: `wait-bootstrap was ${exitOf(victim)} (no deadline: its unit would stay "activating" for ever)`, facts };
      if (victim.exitCode === NOT_BOOTSTRAPPED && /no reply to PROTOCOLINFO/.test(victim.stderr))
        return { outcome: 'refused', evidence: `exit 11 after ${(ms / 1000).toFixed(1)} s: ${victim.stderr.trim().split('\n').pop()}`, facts };
      return {
        outcome: 'inconclusive',
        evidence: `wait-bootstrap ended with ${exitOf(victim)} after ${ms} ms without meeting the stalled server: ${victim.stderr.trim().slice(-200)}`,
        facts,
      };
    } finally {
      s.remove();
    }
  },
};

export const attacks: Attack[] = [squatAttack, stallAttack];

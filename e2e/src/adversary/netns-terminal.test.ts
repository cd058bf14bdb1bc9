// Terminal injection from a namespace to root (docs/threat-model.md#namespace-terminal).
// An administrator starts an application from a root shell on a real
// terminal (a pty, as `script` or a terminal emulator gives); the application
// is hostile. It types a command into whatever terminal it has (TIOCSTI,
// which bookworm's 6.1 kernel cannot switch off) and reads every descriptor
// it was given. Against the emitted launcher both must fail; against the old
// launcher (the caller's session and terminal, its descriptors inherited)
// the typed command runs as root once the launcher returns, and the
// descriptor a root shell held open is read: the anti-test.
import { existsSync, readFileSync } from 'node:fs';
import * as netns from '@leakless/netns';
import { defaultPolicy } from '@leakless/policy/testing';
import { type Missing, skipUnless } from '@leakless/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Lab, labFile, labNeeds, PYTHON, run, runHelper, teardownLab } from '../lab/index.js';
import { AttackLog } from '../netns/attacks.js';
import { createLab, type Installed, installNetns, token, visibleHelper } from '../netns/harness.js';

const policy = defaultPolicy();
const emitted = netns.emit(policy);
const DOC = 'docs/threat-model.md#namespace-terminal';

/** bookworm's kernel always allows TIOCSTI; a host that forbids it (dev.tty.legacy_tiocsti = 0) cannot play the attack. */
function tiocstiAllowed(): Missing {
  const p = '/proc/sys/dev/tty/legacy_tiocsti';
  if (existsSync(p) && readFileSync(p, 'utf8').trim() === '0')
    return 'dev.tty.legacy_tiocsti is 0 on this host: TIOCSTI cannot be played as on bookworm’s 6.1 kernel';
  return undefined;
}

const skip = skipUnless('the namespace terminal attacks', ...labNeeds('python3', 'setsid'), tiocstiAllowed());

interface Seen {
  /** The typed command ran as root: the marker holds root's uid. */
  readonly injectedAsRoot: boolean;
  readonly result: {
    session: { pid: number; sid: number; ctty: string };
    tiocsti: { fd: number; target: string; ok: boolean; error?: string }[];
    inherited: { fd: number; target: string; data: string }[];
    control: { ok: boolean; error?: string };
  };
  readonly secretRead: boolean;
}

describe.skipIf(skip)('adversary: terminal injection and inherited descriptors from a namespace', () => {
  const log = new AttackLog('netns-terminal');
  let lab: Lab;
  let exe: Installed;
  let attack: string;

  beforeAll(async () => {
    lab = await createLab(policy);
    exe = await installNetns(lab, policy, emitted);
    const r = await run(lab, 'sut', exe.script, ['start']);
    if (r.exitCode !== 0) throw new Error(`netns-setup start: ${r.stderr}`);
    attack = await visibleHelper(lab, new URL('../netns/py/tty_attack.py', import.meta.url));
  });
  afterAll(async () => {
    if (lab) await teardownLab(lab);
    log.write();
  });

  /** From a root shell on a fresh pty: hold a root-only file open on fd 7, run the launcher, let the shell read what follows. */
  async function play(launcher: string, ns: string): Promise<Seen> {
    const t = token(`tty-${ns}`);
    const marker = `${lab.dir}/injected-${t}`;
    const secret = labFile(lab, `secret-${t}`, `root-only ${t}\n`, 0o600);
    const payload = `id -u > ${marker}\n`;
    const argv = [launcher, ns, '--', PYTHON, '-I', attack, JSON.stringify({ payload })];
    const r = await runHelper(lab, 'sut', new URL('../netns/py/root_terminal.py', import.meta.url), [JSON.stringify({ argv, fd7: secret, timeout: 20 })], {
      timeoutMs: 40_000,
    });
    if (r.exitCode !== 0) throw new Error(`root terminal: ${r.stderr}`);
    const { transcript, finished } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { transcript: string; finished: boolean };
    const line = /ATTACK-RESULT (\{.*\})/.exec(transcript.replace(/\r/g, ''));
    if (!finished || !line) throw new Error(`inconclusive: the attack did not report (finished ${finished}): ${transcript.slice(-800)}`);
    const result = JSON.parse(line[1]!) as Seen['result'];
    const m = await run(lab, 'sut', 'cat', [marker]);
    return { injectedAsRoot: m.exitCode === 0 && m.stdout.trim() === '0', result, secretRead: result.inherited.some((i) => i.data.includes(t)) };
  }

  for (const ns of policy.namespaces) {
    it(`${ns.name}: the application types nothing into the root shell that started it and reads none of its descriptors`, async () => {
      const seen = await play(exe.launcher, ns.name);
      // positive control: TIOCSTI works on a terminal the program owns, so the refusals are the launcher's
      expect(seen.result.control, 'control: TIOCSTI on its own pty').toMatchObject({ ok: true });
      const typed = seen.result.tiocsti.filter((x) => x.ok);
      log.add({
        attack: 'tiocsti-into-caller',
        principal: ns.name,
        against: 'emitted',
        outcome: seen.injectedAsRoot || typed.length ? 'succeeded' : 'refused',
        detail: `${seen.result.tiocsti.length} attempts (${seen.result.tiocsti.map((x) => `${x.target}: ${x.ok ? 'typed' : x.error}`).join(', ')}); controlling terminal: ${seen.result.session.ctty}`,
        doc: DOC,
      });
      log.add({
        attack: 'inherited-descriptors',
        principal: ns.name,
        against: 'emitted',
        outcome: seen.result.inherited.length || seen.secretRead ? 'succeeded' : 'refused',
        detail: `descriptors above 2: ${seen.result.inherited.map((i) => `${i.fd} → ${i.target}`).join(', ') || 'none'}`,
        doc: DOC,
      });
      expect(seen.injectedAsRoot, 'the typed command ran as root').toBe(false);
      expect(typed).toEqual([]);
      expect(seen.result.session.ctty).toBe('ENXIO'); // no controlling terminal at all
      expect(seen.result.session.sid).toBe(seen.result.session.pid); // a session of its own
      expect(seen.result.inherited).toEqual([]);
      expect(seen.secretRead).toBe(false);
    });

    it(`anti-test ${ns.name}: with the old launcher the typed command runs as root and the root shell's descriptor is read`, async () => {
      const seen = await play(exe.oldLauncher, ns.name);
      log.add({
        attack: 'tiocsti-into-caller',
        principal: ns.name,
        against: 'planted',
        outcome: seen.injectedAsRoot ? 'succeeded' : 'refused',
        detail: `old launcher: ${
          seen.result.tiocsti
            .filter((x) => x.ok)
            .map((x) => x.target)
            .join(', ') || 'nothing typed'
        }; the root shell ran it: ${seen.injectedAsRoot}`,
        doc: DOC,
      });
      log.add({
        attack: 'inherited-descriptors',
        principal: ns.name,
        against: 'planted',
        outcome: seen.secretRead ? 'succeeded' : 'refused',
        detail: `old launcher: ${seen.result.inherited.map((i) => `${i.fd} → ${i.target}`).join(', ') || 'none'}`,
        doc: DOC,
      });
      expect(seen.injectedAsRoot, 'the anti-test did not inject: the attack cannot fail').toBe(true);
      expect(seen.secretRead).toBe(true);
    });
  }

  it('every attack was refused by the emitted launcher and caught against the old one', () => {
    expect(log.problems()).toEqual([]);
    expect(log.records.length).toBe(policy.namespaces.length * 4);
  });
});

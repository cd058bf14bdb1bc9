import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needRoot, needTool, skipUnless } from '@leakless/testing';
import { parseDebosLine } from './log.js';
import { createProgress, formatDuration } from './progress.js';
import { debosArgs, DebosError, runDebos } from './runner.js';
import { recipe, renderRecipe } from './recipe.js';
import { run } from './actions.js';

const dir = mkdtempSync(join(tmpdir(), 'debos-runner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in for debos that prints what debos 1.1.1 prints (see log.ts) and exits like it. */
function fakeDebos(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\nts() { printf '2026/01/02 03:04:05 %s\\n' "$1"; }\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

describe('parseDebosLine', () => {
  it('reads action starts, command output, failures and the end', () => {
    expect(parseDebosLine('2026/11/22 04:27:16 ==== bootstrap ====')).toEqual({ kind: 'action', name: 'bootstrap' });
    expect(parseDebosLine('2026/11/22 04:27:16 mmdebstrap... | I: extracting archives...')).toEqual({
      kind: 'output',
      label: 'mmdebstrap...',
      text: 'I: extracting archives...',
    });
    expect(parseDebosLine('2026/11/22 04:27:30 Action `users` failed at stage Run, error: exit status 3')).toEqual({
      kind: 'failed',
      action: 'users',
      stage: 'Run',
      error: 'exit status 3',
    });
    expect(parseDebosLine('2026/11/22 04:27:30 ==== Recipe done ====')).toEqual({ kind: 'done', dryRun: false });
    expect(parseDebosLine('2026/11/22 04:27:30 ==== Recipe done (Dry run) ====')).toEqual({ kind: 'done', dryRun: true });
    expect(parseDebosLine('2026/11/22 04:27:16 fakemachine not supported, running on the host!')).toEqual({ kind: 'host-mode' });
    expect(parseDebosLine('a | b')).toEqual({ kind: 'message', text: 'a | b' });
  });
});

describe('debosArgs', () => {
  it('puts --disable-fakemachine first in host mode and sorts -t/-e', () => {
    expect(debosArgs({ recipe: 'r.yaml', artifactDir: '/a', environ: { B: '2', A: '1' }, templateVars: { x: 'y' } }, 'host')).toEqual([
      '--disable-fakemachine',
      '--artifactdir',
      '/a',
      '-t',
      'x:y',
      '-e',
      'A:1',
      '-e',
      'B:2',
      'r.yaml',
    ]);
    expect(debosArgs({ recipe: 'r.yaml', artifactDir: '/a' }, 'fakemachine')).toEqual(['--artifactdir', '/a', 'r.yaml']);
    // a named backend: debos fails instead of falling back to the host (and the option is fakemachine-only)
    expect(debosArgs({ recipe: 'r.yaml', artifactDir: '/a', fakemachineBackend: 'kvm' }, 'fakemachine')).toEqual([
      '--fakemachine-backend',
      'kvm',
      '--artifactdir',
      '/a',
      'r.yaml',
    ]);
    expect(debosArgs({ recipe: 'r.yaml', artifactDir: '/a', fakemachineBackend: 'kvm' }, 'host')).toEqual([
      '--disable-fakemachine',
      '--artifactdir',
      '/a',
      'r.yaml',
    ]);
    expect(() => debosArgs({ recipe: 'r', artifactDir: '/a', environ: { 'A B': '1' } }, 'host')).toThrow(/bad environment/);
  });
});

describe('runDebos with a stand-in debos', () => {
  it('streams stages into the progress display, keeps the full log, returns stage timings', async () => {
    const bin = fakeDebos(
      'ok',
      [
        `echo "args: $*" >&2`,
        `ts 'fakemachine not supported, running on the host!'`,
        `ts '==== bootstrap ===='`,
        `ts 'mmdebstrap | I: extracting archives...'`,
        `ts '==== packages ===='`,
        `ts 'apt | Setting up tor'`,
        `ts '==== Recipe done ===='`,
      ].join('\n'),
    );
    const out: string[] = [];
    const progress = createProgress({ label: 'base', write: (s) => out.push(s), tty: false });
    const log = join(dir, 'ok.log');
    const r = await runDebos({ recipe: 'r.yaml', artifactDir: join(dir, 'art'), cwd: dir, logFile: log, debos: bin, progress, mode: 'host' });
    expect(r.mode).toBe('host');
    expect(r.argv).toContain('--disable-fakemachine');
    expect(r.stages.map((s) => [s.name, s.ok])).toEqual([
      ['bootstrap', true],
      ['packages', true],
    ]);
    const text = readFileSync(log, 'utf8');
    expect(text).toContain('args: --disable-fakemachine --artifactdir');
    expect(text).toContain('apt | Setting up tor');
    expect(out.join('')).toMatch(/\[base\] bootstrap …\n/);
    expect(out.join('')).toMatch(/\[base\] done: packages \(\d/);
  });

  it('fakemachine mode: debos runs without --disable-fakemachine', async () => {
    const bin = fakeDebos('mode', `echo "$*" >&2; ts '==== Recipe done ===='`);
    const r = await runDebos({ recipe: 'r.yaml', artifactDir: dir, cwd: dir, logFile: join(dir, 'm.log'), debos: bin, mode: 'fakemachine' });
    expect(r.mode).toBe('fakemachine');
    expect(r.argv).not.toContain('--disable-fakemachine');
  });

  it('fakemachine mode that debos quietly turned into a host run is reported as a host run', async () => {
    const bin = fakeDebos(
      'fellback',
      [
        `ts "Couldn't create fakemachine: kvm backend not supported: open /lib/modules: no such file or directory"`,
        `ts 'fakemachine not supported, running on the host!'`,
        `ts '==== a ===='`,
        `ts '==== Recipe done ===='`,
      ].join('\n'),
    );
    const r = await runDebos({
      recipe: 'r.yaml',
      artifactDir: dir,
      cwd: dir,
      logFile: join(dir, 'fb.log'),
      debos: bin,
      mode: 'fakemachine',
      modeReason: 'KVM boots Linux',
    });
    expect(r.mode).toBe('host');
    expect(r.modeReason).toMatch(/KVM boots Linux; but debos could not start fakemachine and ran on the host/);
  });

  it('a failing action: names it, carries its last log lines and debos’ exit code', async () => {
    const lines = Array.from({ length: 60 }, (_, i) => `ts 'users | line ${i}'`).join('\n');
    const bin = fakeDebos(
      'fail',
      [
        `ts '==== bootstrap ===='`,
        `ts 'mmdebstrap | ok'`,
        `ts '==== users ===='`,
        lines,
        `ts 'users | useradd: UID 106 is not unique'`,
        "ts 'Action `users` failed at stage Run, error: exit status 4'",
        'exit 1',
      ].join('\n'),
    );
    const out: string[] = [];
    const err = await runDebos({
      recipe: 'r.yaml',
      artifactDir: dir,
      cwd: dir,
      logFile: join(dir, 'fail.log'),
      debos: bin,
      mode: 'host',
      tailLines: 10,
      progress: createProgress({ label: 'base', write: (s) => out.push(s), tty: false }),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DebosError);
    const e = err as DebosError;
    expect(e.kind).toBe('failed');
    expect(e.exitCode).toBe(1);
    expect(e.action).toBe('users');
    expect(e.tail).toHaveLength(10);
    expect(e.tail.at(-1)).toContain('Action `users` failed');
    expect(e.tail.join('\n')).toContain('useradd: UID 106 is not unique');
    expect(e.message).toMatch(/debos failed in action "users" \(exit 1\): Run: exit status 4/);
    expect(e.message).toContain(join(dir, 'fail.log'));
    expect(e.stages.map((s) => [s.name, s.ok])).toEqual([
      ['bootstrap', true],
      ['users', false],
    ]);
    expect(out.join('')).toContain('[base] FAILED: users');
  });

  it('exit 0 without "Recipe done" is a failure too (debos was cut short)', async () => {
    const bin = fakeDebos('short', `ts '==== bootstrap ===='`);
    const e = (await runDebos({ recipe: 'r', artifactDir: dir, cwd: dir, logFile: join(dir, 's.log'), debos: bin, mode: 'host' }).catch(
      (x: unknown) => x,
    )) as DebosError;
    expect(e).toBeInstanceOf(DebosError);
    expect(e.action).toBe('bootstrap');
    expect(e.message).toContain('did not report "Recipe done"');
  });

  it('a timeout kills debos and says so', async () => {
    const bin = fakeDebos('slow', `ts '==== squashfs ===='\nexec sleep 30`);
    const e = (await runDebos({ recipe: 'r', artifactDir: dir, cwd: dir, logFile: join(dir, 't.log'), debos: bin, mode: 'host', timeoutMs: 300 }).catch(
      (x: unknown) => x,
    )) as DebosError;
    expect(e.kind).toBe('timeout');
    expect(e.action).toBe('squashfs');
    expect(e.message).toContain('timed out');
  });

  it('a missing debos binary: a clear message with the install command, exit code 127', async () => {
    const e = (await runDebos({ recipe: 'r', artifactDir: dir, cwd: dir, logFile: join(dir, 'nf.log'), debos: join(dir, 'no-such-debos'), mode: 'host' }).catch(
      (x: unknown) => x,
    )) as DebosError;
    expect(e).toBeInstanceOf(DebosError);
    expect(e.kind).toBe('not-found');
    expect(e.exitCode).toBe(127);
    expect(e.message).toMatch(/not found/);
    expect(e.message).toContain('apt-get install --no-install-recommends debos');
  });
});

describe('progress display', () => {
  it('plain mode: one line per stage start and end, a heartbeat, never the tool output', () => {
    let t = 0;
    const out: string[] = [];
    const p = createProgress({ label: 'iso', write: (s) => out.push(s), tty: false, now: () => t, heartbeatMs: 1000, total: 2 });
    p.stage('bootstrap');
    p.line('noise that belongs in the log file only');
    t = 2500;
    p.stage('squashfs');
    t = 4000;
    const stages = p.finish(true);
    expect(stages).toEqual([
      { name: 'bootstrap', ms: 2500, ok: true },
      { name: 'squashfs', ms: 1500, ok: true },
    ]);
    expect(out.join('')).toBe('[iso 1/2] bootstrap …\n[iso 1/2] done: bootstrap (2.5s)\n[iso 2/2] squashfs …\n[iso 2/2] done: squashfs (1.5s)\n');
  });
  it('tty mode: redraws the status line with the stage, elapsed time and the latest output', () => {
    let t = 0;
    const out: string[] = [];
    const p = createProgress({ label: 'iso', write: (s) => out.push(s), tty: true, now: () => t });
    p.stage('packages');
    t = 65_000;
    p.line('Setting up tor (0.4.8)');
    p.finish(false);
    expect(out.join('')).toContain('\r\x1b[2K[iso] packages 1m05s  Setting up tor (0.4.8)');
    expect(out.join('')).toContain('[iso] FAILED: packages (1m05s)');
  });
  it('end(false) marks one stage failed and the display goes on', () => {
    let t = 0;
    const out: string[] = [];
    const p = createProgress({ label: 'verify', write: (s) => out.push(s), tty: false, now: () => t });
    p.stage('rootfs');
    t = 1000;
    p.end(false);
    p.stage('iso');
    t = 1500;
    expect(p.finish(true)).toEqual([
      { name: 'rootfs', ms: 1000, ok: false },
      { name: 'iso', ms: 500, ok: true },
    ]);
    expect(out.join('')).toContain('[verify] FAILED: rootfs (1.0s)');
  });
  it('formats durations', () => {
    expect(formatDuration(999)).toBe('1.0s');
    expect(formatDuration(61_000)).toBe('1m01s');
    expect(formatDuration(3_660_000)).toBe('1h01m');
  });
});

// The real debos, in host mode (the caller decides the mode; host mode runs
// on any machine, with or without KVM or a kernel in /lib/modules): a recipe
// whose second action fails.
const noRealDebos = skipUnless(
  'the real debos runner test',
  needRoot('debos runs its actions as root'),
  needTool('debos', ['--help'], 'tools/leakless/install-deps.sh test installs it'),
);

describe.skipIf(noRealDebos)('runDebos with debos 1.1.1', () => {
  it('reports the failing action of a real run and its output', async () => {
    const r = recipe('amd64', [
      run({ description: 'first', command: 'echo hello from first' }),
      run({ description: 'explode', command: 'echo about to fail; echo "ROOTDIR=$ROOTDIR"; exit 3' }),
      run({ description: 'never', command: 'echo never' }),
    ]);
    writeFileSync(join(dir, 'real.yaml'), renderRecipe(r));
    const e = (await runDebos({
      recipe: join(dir, 'real.yaml'),
      artifactDir: join(dir, 'real-art'),
      cwd: dir,
      logFile: join(dir, 'real.log'),
      mode: 'host',
    }).catch((x: unknown) => x)) as DebosError;
    expect(e).toBeInstanceOf(DebosError);
    expect(e.action).toBe('explode');
    expect(e.tail.join('\n')).toContain('about to fail');
    expect(e.stages.map((s) => s.name)).toEqual(['first', 'explode']);
    expect(readFileSync(join(dir, 'real.log'), 'utf8')).toContain('hello from first');
  });
});

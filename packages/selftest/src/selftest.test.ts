import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Exec } from './evaluate.js';
import type { SelftestDocument } from './document.js';
import { formatReport, judgeReport, parseResultLine, parseSelftestDocument, resultLine, runSelftest } from './selftest.js';
import { bundleSelftest } from './bundle.js';

const doc: SelftestDocument = {
  version: 1,
  policy: 'default',
  release: '0.1.0',
  assertions: [
    { module: 'sysctl', id: 'sysctl.a', statement: 'a = 1', check: { kind: 'sysctl', key: 'net.a', expected: '1' }, scope: 'system' },
    { module: 'image', id: 'image.user.root', statement: 'root', check: { kind: 'user', name: 'root', uid: 0, gid: 0 }, scope: 'system' },
  ],
};

/** A system whose sysctl `net.a` reads `values[i]` on the i-th read (also inside a namespace). */
function fakeSystem(values: string[]): Exec {
  let reads = 0;
  return async (cmd, args) => {
    if (cmd === 'ip' && args[0] === 'netns') return fakeSystem(values.slice(Math.min(reads++, values.length - 1)))(args[3]!, args.slice(4));
    if (cmd === 'sysctl') return { exitCode: 0, stdout: values[Math.min(reads++, values.length - 1)]! + '\n', stderr: '' };
    if (cmd === 'getent') return { exitCode: 0, stdout: 'root:x:0:0:root:/root:/bin/bash\n', stderr: '' };
    return { exitCode: 127, stdout: '', stderr: 'no such tool' };
  };
}

describe('runSelftest', () => {
  it('passes when every assertion holds, in one round', async () => {
    const r = await runSelftest(doc, fakeSystem(['1']));
    expect(r).toMatchObject({ ok: true, passed: 2, failed: 0, rounds: 1 });
  });
  it('re-checks what may still be starting (here: a sysctl inside a namespace) while the system settles, then passes', async () => {
    let t = 0;
    const inNetns: SelftestDocument = { ...doc, assertions: [{ ...doc.assertions[0]!, netns: 'tbb' }, doc.assertions[1]!] };
    const r = await runSelftest(inNetns, fakeSystem(['0', '0', '1']), {
      settleMs: 60_000,
      intervalMs: 1000,
      now: () => t,
      sleep: async (ms) => {
        t += ms;
      },
    });
    expect(r).toMatchObject({ ok: true, rounds: 3 });
  });
  it('does not wait for what is final by then (a system-wide sysctl after systemd-sysctl ran)', async () => {
    let t = 0;
    const r = await runSelftest(doc, fakeSystem(['0', '1']), {
      settleMs: 60_000,
      intervalMs: 1000,
      now: () => t,
      sleep: async (ms) => {
        t += ms;
      },
    });
    expect(r).toMatchObject({ ok: false, rounds: 1 });
    expect(t).toBe(0);
  });
  it('fails when an assertion still does not hold at the deadline, and says what it saw', async () => {
    let t = 0;
    const listening: SelftestDocument = {
      ...doc,
      assertions: [
        ...doc.assertions,
        { module: 'tor', id: 'tor.listen', statement: 'l', check: { kind: 'listening', protocol: 'tcp', address: '127.0.0.1', port: 9050 }, scope: 'system' },
      ],
    };
    const rl = await runSelftest(listening, fakeSystem(['1']), {
      settleMs: 5000,
      intervalMs: 1000,
      now: () => t,
      sleep: async (ms) => {
        t += ms;
      },
    });
    expect(rl).toMatchObject({ ok: false, failed: 1 });
    expect(rl.rounds).toBe(6); // a listener may still come up: re-checked until the deadline
    t = 0;
    const r = await runSelftest(doc, fakeSystem(['2']), {
      settleMs: 5000,
      intervalMs: 1000,
      now: () => t,
      sleep: async (ms) => {
        t += ms;
      },
    });
    expect(r.ok).toBe(false);
    expect(r.failed).toBe(1);
    expect(r.results.find((x) => !x.ok)).toMatchObject({ id: 'sysctl.a', module: 'sysctl', detail: 'net.a = 2 (expected 1)' });
    expect(formatReport(r)).toMatch(/FAIL\s+sysctl\s+sysctl\.a\s+net\.a = 2 \(expected 1\)/);
    expect(formatReport(r)).toContain('1 passed, 1 failed');
  });
  it('a missing tool is a failure, never a pass', async () => {
    const r = await runSelftest(doc, async () => ({ exitCode: 127, stdout: '', stderr: 'sysctl: not found' }));
    expect(r.ok).toBe(false);
    expect(r.failed).toBe(2);
  });
  it('selects modules', async () => {
    const r = await runSelftest(doc, fakeSystem(['0']), { modules: ['image'] });
    expect(r.results.map((x) => x.id)).toEqual(['image.user.root']);
    await expect(runSelftest(doc, fakeSystem(['0']), { modules: ['nope'] })).rejects.toThrow(/no assertions/);
  });
});

describe('documents and result lines', () => {
  it('rejects documents that are not runtime assertions, or empty ones (nothing verified is not a pass)', () => {
    expect(() => parseSelftestDocument('{"version":2}')).toThrow(/version 1/);
    expect(() => parseSelftestDocument(JSON.stringify({ ...doc, assertions: [] }))).toThrow(/nothing would be verified/);
    expect(() => parseSelftestDocument(JSON.stringify({ ...doc, assertions: [{ id: 'x' }] }))).toThrow(/malformed/);
  });
  it('finds the marked report in a noisy stream, and nothing in an incomplete one', async () => {
    const r = await runSelftest(doc, fakeSystem(['1']));
    const line = resultLine(r);
    expect(parseResultLine(`boot noise\n${line}more noise\n`)).toEqual(r);
    expect(parseResultLine(line.slice(0, line.length - 20))).toBeUndefined();
  });
  it('judgeReport: all results held, and as many as the image carries', async () => {
    const ok = await runSelftest(doc, fakeSystem(['1']));
    expect(judgeReport(ok, 2)).toEqual({ ok: true });
    expect(judgeReport(ok, 3)).toMatchObject({ ok: false, reason: expect.stringContaining('the image carries 3') });
    const bad = await runSelftest(doc, fakeSystem(['0']));
    expect(judgeReport(bad, 2)).toMatchObject({ ok: false, reason: expect.stringContaining('sysctl.a') });
    // a report claiming ok with a failed result is judged on its results
    expect(judgeReport({ ...bad, ok: true }, 2).ok).toBe(false);
    expect(judgeReport({ ...ok, results: [] }, undefined).ok).toBe(false);
  });
});

describe('the bundled leakless-selftest (what the image runs)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lk-selftest-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it('is one self-contained file for Debian’s nodejs, with no build-host paths', async () => {
    const text = await bundleSelftest();
    expect(text.startsWith('#!/usr/bin/node\n')).toBe(true);
    expect(text).not.toMatch(/\/work\/|node_modules|require\("(zod|yaml|ejs)"\)/);
    expect(await bundleSelftest()).toBe(text);
    writeFileSync(join(dir, 'selftest'), text, { mode: 0o755 });
  });
  it('exits 0 when every assertion holds, 1 when one fails, 2 on bad input; writes the marked result to the port', async () => {
    const me = (await execa('id', ['-un'])).stdout;
    const uid = process.getuid!();
    const gid = process.getgid!();
    const good = {
      ...doc,
      assertions: [{ module: 'image', id: 'image.user.me', statement: 'me', check: { kind: 'user', name: me, uid, gid }, scope: 'system' }],
    };
    const bad = {
      ...doc,
      assertions: [
        ...good.assertions,
        { module: 'image', id: 'image.user.ghost', statement: 'ghost', check: { kind: 'user', name: 'no-such-user-lk', uid: 5, gid: 5 }, scope: 'system' },
      ],
    };
    writeFileSync(join(dir, 'good.json'), JSON.stringify(good));
    writeFileSync(join(dir, 'bad.json'), JSON.stringify(bad));
    writeFileSync(join(dir, 'port'), '');
    const ok = await execa('node', [join(dir, 'selftest'), '--assertions', join(dir, 'good.json'), '--result-port', join(dir, 'port')], { reject: false });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('1 passed, 0 failed');
    const { readFileSync } = await import('node:fs');
    expect(parseResultLine(readFileSync(join(dir, 'port'), 'utf8'))).toMatchObject({ ok: true, passed: 1 });
    const fail = await execa('node', [join(dir, 'selftest'), '--assertions', join(dir, 'bad.json'), '--json'], { reject: false });
    expect(fail.exitCode).toBe(1);
    expect(JSON.parse(fail.stdout)).toMatchObject({ ok: false, failed: 1 });
    const input = await execa('node', [join(dir, 'selftest'), '--assertions', join(dir, 'missing.json')], { reject: false });
    expect(input.exitCode).toBe(2);
  });
  it('takes the active probes’ destinations at run time; without them a probe fails, never passes; --scope leaves a scope out', async () => {
    const probe = {
      module: 'firewall',
      id: 'firewall.refused.internet.desktop',
      statement: 'refused',
      check: { kind: 'refused-probe', to: 'internet', protocol: 'tcp', port: 80, control: { uid: 106, gid: 106 }, attacker: { uid: 1000, gid: 1000 } },
      scope: 'network',
    };
    const me = (await execa('id', ['-un'])).stdout;
    const user = {
      module: 'image',
      id: 'image.user.me',
      statement: 'me',
      check: { kind: 'user', name: me, uid: process.getuid!(), gid: process.getgid!() },
      scope: 'system',
    };
    writeFileSync(join(dir, 'probe.json'), JSON.stringify({ ...doc, assertions: [user, probe] }));
    const run = (...args: string[]) => execa('node', [join(dir, 'selftest'), '--assertions', join(dir, 'probe.json'), '--json', ...args], { reject: false });
    const none = await run();
    expect(none.exitCode).toBe(1);
    expect(JSON.parse(none.stdout).results[1].detail).toMatch(/no destination "internet" given/);
    expect((await run('--scope', 'system')).exitCode).toBe(0);
    for (const bad of [
      ['--destination', 'internet'],
      ['--destination', 'internet=example.org'],
      ['--scope', 'lab'],
    ]) {
      const r = await run(...bad);
      expect(r.exitCode, bad.join(' ')).toBe(2);
      expect(r.stderr.split('\n')[0]).toMatch(/^leakless-selftest: --(destination|scope)/);
    }
    // loopback, where nothing listens on port 9: nothing leaves this machine, the control fails, so the probe fails (it cannot tell)
    writeFileSync(join(dir, 'destinations'), '# the lab hosts\ninternet=127.0.0.1:9\n');
    const dead = await run('--destinations', join(dir, 'destinations'));
    expect(dead.exitCode).toBe(1);
    expect(JSON.parse(dead.stdout).results[1].detail).toMatch(/control: uid 106 could not reach tcp 127\.0\.0\.1:9|printed nothing usable/);
  }, 30_000);
});

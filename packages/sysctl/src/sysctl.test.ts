import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildTree, memoryTree, type StaticContext } from '@leakless/policy';
import { evaluateRuntime, type Exec } from '@leakless/selftest';
import { defaultPolicy } from '@leakless/policy/testing';
import { needRoot, skipUnless } from '@leakless/testing';
import { emit, parseSysctlConf, isPerNetns, MODPROBE_FILE, SYSCTL_DIR } from './index.js';

const policy = defaultPolicy();
const out = emit(policy);

function ctxFor(files: typeof out.files): StaticContext {
  return { tree: memoryTree(buildTree([{ ...out, files }])), policy, run: async () => ({ exitCode: 127, stdout: '', stderr: 'no tools' }) };
}

describe('sysctl emit', () => {
  it('writes the sysctl.d files and the modprobe blocklist, 0644, each with a clause', () => {
    expect(out.files.map((f) => f.path)).toEqual([
      '/usr/lib/sysctl.d/zz-leakless-pmtud.conf',
      '/usr/lib/sysctl.d/zz-leakless-ipv6.conf',
      '/usr/lib/sysctl.d/zz-leakless-net-hardening.conf',
      '/usr/lib/sysctl.d/zz-leakless-kernel-hardening.conf',
      '/usr/lib/modprobe.d/leakless-uncommon-network-protocols.conf',
    ]);
    expect(out.files.at(-1)!.path).toBe(MODPROBE_FILE);
    for (const f of out.files) {
      expect(f.mode).toBe(0o644);
      expect(f.clause).not.toBe('');
      expect(f.content).toMatch(/^# .*\n# leakless: generated from the policy \(.+\); do not edit/);
    }
  });

  it('sets PLPMTUD and turns IPv6 off (all/default, lo kept)', () => {
    const all = new Map(out.files.filter((f) => f.path.startsWith(`${SYSCTL_DIR}/`)).flatMap((f) => [...parseSysctlConf(f.content).entries]));
    expect(all.get('net.ipv4.tcp_mtu_probing')).toBe('1');
    expect(all.get('net.ipv6.conf.all.disable_ipv6')).toBe('1');
    expect(all.get('net.ipv6.conf.default.disable_ipv6')).toBe('1');
    expect(all.get('net.ipv6.conf.lo.disable_ipv6')).toBe('0');
    expect(all.get('net.ipv4.tcp_timestamps')).toBe('0');
    expect(all.get('kernel.yama.ptrace_scope')).toBe('2');
  });

  it('takes user namespaces from unprivileged users (Debian’s knob), not from root, and no set-id core dumps', () => {
    const all = new Map(out.files.filter((f) => f.path.startsWith(`${SYSCTL_DIR}/`)).flatMap((f) => [...parseSysctlConf(f.content).entries]));
    expect(all.get('kernel.unprivileged_userns_clone')).toBe('0');
    expect(all.get('fs.suid_dumpable')).toBe('0');
    // counts root's namespaces too: 0 would stop every unit with PrivateUsers= (docs/threat-model.md#user-namespaces)
    expect(all.has('user.max_user_namespaces')).toBe(false);
    for (const key of ['kernel.unprivileged_userns_clone', 'fs.suid_dumpable'])
      expect(out.runtimeAssertions.find((a) => a.id === `sysctl.value.${key}`)).toMatchObject({
        scope: 'system',
        check: { kind: 'sysctl', key, expected: '0' },
      });
  });

  it('catches a packaged file that gives user namespaces or set-id core dumps back (systemd’s 50-coredump.conf sorts before ours)', async () => {
    const effective = out.staticAssertions.find((a) => a.id === 'sysctl.effective-values')!;
    const coredump = { path: '/usr/lib/sysctl.d/50-coredump.conf', content: 'fs.suid_dumpable = 2\n', mode: 0o644, clause: 'test' };
    expect((await effective.check(ctxFor([...out.files, coredump]))).ok).toBe(true);
    for (const [key, value] of [
      ['kernel.unprivileged_userns_clone', '1'],
      ['fs.suid_dumpable', '2'],
    ]) {
      const late = { path: '/etc/sysctl.d/zzz-local.conf', content: `${key} = ${value}\n`, mode: 0o644, clause: 'test' };
      expect(await effective.check(ctxFor([...out.files, late]))).toMatchObject({ ok: false, detail: expect.stringContaining(`${key} ends up ${value}`) });
    }
  });

  it('puts a comment on the threat above every key', () => {
    for (const f of out.files.filter((x) => x.path.startsWith(`${SYSCTL_DIR}/`))) {
      const lines = f.content.split('\n');
      lines.forEach((l, i) => {
        if (/^[a-z].* = /.test(l)) expect(lines[i - 1], `${f.path}: ${l}`).toMatch(/^# \S/);
      });
    }
  });

  it('passes its static assertions on its own output', async () => {
    for (const a of out.staticAssertions) expect(await a.check(ctxFor(out.files)), a.id).toMatchObject({ ok: true });
  });

  it('static assertions catch a tampered tree', async () => {
    const tampered = out.files.map((f) =>
      f.path.endsWith('pmtud.conf') ? { ...f, content: f.content.replace('tcp_mtu_probing = 1', 'tcp_mtu_probing = 0') } : f,
    );
    const results = await Promise.all(out.staticAssertions.map(async (a) => [a.id, (await a.check(ctxFor(tampered))).ok] as const));
    expect(Object.fromEntries(results)).toMatchObject({ 'sysctl.pmtud': false, 'sysctl.values': false });
    const noModprobe = out.files.map((f) => (f.path === MODPROBE_FILE ? { ...f, content: f.content.replace('install sctp /bin/false\n', '') } : f));
    const mod = out.staticAssertions.find((a) => a.id === 'sysctl.modules-blocked')!;
    expect((await mod.check(ctxFor(noModprobe))).ok).toBe(false);
  });

  it('catches a packaged sysctl.d file that overrides a policy value (procps protect-links.conf)', async () => {
    const effective = out.staticAssertions.find((a) => a.id === 'sysctl.effective-values')!;
    expect((await effective.check(ctxFor(out.files))).ok).toBe(true);
    const packaged = { path: '/usr/lib/sysctl.d/protect-links.conf', content: 'fs.protected_fifos = 1\n', mode: 0o644, clause: 'test' };
    const r = await effective.check(ctxFor([...out.files, packaged]));
    expect(r.ok).toBe(true); // "zz-leakless-" sorts after it: the policy value is the last write
    const late = { ...packaged, path: '/usr/lib/sysctl.d/zzz-late.conf' };
    const bad = await effective.check(ctxFor([...out.files, late]));
    expect(bad).toMatchObject({ ok: false });
    expect(bad.detail).toMatch(/fs.protected_fifos ends up 1 \(from \/usr\/lib\/sysctl.d\/zzz-late.conf\)/);
    // systemd-sysctl orders /etc, /run and /usr/lib together by file name: an /etc or /run file sorting
    // after ours wins, and one with our name replaces ours
    for (const dir of ['/etc/sysctl.d', '/run/sysctl.d']) {
      const local = { ...packaged, path: `${dir}/zzz-local.conf`, content: 'net.ipv4.tcp_mtu_probing = 0\n' };
      expect(await effective.check(ctxFor([...out.files, local])), local.path).toMatchObject({ ok: false, detail: expect.stringContaining(local.path) });
      const early = { ...local, path: `${dir}/50-local.conf` };
      expect((await effective.check(ctxFor([...out.files, early]))).ok, early.path).toBe(true);
    }
    const masked = { path: '/etc/sysctl.d/zz-leakless-kernel-hardening.conf', content: '', mode: 0o644, clause: 'test' };
    expect(out.files.some((f) => f.path === `${SYSCTL_DIR}/zz-leakless-kernel-hardening.conf`)).toBe(true);
    expect(await effective.check(ctxFor([...out.files, masked]))).toMatchObject({ ok: false, detail: expect.stringContaining('ends up unset') });
  });

  it('has one runtime assertion per key, net.* ones scoped to a network namespace', () => {
    const keys = out.runtimeAssertions.filter((a) => a.check.kind === 'sysctl');
    expect(keys.length).toBeGreaterThan(40);
    for (const a of keys) expect(a.scope).toBe(isPerNetns((a.check as { key: string }).key) ? 'netns' : 'system');
  });
});

// The runtime assertions evaluated for real: the emitted net.* keys applied
// with `sysctl -p` inside a fresh network namespace, then read back.
const noRoot = skipUnless('the sysctl runtime test', needRoot('a fresh network namespace'));

describe.skipIf(noRoot)('sysctl runtime assertions in a fresh network namespace', () => {
  const netnsAssertions = out.runtimeAssertions.filter((a) => a.scope === 'netns');
  const inNetns =
    (ns: string): Exec =>
    async (cmd, args) => {
      const r = await execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: false });
      return { exitCode: r.exitCode ?? 127, stdout: r.stdout, stderr: r.stderr };
    };

  async function withNetns<T>(fn: (ns: string, dir: string) => Promise<T>): Promise<T> {
    const ns = `lk-sysctl-${randomBytes(3).toString('hex')}`;
    const dir = mkdtempSync(join(tmpdir(), 'lk-sysctl-'));
    await execa('ip', ['netns', 'add', ns]);
    try {
      return await fn(ns, dir);
    } finally {
      await execa('ip', ['netns', 'del', ns], { reject: false });
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** The emitted files with only the per-namespace keys (kernel.* would change this host). */
  function netnsOnly(files: typeof out.files, dir: string): string[] {
    return files
      .filter((f) => f.path.startsWith(`${SYSCTL_DIR}/`))
      .map((f, i) => {
        const text = f.content
          .split('\n')
          .filter((l) => !/^[a-z]/.test(l) || isPerNetns(l.split(' ')[0]!))
          .join('\n');
        const p = join(dir, `${i}.conf`);
        writeFileSync(p, text);
        return p;
      });
  }

  it('a fresh namespace does not already satisfy them (the check can fail)', async () => {
    await withNetns(async (ns) => {
      const results = await evaluateRuntime(netnsAssertions, inNetns(ns));
      expect(results.filter((r) => !r.ok).map((r) => r.id)).toContain('sysctl.value.net.ipv4.tcp_mtu_probing');
    });
  });

  it('every emitted net.* key is in force after sysctl -p', async () => {
    await withNetns(async (ns, dir) => {
      for (const f of netnsOnly(out.files, dir)) {
        const r = await execa('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-p', f], { reject: false });
        expect(r.exitCode, `${f}: ${r.stderr}`).toBe(0);
      }
      const results = await evaluateRuntime(netnsAssertions, inNetns(ns));
      expect(results.filter((r) => !r.ok)).toEqual([]);
      expect(results.length).toBe(netnsAssertions.length);
    });
  });

  it('anti-test: a value changed after emit is reported', async () => {
    await withNetns(async (ns, dir) => {
      const planted = out.files.map((f) => ({ ...f, content: f.content.replace('net.ipv4.tcp_timestamps = 0', 'net.ipv4.tcp_timestamps = 1') }));
      for (const f of netnsOnly(planted, dir)) await execa('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-p', f]);
      const failed = (await evaluateRuntime(netnsAssertions, inNetns(ns))).filter((r) => !r.ok);
      expect(failed.map((r) => r.id)).toEqual(['sysctl.value.net.ipv4.tcp_timestamps']);
    });
  });
});

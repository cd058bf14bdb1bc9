// disable_ipv6 on every interface (docs/threat-model.md#hostile-local-programs-tests):
// the kernel decides by each interface's own value, so the check reads every
// interface, and an interface switched back on after the sysctls is seen,
// where the all/default checks still pass.
import { randomBytes } from 'node:crypto';
import { evaluateRuntime, type Exec } from '@leakless/selftest';
import { defaultPolicy } from '@leakless/policy/testing';
import { needRoot, skipUnless } from '@leakless/testing';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { emit } from './index.js';

const out = emit(defaultPolicy());
const each = out.runtimeAssertions.filter((a) => a.check.kind === 'sysctl-interfaces');
const allDefault = out.runtimeAssertions.filter((a) => a.check.kind === 'sysctl' && /^net\.ipv6\.conf\.(all|default)\.disable_ipv6$/.test(a.check.key));

describe('per-interface sysctls', () => {
  it('one check of disable_ipv6 on every interface, lo kept as the policy names it', () => {
    expect(each.map((a) => [a.id, a.scope, a.check])).toEqual([
      [
        'sysctl.each-interface.ipv6.disable_ipv6',
        'netns',
        { kind: 'sysctl-interfaces', family: 'ipv6', key: 'disable_ipv6', expected: '1', except: { lo: '0' } },
      ],
    ]);
    expect(allDefault).toHaveLength(2);
  });
});

const noRoot = skipUnless('the per-interface sysctl test', needRoot('a fresh network namespace'));

describe.skipIf(noRoot)('per-interface sysctls in a fresh network namespace', () => {
  it('hold for interfaces made before and after the settings; one switched back on fails it, where all/default still pass', async () => {
    const ns = `lk-ifsys-${randomBytes(3).toString('hex')}`;
    const inNs: Exec = async (cmd, args) => {
      const r = await execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: false });
      return { exitCode: r.exitCode ?? 127, stdout: r.stdout, stderr: r.stderr };
    };
    const must = async (cmd: string, args: string[]) => {
      const r = await inNs(cmd, args);
      if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
    };
    await execa('ip', ['netns', 'add', ns]);
    try {
      await must('ip', ['link', 'add', 'early0', 'type', 'veth', 'peer', 'name', 'early1']);
      // a fresh namespace has IPv6 on: the check can fail
      expect((await evaluateRuntime(each, inNs)).filter((r) => !r.ok)).toHaveLength(1);
      for (const k of ['all', 'default']) await must('sysctl', ['-q', '-w', `net.ipv6.conf.${k}.disable_ipv6=1`]);
      await must('sysctl', ['-q', '-w', 'net.ipv6.conf.lo.disable_ipv6=0']);
      await must('ip', ['link', 'add', 'late0', 'type', 'veth', 'peer', 'name', 'late1']);
      expect((await evaluateRuntime([...each, ...allDefault], inNs)).filter((r) => !r.ok)).toEqual([]);
      await must('sysctl', ['-q', '-w', 'net.ipv6.conf.early0.disable_ipv6=0']);
      const failed = (await evaluateRuntime([...each, ...allDefault], inNs)).filter((r) => !r.ok);
      expect(failed.map((r) => r.id)).toEqual(['sysctl.each-interface.ipv6.disable_ipv6']);
      expect(failed[0]!.detail).toContain('early0 = 0 (expected 1)');
    } finally {
      await execa('ip', ['netns', 'del', ns], { reject: false });
    }
  });
});

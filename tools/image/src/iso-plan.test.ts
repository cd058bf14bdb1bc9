import { describe, expect, it } from 'vitest';
import { assemble, emission, layoutProblems, readPolicyFile, type LeaklessModule, type Policy } from '@leakless/policy';
import { fileURLToPath } from 'node:url';
import {
  DEBIAN_ACCOUNTS,
  imageFiles,
  LIVE_PACKAGES,
  PlanError,
  planImage,
  selftestPackages,
  SELFTEST_UNIT,
  SELFTEST_PATH,
  RUNTIME_ASSERTIONS_PATH,
} from './iso-plan.js';
import { allModules } from '@leakless/crosscheck';

const config = fileURLToPath(new URL('../../../image-config/default.yaml', import.meta.url));
const loaded = await readPolicyFile(config);
if (!loaded.ok) throw new Error('default policy does not validate');
const policy: Policy = loaded.policy;

/** A stand-in module, so these tests do not move when real modules change. */
function fake(name: string, parts: Parameters<typeof emission>[1]): LeaklessModule {
  return { name, emit: () => emission(name, parts) };
}

describe('planImage: generic over every module in the assembly', () => {
  const a = assemble(policy, [
    fake('one', {
      packages: ['tor', 'nftables'],
      units: ['one.service'],
      runtimeAssertions: [{ id: 'one.sysctl', statement: 's', check: { kind: 'sysctl', key: 'k', expected: '1' }, scope: 'system' }],
    }),
    fake('two', {
      packages: ['tor', 'zz-extra'],
      units: ['one.service', 'tor@default.service'],
      runtimeAssertions: [
        { id: 'two.listen', statement: 's', check: { kind: 'listening', protocol: 'tcp', address: '127.0.0.1', port: 9050 }, scope: 'system' },
      ],
    }),
  ]);
  const plan = planImage(a);

  it('installs the union of every module’s packages, the live system and what the self-test needs, sorted once', () => {
    for (const p of ['tor', 'nftables', 'zz-extra', ...LIVE_PACKAGES, 'nodejs', 'procps', 'iproute2']) expect(plan.packages).toContain(p);
    expect(plan.packages).toEqual([...new Set(plan.packages)].sort());
  });

  it('enables every unit any module asks for, plus the self-test unit and the lab boot’s reader and agent', () => {
    expect(plan.units).toEqual([
      'leakless-lab-agent.service',
      'leakless-selftest.service',
      'leakless-test-settings.service',
      'one.service',
      'tor@default.service',
    ]);
    expect(plan.units).toContain(SELFTEST_UNIT);
  });

  it('creates the policy users with their fixed ids, sorted by uid; package accounts look as the package expects', () => {
    expect(plan.users.map((u) => [u.name, u.uid, u.gid])).toEqual(policy.users.map((u) => [u.name, u.uid, u.gid]));
    const tor = plan.users.find((u) => u.role === 'tor-daemon')!;
    expect(tor.name).toBe('debian-tor');
    expect(tor).toMatchObject({ home: DEBIAN_ACCOUNTS['debian-tor']!.home, shell: '/bin/false', createHome: false });
    expect(plan.users.find((u) => u.role === 'desktop')).toMatchObject({ home: '/home/amnesia', createHome: true });
  });

  it('carries every module’s runtime assertions plus one per user for the self-test', () => {
    const ids = plan.selftest.assertions.map((x) => x.id);
    expect(ids).toContain('one.sysctl');
    expect(ids).toContain('two.listen');
    for (const u of policy.users) expect(ids).toContain(`image.user.${u.name}`);
    expect(plan.selftest.assertions.find((x) => x.id === 'two.listen')!.module).toBe('two');
  });

  it('rejects a module user whose ids contradict the policy, and a uid given twice', () => {
    expect(() => planImage(assemble(policy, [fake('bad', { users: [{ name: 'debian-tor', uid: 999, gid: 112 }] })]))).toThrow(PlanError);
    expect(() => planImage(assemble(policy, [fake('bad', { users: [{ name: 'other', uid: 106, gid: 5 }] })]))).toThrow(/uid 106/);
  });

  it('rejects runtime assertion ids used twice and unit names that are not unit names', () => {
    const r = { id: 'dup', statement: 's', check: { kind: 'user' as const, name: 'root', uid: 0, gid: 0 }, scope: 'system' as const };
    expect(() => planImage(assemble(policy, [fake('a', { runtimeAssertions: [r] }), fake('b', { runtimeAssertions: [r] })]))).toThrow(/twice/);
    expect(() => planImage(assemble(policy, [fake('a', { units: ['rm -rf /'] })]))).toThrow(/not a unit name/);
  });

  it('masks every unit a module needs masked, and refuses a unit both enabled and masked', () => {
    const m = planImage(
      assemble(policy, [fake('a', { units: ['a.service'], maskedUnits: ['nftables.service'] }), fake('b', { maskedUnits: ['nftables.service'] })]),
    );
    expect(m.maskedUnits).toEqual(['e2scrub_all.timer', 'e2scrub_reap.service', 'nftables.service']);
    expect(plan.maskedUnits).toEqual(['e2scrub_all.timer', 'e2scrub_reap.service']);
    expect(() => planImage(assemble(policy, [fake('a', { units: ['x.service'] }), fake('b', { maskedUnits: ['x.service'] })]))).toThrow(
      /both enabled and masked/,
    );
    expect(() => planImage(assemble(policy, [fake('a', { maskedUnits: ['nft; rm -rf /'] })]))).toThrow(/not a unit name/);
  });

  it('the real modules plan too', () => {
    const real = planImage(assemble(policy, allModules));
    for (const m of allModules) {
      const e = m.emit(policy);
      for (const p of e.packages) expect(real.packages).toContain(p);
      for (const u of e.units) expect(real.units).toContain(u);
      for (const u of e.maskedUnits) expect(real.maskedUnits).toContain(u);
    }
    expect(real.maskedUnits).toContain('nftables.service');
  });
});

describe('selftestPackages', () => {
  it('maps each kind of observation to the Debian package of its tool', () => {
    const a = (check: object, netns?: string) => ({ id: 'x', statement: 's', check, scope: 'system', ...(netns ? { netns } : {}) }) as never;
    expect(selftestPackages([a({ kind: 'nft-table' })]).sort()).toEqual(['nftables', 'nodejs']);
    expect(selftestPackages([a({ kind: 'user' }, 'tbb')]).sort()).toEqual(['iproute2', 'nodejs']);
    // an unknown kind gets every tool rather than a self-test that cannot observe
    expect(selftestPackages([a({ kind: 'future-kind' })]).sort()).toEqual(['iproute2', 'kmod', 'nftables', 'nodejs', 'procps']);
  });
});

describe('imageFiles', () => {
  const plan = planImage(assemble(policy, [fake('m', {})]));
  it('adds the self-test, its data, its unit and udev rule, and the host name', () => {
    const files = imageFiles(plan, '#!/usr/bin/node\n', new Set());
    const paths = files.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining([SELFTEST_PATH, RUNTIME_ASSERTIONS_PATH, '/etc/hostname', '/etc/hosts']));
    expect(files.find((f) => f.path === SELFTEST_PATH)!.mode).toBe(0o755);
    expect(JSON.parse(files.find((f) => f.path === RUNTIME_ASSERTIONS_PATH)!.content).assertions).toHaveLength(plan.selftest.assertions.length);
    expect(files.find((f) => f.path === '/etc/hostname')!.content).toBe(`${policy.document.image.hostname}\n`);
    // the image's own files follow the packages' layout too
    expect(layoutProblems(paths)).toEqual([]);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/usr/sbin/leakless-selftest',
        '/usr/lib/systemd/system/leakless-selftest.service',
        '/usr/lib/udev/rules.d/99-leakless-selftest.rules',
      ]),
    );
  });
  it('leaves /etc/hostname and /etc/hosts to a module that emits them; refuses a module writing the self-test', () => {
    expect(imageFiles(plan, '', new Set(['/etc/hostname', '/etc/hosts'])).map((f) => f.path)).not.toContain('/etc/hostname');
    expect(() => imageFiles(plan, '', new Set([SELFTEST_PATH]))).toThrow(PlanError);
  });
});

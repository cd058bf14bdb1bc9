import { describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { assemble, emission, readPolicyFile, type LeaklessModule } from '@leakless/policy';
import { planImage } from './iso-plan.js';
import { baseKey, baseRecipe, grubCfg, KERNEL_ARGS, topRecipe, usersTsv, type BaseInputs } from './iso-recipes.js';
import { CLEANUP_SH, DEBS_SH, EXPORT_SH, LAYER_SH, MKISO_SH, PACKAGES_SH, STAGE_SH, USERS_SH } from './iso-scripts.js';

const loaded = await readPolicyFile(fileURLToPath(new URL('../../../image-config/default.yaml', import.meta.url)));
if (!loaded.ok) throw new Error('default policy does not validate');
const policy = loaded.policy;
const fake = (name: string, parts: Parameters<typeof emission>[1]): LeaklessModule => ({ name, emit: () => emission(name, parts) });
const modules = [
  fake('fw', {
    packages: ['nftables'],
    units: ['leakless-firewall.service'],
    maskedUnits: ['nftables.service'],
    files: [{ path: '/etc/x.conf', content: 'a\n', mode: 0o644, clause: 't' }],
  }),
];
const plan = planImage(assemble(policy, modules));
const inputs: BaseInputs = {
  plan,
  sources: { name: 'debian.sources', content: 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n' },
  compression: 'zstd',
  toolVersions: { debos: '1.1.1-2.1+b1', mmdebstrap: 'mmdebstrap 1.3.5', mksquashfs: 'mksquashfs version 4.5.1' },
};

describe('the base recipe', () => {
  const base = baseRecipe(inputs);
  it('renders exactly (snapshot)', async () => {
    await expect(base.yaml).toMatchFileSnapshot('./__snapshots__/base-recipe.yaml');
  });
  it('bootstraps with mmdebstrap into $ROOTDIR, then users, then packages (users before any package that would create them), then saves the .debs before cleanup', () => {
    expect(base.recipe.actions.map((a) => a.description)).toEqual([
      'bootstrap',
      'users',
      'initramfs-hook',
      'packages',
      'debs',
      'cleanup',
      'export',
      'squashfs',
    ]);
    expect(base.yaml).toContain('mmdebstrap --mode=root --variant=minbase --skip=essential/unlink --skip=cleanup/apt/cache');
    // the initramfs compressor is there before the kernel's package makes the initramfs
    expect(base.yaml).toContain('--skip=cleanup/apt/cache --include=zstd');
    expect(base.yaml).toContain('"$ROOTDIR" "$RECIPEDIR"/apt/fetch/*');
    expect(base.recipe.actions[3]).toMatchObject({ action: 'run', chroot: true, script: 'scripts/packages.sh' });
    expect(base.files.get('scripts/packages.txt')!.content).toBe(plan.packages.map((p) => `${p}\n`).join(''));
    // the recorded sources are keyed, the packages are fetched from wherever `fetch` says
    expect(base.files.get('apt/fetch/debian.sources')!.content).toBe(inputs.sources.content);
    expect(base.files.get('scripts/image-sources/debian.sources')!.content).toBe(inputs.sources.content);
  });
  it('keys the base on what it contains: not where the .debs come from nor the order apt is handed them; the resolved versions are in', () => {
    const k = baseKey(base, inputs);
    const fetched = { ...inputs, fetch: { name: 'saved-repo.list', content: 'deb [trusted=yes] http://127.0.0.1:8642/ ./\n' } };
    const rf = baseRecipe(fetched);
    expect(rf.files.get('apt/fetch/saved-repo.list')).toBeDefined();
    expect(rf.files.get('scripts/image-sources/debian.sources')!.content).toBe(inputs.sources.content);
    expect(baseKey(rf, fetched)).toBe(k);
    const reversed = { ...inputs, packageOrder: 'reversed' as const };
    const rr = baseRecipe(reversed);
    expect(rr.files.get('scripts/packages.txt')!.content).toBe(
      [...plan.packages]
        .reverse()
        .map((p) => `${p}\n`)
        .join(''),
    );
    expect(baseKey(rr, reversed)).toBe(k);
    const resolved = { ...inputs, resolved: [{ name: 'tor', version: '0.4.8.16-1~deb12u1', arch: 'amd64' }] };
    const moved = { ...inputs, resolved: [{ name: 'tor', version: '0.4.8.17-1~deb12u1', arch: 'amd64' }] };
    expect(baseKey(base, resolved)).not.toBe(k);
    expect(baseKey(base, moved)).not.toBe(baseKey(base, resolved));
    expect(() => baseRecipe({ ...inputs, fetch: { name: 'sources', content: '' } })).toThrow(/\.list or \.sources/);
  });
  it('writes the users with their fixed ids as data for users.sh', () => {
    expect(usersTsv(plan).split('\n')).toContain('debian-tor\t106\t112\t/var/lib/tor\t/bin/false\tno-home\ttor-daemon');
    expect(base.files.get('scripts/users.tsv')!.content).toBe(usersTsv(plan));
  });
  it('the cache key covers what the base contains and nothing of the module layer', () => {
    const k = baseKey(base, inputs);
    expect(baseKey(baseRecipe(inputs), inputs)).toBe(k);
    // module output only: same key
    const other = planImage(
      assemble(policy, [
        fake('fw', {
          packages: ['nftables'],
          units: ['leakless-firewall.service'],
          files: [{ path: '/etc/x.conf', content: 'CHANGED\n', mode: 0o644, clause: 't' }],
        }),
      ]),
    );
    expect(baseKey(baseRecipe({ ...inputs, plan: { ...other } }), { ...inputs, plan: other })).toBe(k);
    // a package, a tool version, the sources, the compressor: new key
    const morePkgs = planImage(assemble(policy, [fake('fw', { packages: ['nftables', 'tor'] })]));
    expect(baseKey(baseRecipe({ ...inputs, plan: morePkgs }), { ...inputs, plan: morePkgs })).not.toBe(k);
    const tools = { ...inputs, toolVersions: { ...inputs.toolVersions, mmdebstrap: 'mmdebstrap 1.4.0' } };
    expect(baseKey(baseRecipe(tools), tools)).not.toBe(k);
    const src = { ...inputs, sources: { ...inputs.sources, content: inputs.sources.content + '# other\n' } };
    expect(baseKey(baseRecipe(src), src)).not.toBe(k);
    const xz = { ...inputs, compression: 'xz' as const };
    expect(baseKey(baseRecipe(xz), xz)).not.toBe(k);
  });
});

describe('the module layer recipe', () => {
  const top = topRecipe({
    plan,
    compression: 'zstd',
    includesTar: Buffer.from('t'),
    imageTar: Buffer.from('i'),
    kernelArgs: KERNEL_ARGS,
    menuTitle: 'leakless 0.1.0 (default)',
  });
  it('renders exactly (snapshot)', async () => {
    await expect(top.yaml).toMatchFileSnapshot('./__snapshots__/top-recipe.yaml');
  });
  it('unpacks the tarballs (not overlay: it resets mtimes), enables units, squashes, then the ISO in post-processing', () => {
    expect(top.recipe.actions.map((a) => [a.action, a.description])).toEqual([
      ['unpack', 'includes'],
      ['unpack', 'image-files'],
      ['run', 'units'],
      ['run', 'squashfs-modules'],
      ['run', 'stage'],
      ['run', 'iso'],
    ]);
    expect(top.yaml).toContain(`scripts/layer.sh --mask e2scrub_all.timer --mask e2scrub_reap.service --mask nftables.service ${plan.units.join(' ')}`);
    expect(top.yaml).not.toContain('action: overlay');
  });
  it("puts Debian's signed shim and GRUB on the UEFI path; an unsigned GRUB only when asked (the Secure Boot anti-test)", () => {
    expect(top.yaml).toContain('mkiso.sh" iso leakless-amd64.iso LEAKLESS signed');
    const unsigned = topRecipe({
      plan,
      compression: 'zstd',
      includesTar: Buffer.from('t'),
      imageTar: Buffer.from('i'),
      kernelArgs: KERNEL_ARGS,
      menuTitle: 't',
      uefiGrub: 'unsigned',
    });
    expect(unsigned.yaml).toContain('LEAKLESS unsigned');
    expect(MKISO_SH).toContain('cp /usr/lib/shim/shimx64.efi.signed "$W/efi/BOOTX64.EFI"');
    expect(MKISO_SH).toContain('cp /usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed "$W/efi/grubx64.efi"');
  });
  it('grub.cfg boots live-boot with the serial console last; the self-test entry adds only leakless.selftest', () => {
    const cfg = grubCfg('t', KERNEL_ARGS);
    expect(cfg).toMatch(/linux \/live\/vmlinuz boot=live .*console=ttyS0,115200n8\n/);
    expect(cfg).toContain('console=ttyS0,115200n8 leakless.selftest\n');
    expect(() =>
      topRecipe({ plan, compression: 'zstd', includesTar: Buffer.from(''), imageTar: Buffer.from(''), kernelArgs: KERNEL_ARGS, menuTitle: 'x" ; y' }),
    ).toThrow(/quotes/);
  });
});

describe('the shell steps', () => {
  it('parse (sh -n / bash -n)', async () => {
    for (const [name, text, shell] of [
      ['users', USERS_SH, 'sh'],
      ['cleanup', CLEANUP_SH, 'sh'],
      ['export', EXPORT_SH, 'sh'],
      ['packages', PACKAGES_SH, 'sh'],
      ['debs', DEBS_SH, 'sh'],
      ['layer', LAYER_SH, 'sh'],
      ['stage', STAGE_SH, 'sh'],
      ['mkiso', MKISO_SH, 'bash'],
    ] as const) {
      const r = await execa(shell, ['-n'], { input: text, reject: false });
      expect(r.exitCode, `${name}: ${r.stderr}`).toBe(0);
    }
  });
});

// users.sh against a fake passwd/group database (getent/groupadd/useradd
// stand-ins on PATH): the fixed-uid logic, including the refusals.
describe('users.sh', () => {
  function world(passwd: string, group: string) {
    const d = mkdtempSync(join(tmpdir(), 'lk-users-'));
    mkdirSync(join(d, 'bin'));
    writeFileSync(join(d, 'passwd'), passwd);
    writeFileSync(join(d, 'group'), group);
    const tool = (name: string, body: string) => {
      writeFileSync(join(d, 'bin', name), `#!/bin/sh\nDB=${d}\n${body}\n`);
      chmodSync(join(d, 'bin', name), 0o755);
    };
    tool('getent', 'f="$DB/$1"; awk -F: -v k="$2" \'$1==k || $3==k {print; found=1} END {exit !found}\' "$f"');
    tool('groupadd', 'echo "$3:x:$2:" >> "$DB/group"');
    // useradd [--system] --uid U --gid G ... NAME: record uid, gid, home, shell
    tool(
      'useradd',
      'u= g= h= s=; while [ $# -gt 1 ]; do case "$1" in --uid) u=$2; shift;; --gid) g=$2; shift;; --home-dir) h=$2; shift;; --shell) s=$2; shift;; esac; shift; done; echo "$1:x:$u:$g::$h:$s" >> "$DB/passwd"',
    );
    writeFileSync(join(d, 'users.sh'), USERS_SH);
    chmodSync(join(d, 'users.sh'), 0o755);
    return d;
  }
  const run = (d: string, tsv: string) => {
    writeFileSync(join(d, 'users.tsv'), tsv);
    return execa(join(d, 'users.sh'), [], { reject: false, all: true, env: { PATH: `${join(d, 'bin')}:${process.env.PATH}` } });
  };
  const baseDb = ['root:x:0:0:root:/root:/bin/bash', '_apt:x:42:65534::/nonexistent:/usr/sbin/nologin', ''].join('\n');
  const baseGroups = ['root:x:0:', 'nogroup:x:65534:', 'systemd-journal:x:999:', ''].join('\n');

  it('creates missing users and groups with the fixed ids and checks the existing ones', async () => {
    const d = world(baseDb, baseGroups);
    try {
      const r = await run(d, usersTsv(plan));
      expect(r.exitCode, r.all).toBe(0);
      const passwd = readFileSync(join(d, 'passwd'), 'utf8');
      expect(passwd).toContain('debian-tor:x:106:112::/var/lib/tor:/bin/false');
      expect(passwd).toContain('amnesia:x:1000:1000::/home/amnesia:/bin/bash');
      expect(readFileSync(join(d, 'group'), 'utf8')).toContain('debian-tor:x:112:');
      expect(r.all).toContain('_apt present as 42:65534');
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
  it('refuses an existing user with other ids, a taken uid and a gid owned by another group', async () => {
    for (const [db, groups, tsv, msg] of [
      [
        baseDb.replace('_apt:x:42', '_apt:x:43'),
        baseGroups,
        '_apt\t42\t65534\t/nonexistent\t/usr/sbin/nologin\tno-home\tservice\n',
        'user _apt exists as 43:65534',
      ],
      [baseDb, baseGroups, 'intruder\t42\t42\t/nonexistent\t/usr/sbin/nologin\tno-home\tservice\n', 'uid 42 is taken by _apt'],
      [baseDb, baseGroups, 'svc\t500\t999\t/nonexistent\t/usr/sbin/nologin\tno-home\tservice\n', 'gid 999 belongs to group systemd-journal'],
    ] as const) {
      const d = world(db, groups);
      try {
        const r = await run(d, tsv);
        expect(r.exitCode).not.toBe(0);
        expect(r.all).toContain(msg);
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
    }
  });
});

import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTree, memoryTree, checkStatic, type PolicyDocument, type ToolRunner, type TreeReader } from '@leakless/policy';
import { normalizeNftListing } from '@leakless/selftest';
import {
  emit,
  lockdownFile,
  rulesetFile,
  listingSha256,
  ruleset,
  lockdownRuleset,
  RULESET_PATH,
  LOCKDOWN_PATH,
  UNIT_NAME,
  UNIT_PATH,
  dropInPath,
} from './index.js';
import { renderRule, renderTable } from '@leakless/nft';
import { policyOf } from './testing/policies.js';
import { needTool, skipUnless } from '@leakless/testing';
import { loadAndList, run } from './testing/tools.js';

const policy = policyOf();
const emission = emit(policy);
const tree = memoryTree(buildTree([emission]));
const runner: ToolRunner = async (cmd, args, opts) => run(cmd, args, opts?.input ?? '');
const noNft = skipUnless(
  'the firewall’s nft checks',
  needTool('unshare', ['-rn', 'nft', '--version'], 'nft in a throwaway user+network namespace; tools/leakless/install-deps.sh test installs nftables'),
);

function withFile(t: TreeReader, path: string, content: string): TreeReader {
  return { ...t, read: (p) => (p === path ? content : t.read(p)) };
}

async function staticResults(t: TreeReader) {
  return checkStatic({ policy, emissions: [emission], tree: buildTree([emission]) }, t, runner);
}

describe('emit', () => {
  it('emits the ruleset, the lockdown, the unit and the network-service drop-ins as vendor files, and nftables.service as a unit to mask', () => {
    expect(emission.files.map((f) => f.path).sort()).toEqual(
      [
        '/usr/lib/leakless/firewall.nft',
        '/usr/lib/leakless/firewall-lockdown.nft',
        '/usr/lib/systemd/system/leakless-firewall.service',
        '/usr/lib/systemd/system/NetworkManager.service.d/50-leakless-firewall.conf',
        '/usr/lib/systemd/system/networking.service.d/50-leakless-firewall.conf',
        '/usr/lib/systemd/system/systemd-networkd.service.d/50-leakless-firewall.conf',
      ].sort(),
    );
    expect([RULESET_PATH, LOCKDOWN_PATH, UNIT_PATH, dropInPath('NetworkManager.service')].every((p) => emission.files.some((f) => f.path === p))).toBe(true);
    expect(emission.packages).toEqual(['nftables']);
    expect(emission.units).toEqual([UNIT_NAME]);
    // a mask is data the image (systemctl mask) and the packages (maintainer scripts) apply, never a shipped file
    expect(emission.maskedUnits).toEqual(['nftables.service']);
    expect(emission.files.every((f) => f.clause.length > 0)).toBe(true);
  });

  it('is deterministic', () => {
    expect(JSON.stringify(emit(policyOf()).files)).toBe(JSON.stringify(emission.files));
  });

  it('refuses text that would break out of an nft string', () => {
    expect(() => renderRule({ match: {}, verdict: { kind: 'accept' }, clause: 'x" accept; #' })).toThrow(/cannot hold/);
    expect(() => renderRule({ match: { oifname: { name: 'a"b' } }, verdict: { kind: 'accept' }, clause: 'lan.x' })).toThrow(/cannot hold/);
  });
});

describe.skipIf(noNft)('static assertions on the emitted tree (real nft)', () => {
  it('all pass on the emitted tree', async () => {
    const results = await staticResults(tree);
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(16);
  });

  it('nft-check fails on a ruleset nft rejects, and file-is-ast on an edited file', async () => {
    const broken = withFile(tree, RULESET_PATH, rulesetFile(policy).replace('meta skuid 1000', 'meta skuid amnesia-no-such-user'));
    const r = await staticResults(broken);
    expect(r.find((x) => x.id === 'firewall.nft-check')).toMatchObject({ ok: false });
    expect(r.find((x) => x.id === 'firewall.file-is-ast')).toMatchObject({ ok: false });
  });

  it('nft-check fails when the tool is missing (a missing tool is never a pass)', async () => {
    const missing: ToolRunner = async () => ({ exitCode: 127, stdout: '', stderr: 'unshare: not found' });
    const r = await checkStatic({ policy, emissions: [emission], tree: buildTree([emission]) }, tree, missing);
    expect(r.find((x) => x.id === 'firewall.nft-check')).toMatchObject({ ok: false });
  });

  it.each([
    ['a stop command that flushes', (u: string) => u.replace('ExecStop=\n', 'ExecStop=/usr/sbin/nft flush ruleset\n')],
    ['no lockdown first', (u: string) => u.replace(/^ExecStartPre=\/usr\/sbin\/nft .*\n/m, '')],
    ['a module preload whose failure stops the unit', (u: string) => u.replace('ExecStartPre=-/usr/sbin/modprobe', 'ExecStartPre=/usr/sbin/modprobe')],
    ['another command before the lockdown', (u: string) => u.replace(/^(ExecStartPre=\/usr\/sbin\/nft .*\n)/m, 'ExecStartPre=/bin/true\n$1')],
    ['ordered after the network', (u: string) => u.replace('Before=network-pre.target', 'After=network-pre.target')],
    ['stopped at shutdown', (u: string) => u.replace('[Service]', 'Conflicts=shutdown.target\n\n[Service]')],
  ])('unit check fails with %s', async (_, edit) => {
    const planted = edit(tree.read(UNIT_PATH)!);
    expect(planted).not.toBe(tree.read(UNIT_PATH)); // the defect really is planted
    const r = await staticResults(withFile(tree, UNIT_PATH, planted));
    expect(r.find((x) => x.id === 'firewall.unit-fail-closed')).toMatchObject({ ok: false });
  });

  it('the unit preloads, in one modprobe, the modules the booted kernel autoloaded for the default rulesets', () => {
    // Seen on the image's kernel (6.1, TCG): /proc/modules before and after each load gained nf_tables (lockdown),
    // then nft_chain_nat nft_ct nft_log nf_log_syslog nft_masq nft_nat nft_reject_inet and what they pull in.
    const pre = tree
      .read(UNIT_PATH)!
      .split('\n')
      .filter((l) => l.startsWith('ExecStartPre='));
    expect(pre).toEqual([
      'ExecStartPre=-/usr/sbin/modprobe -a nf_log_syslog nf_tables nft_chain_nat nft_ct nft_log nft_masq nft_nat nft_reject_inet',
      `ExecStartPre=/usr/sbin/nft -f ${LOCKDOWN_PATH}`,
    ]);
  });

  it('unit check fails when NetworkManager does not Require the firewall', async () => {
    const nm = dropInPath('NetworkManager.service');
    const r = await staticResults(withFile(tree, nm, tree.read(nm)!.replace(/^Requires=.*\n/m, '')));
    expect(r.find((x) => x.id === 'firewall.unit-fail-closed')).toMatchObject({ ok: false });
  });
});

const noAnalyze = skipUnless(
  'systemd-analyze verify of the firewall unit',
  needTool('systemd-analyze', ['--version'], 'tools/leakless/install-deps.sh test installs systemd'),
);

describe.skipIf(noAnalyze)('systemd-analyze verify', () => {
  it('accepts the unit and the drop-ins (no unknown directive, no bad value)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'leakless-unit-'));
    try {
      const unit = join(dir, UNIT_NAME);
      writeFileSync(unit, tree.read(UNIT_PATH)!);
      const r = run('systemd-analyze', ['verify', unit]);
      expect(r.stderr.trim()).toBe('');
      expect(r.exitCode).toBe(0);
      // the check is real: a misspelt directive is reported
      writeFileSync(unit, tree.read(UNIT_PATH)!.replace('RemainAfterExit=yes', 'RemainAfterExt=yes'));
      expect(run('systemd-analyze', ['verify', unit]).stderr).toMatch(/RemainAfterExt/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(noNft)('loading with nft (unshare -rn)', () => {
  it('the kernel lists exactly the emitted table (what the runtime assertion compares)', () => {
    const { loads, listing } = loadAndList([lockdownFile(policy), rulesetFile(policy)]);
    expect(loads.map((l) => l.exitCode)).toEqual([0, 0]);
    expect(normalizeNftListing(listing.stdout)).toBe(normalizeNftListing(renderTable(ruleset(policy), { listing: true })));
    const check = emission.runtimeAssertions.find((a) => a.id === 'firewall.table-loaded')!.check;
    expect(check).toMatchObject({ kind: 'nft-table', sha256OfRules: listingSha256(ruleset(policy)) });
  });

  it.each([
    ['allowlist mode', (d: PolicyDocument) => Object.assign(d.loopback, { mode: 'allowlist', allowedTcpPorts: [631, 4101] })],
    ['tor.reachablePorts', (d: PolicyDocument) => Object.assign(d.tor, { reachablePorts: [443, 9001] })],
    [
      'no namespaces',
      (d: PolicyDocument) =>
        Object.assign(d, { netns: { ...d.netns, namespaces: [] }, tor: { ...d.tor, socksPorts: d.tor.socksPorts.filter((x) => !x.netns) } }),
    ],
  ])('round-trips through the kernel for a policy variant: %s', (_, edit) => {
    const p = policyOf(edit);
    const { loads, listing } = loadAndList([rulesetFile(p)]);
    expect(loads.map((l) => l.exitCode)).toEqual([0]);
    expect(normalizeNftListing(listing.stdout)).toBe(normalizeNftListing(renderTable(ruleset(p), { listing: true })));
  });

  it('loading twice leaves one table (atomic replace, no duplicate rules)', () => {
    const { loads, listing } = loadAndList([rulesetFile(policy), rulesetFile(policy)]);
    expect(loads.map((l) => l.exitCode)).toEqual([0, 0]);
    expect(listing.stdout.match(/^table inet leakless/gm)).toHaveLength(1);
    expect(listing.stdout.match(/comment "default: everything else is refused"/g)).toHaveLength(1);
  });

  it('fail closed: a ruleset that does not load leaves the lockdown in force, untouched', () => {
    const broken = rulesetFile(policy).replace('meta skuid 42', 'meta skuid _apt-unknown');
    const { loads, listing } = loadAndList([lockdownFile(policy), broken]);
    expect(loads.map((l) => l.exitCode)).toEqual([0, 1]);
    expect(normalizeNftListing(listing.stdout)).toBe(normalizeNftListing(renderTable(lockdownRuleset(), { listing: true })));
  });

  it('a failed reload keeps the previous policy ruleset (one transaction)', () => {
    const next = rulesetFile(policy).replace('policy drop;', 'policy maybe;');
    const { loads, listing } = loadAndList([rulesetFile(policy), next]);
    expect(loads.map((l) => l.exitCode)).toEqual([0, 1]);
    expect(listing.stdout).toContain('comment "lan.ipv4Ranges"');
  });
});

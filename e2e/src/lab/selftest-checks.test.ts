// The self-test's checks that can see attacks, proven in the lab against the
// emitted artifacts, each with a planted defect it must report
// (docs/threat-model.md#hostile-local-programs-tests):
//   - the firewall's active probes (as the desktop user and an unnamed uid:
//     the Internet, a LAN resolver, another user's DNS flow), each with its
//     positive control, pointed at the lab's hosts the way the networked boot
//     points them at its own (--destination);
//   - the inventory of every nftables table, chain and hook;
//   - who holds the Tor ports (the emitted torrc run by Debian's tor);
//   - disable_ipv6 on every interface.
import { allModules } from '@leakless/crosscheck';
import { ruleset, UNIT_NAME } from '@leakless/firewall';
import { mapRules, renderNft } from '@leakless/nft';
import { assemble, type Emission, memoryTree, type Policy, readPolicyFile, type RuntimeAssertion, type TreeReader } from '@leakless/policy';
import { evaluateRuntime, type Exec } from '@leakless/selftest';
import { isPerNetns, parseSysctlConf } from '@leakless/sysctl';
import { skipUnless } from '@leakless/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSutTor } from '../tornet/sut-tor.js';
import { antiTests } from './anti.js';
import { labFile, startServer } from './exec.js';
import { PYTHON } from './stage.js';
import { type Listener, startListener } from './listeners.js';
import { addVeth, inNs, must } from './netns.js';
import { labNeeds } from './prereq.js';
import { loadNft, startUnitInNs, unitFailure } from './sut.js';
import { buildLab, type Lab, teardownLab } from './topology.js';

const skip = skipUnless('the self-test checks in the lab (e2e/src/lab/selftest-checks.test.ts)', ...labNeeds('nft', 'ss', 'tor'));
const POLICY_FILE = new URL('../../../image-config/default.yaml', import.meta.url).pathname;
const SQUATTER = new URL('../adversary/attacks/py/attacker.py', import.meta.url);

describe.skipIf(skip)('the self-test’s attack checks, in the lab', () => {
  let policy: Policy;
  let emissions: readonly Emission[];
  let tree: TreeReader;
  let lab: Lab | undefined;
  const listeners: Listener[] = [];
  let inSut: Exec;

  const of = (module: string, pick: (a: RuntimeAssertion) => boolean) => emissions.find((e) => e.module === module)!.runtimeAssertions.filter(pick);
  const failing = async (as: readonly RuntimeAssertion[], destinations?: Record<string, string>) =>
    (await evaluateRuntime(as, inSut, destinations ? { destinations } : {})).filter((r) => !r.ok);
  const loadRuleset = async (text: string) => {
    const r = await loadNft(lab!.sut, text);
    if (r.exitCode !== 0) throw new Error(`nft -f: ${r.stderr}`);
  };

  beforeAll(async () => {
    const loaded = await readPolicyFile(POLICY_FILE);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
    policy = loaded.policy;
    const assembly = assemble(policy, allModules);
    emissions = assembly.emissions;
    tree = memoryTree(assembly.tree);
    lab = await buildLab(policy);
    const a = lab.addresses;
    // what the probes' destinations stand for: a web server on the Internet, a resolver there and one on the LAN
    listeners.push(
      await startListener(lab, lab.inet, [
        { id: 'inet:tcp/80', proto: 'tcp', addr: '::', port: 80 },
        { id: 'inet:udp/53', proto: 'udp', addr: a.internet4[0], port: 53 },
      ]),
      await startListener(lab, lab.lan, [{ id: 'lan:udp/53', proto: 'udp', addr: a.lanRouter, port: 53 }]),
    );
    const unitPath = tree.paths().find((p) => p.endsWith(`/systemd/system/${UNIT_NAME}`))!;
    const steps = await startUnitInNs(lab.sut, tree.read(unitPath)!, (p) => tree.read(p));
    // lockdown and ruleset both loaded (the module preload before them may fail: its failure is ignored, as systemd does)
    if (unitFailure(steps) || steps.filter((s) => / -f /.test(s.command)).length !== 2) throw new Error(`firewall unit: ${JSON.stringify(steps)}`);
    inSut = (cmd, args) => inNs(lab!.sut, cmd, args);
  }, 120_000);

  afterAll(async () => {
    if (lab) await teardownLab(lab);
  });

  describe('the firewall’s active probes', () => {
    const probes = () => of('firewall', (a) => a.check.kind === 'refused-probe');
    const destinations = () => ({
      internet: lab!.addresses.internet4[0],
      'lan-resolver': lab!.addresses.lanRouter,
      'internet-resolver': lab!.addresses.internet4[0],
    });

    it('hold against the emitted ruleset, as the desktop user and an unnamed uid, each after its control got through', async () => {
      expect(probes().map((a) => a.id)).toHaveLength(6);
      const results = await evaluateRuntime(probes(), inSut, { destinations: destinations() });
      expect(results.filter((r) => !r.ok)).toEqual([]);
      for (const r of results) expect(r.detail).toMatch(/refused here \((ECONNREFUSED|EPERM)/);
    });

    it.each([
      ['Tails’ rule order (no flow ownership)', /flow-reuse/],
      ['desktop-user-out', /internet\.desktop/],
      ['lan-dns-allowed', /lan-dns/],
    ])('see the planted weakness: %s', async (which, fails) => {
      const planted =
        which === 'Tails’ rule order (no flow ownership)'
          ? mapRules(
              ruleset(policy),
              (r) => r.clause.startsWith('docs/threat-model.md#flow-ownership'),
              () => [],
            )
          : antiTests.find((x) => x.id === which)!.plant(ruleset(policy), policy);
      await loadRuleset(renderNft(planted));
      try {
        const bad = await failing(probes(), destinations());
        expect(bad.length).toBeGreaterThan(0);
        expect(
          bad.every((r) => fails.test(r.id)),
          JSON.stringify(bad),
        ).toBe(true);
        expect(bad.every((r) => /LEAK/.test(r.detail))).toBe(true);
      } finally {
        await loadRuleset(renderNft(ruleset(policy)));
      }
    });

    it('fail without their destinations, and when the control cannot get through (silence cannot pass)', async () => {
      const none = await failing(probes());
      expect(none).toHaveLength(6);
      expect(none.every((r) => /no destination/.test(r.detail))).toBe(true);
      // nothing listens there: the control's query goes out and gets no answer
      const dead = await failing(probes(), { ...destinations(), 'internet-resolver': '203.0.113.99' });
      expect(dead.map((r) => r.id).sort()).toEqual(['firewall.refused.flow-reuse.desktop', 'firewall.refused.flow-reuse.unnamed']);
      expect(dead.every((r) => /the path is down/.test(r.detail))).toBe(true);
    });
  });

  describe('the nftables inventory', () => {
    const inventory = () => of('firewall', (a) => a.check.kind === 'nft-inventory');
    it.each([
      [
        'a netdev ingress chain',
        'table netdev lk_planted {\n\tchain in {\n\t\ttype filter hook ingress device "uplink0" priority -500; policy accept;\n\t}\n}\n',
      ],
      ['another table with an output hook', 'table ip lk_planted {\n\tchain out {\n\t\ttype filter hook output priority -10; policy accept;\n\t}\n}\n'],
    ])('holds with the emitted table alone, and sees %s beside it', async (_, planted) => {
      expect(await failing(inventory())).toEqual([]);
      const family = planted.split(' ')[1]!;
      await loadRuleset(planted);
      try {
        const bad = await failing(inventory());
        expect(bad.map((r) => r.id)).toEqual(['firewall.nft-inventory']);
        expect(bad[0]!.detail).toContain(`table ${family} lk_planted`);
      } finally {
        await must('ip', ['netns', 'exec', lab!.sut, 'nft', 'delete', 'table', family, 'lk_planted']);
      }
    });
  });

  describe('who holds the Tor ports', () => {
    const held = () => of('tor-config', (a) => a.check.kind === 'listeners');
    const settle = async (want: boolean) => {
      // tor opens its ports within a second or two of starting; bounded
      for (let i = 0; i < 40; i++) {
        if (((await failing(held())).length === 0) === want) return;
        await new Promise((r) => setTimeout(r, 500));
      }
    };

    it('holds while the emitted torrc runs in Debian’s tor; a squatter on its ports, or another listener outside loopback, fails it', async () => {
      const files = emissions.flatMap((e) => e.files);
      const tor = await startSutTor({ lab: lab!, policy, files, labDropIn: '' });
      try {
        await settle(true);
        expect(await failing(held())).toEqual([]);
        const open = await startServer(
          lab!,
          'sut',
          [PYTHON, '-c', 'import socket,time\ns=socket.socket()\ns.bind(("0.0.0.0",4444))\ns.listen()\nprint("up",flush=True)\ntime.sleep(60)'],
          {
            label: 'a listener outside loopback',
            ready: /^up$/,
          },
        );
        try {
          expect((await failing(held()))[0]?.detail).toContain('unexpected tcp listener 0.0.0.0:4444');
        } finally {
          await open.stop();
        }
      } finally {
        await tor.stop();
      }
      // tor down: a program of the desktop user takes the ControlPort and the system SocksPort
      const d = policy.desktopUser;
      const binds = [policy.controlPort, policy.socksPorts[0]!].map((l) => ({ proto: l.protocol, addr: l.address, port: l.port }));
      const squatter = await startServer(
        lab!,
        'sut',
        { helper: SQUATTER, args: ['squat', JSON.stringify({ binds, seconds: 30 })] },
        {
          as: { uid: d.uid, gid: d.gid },
          label: 'a squatter on the Tor ports',
          ready: (l) => l.includes('"ready"'),
        },
      );
      try {
        const bad = await failing(held());
        expect(bad).toHaveLength(1);
        expect(bad[0]!.detail).toMatch(/127\.0\.0\.1:9052 held by python3, not tor/);
      } finally {
        await squatter.stop();
      }
    }, 90_000);
  });

  describe('disable_ipv6 on every interface', () => {
    const each = () => of('sysctl', (a) => a.check.kind === 'sysctl-interfaces');
    it('holds after the emitted sysctls, for interfaces there before and after them; one interface switched back on fails it', async () => {
      // the emitted net.* settings, as systemd-sysctl would apply them in this namespace
      const lines = tree
        .paths()
        .filter((p) => p.includes('/sysctl.d/'))
        .sort()
        .flatMap((p) => [...parseSysctlConf(tree.read(p)!).entries].filter(([k]) => isPerNetns(k)).map(([k, v]) => `${k} = ${v}`));
      const conf = labFile(lab!, 'net-sysctl.conf', `${lines.join('\n')}\n`);
      await must('ip', ['netns', 'exec', lab!.sut, 'sysctl', '-q', '-p', conf]);
      await addVeth({ ns: lab!.sut, ifname: 'lk-late0', addrs: [] }, { ns: lab!.lan, ifname: 'lk-late1', addrs: [] });
      expect(each().map((a) => a.id)).toEqual(['sysctl.each-interface.ipv6.disable_ipv6']);
      expect(await failing(each())).toEqual([]);
      await must('ip', ['netns', 'exec', lab!.sut, 'sysctl', '-q', '-w', `net.ipv6.conf.${lab!.uplink}.disable_ipv6=0`]);
      const bad = await failing(each());
      expect(bad[0]?.detail).toContain(`${lab!.uplink} = 0 (expected 1)`);
    });
  });
});

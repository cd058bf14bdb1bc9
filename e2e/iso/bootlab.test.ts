// The booted image on a network (npm run e2e): the ISO this run built boots
// with a NIC on a tap inside the lab (never user-mode networking), DHCP and
// DNS from dnsmasq on the lab's LAN, the private Tor network, the
// connectivity-check host and the htpdate pools in the lab's Internet. One
// capture on the tap from before the firmware starts until QEMU exits, every
// frame classified against the allow-list (e2e/src/bootlab/classify.ts). The
// test-only settings reach the guest only through QEMU's fw_cfg
// (docs/threat-model.md#test-settings-fw-cfg); the guest's actions are driven
// over the lab agent's virtio-serial port.
//
//   clean run (BIOS): boot, DHCP, pre-Tor check, Tor bootstrap, htpdate; a
//     request as the desktop user through its SocksPort, one from tbb, a
//     lookup through the DNSPort; the self-test; fail-closed windows
//     (firewall restart, link reconnect, tor killed), each with its own
//     capture and senders as the desktop user and an unnamed uid; shutdown
//     with a last probe from systemd-shutdown
//   no settings (UEFI) and malformed settings: none of it is used; tor dials
//     the real authorities and those packets die in the lab
//   corrupted ruleset (planted image): no interface comes up, nothing is sent
//   anti-tests (planted images): an ordinary user's direct connection is
//     reported as a leak; a firewall ordered after NetworkManager fails the
//     corrupted-ruleset scenario
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import * as firewall from '@leakless/firewall';
import { allModules } from '@leakless/crosscheck';
import { renderNft } from '@leakless/nft';
import { assemble, type Assembly, type Policy, readPolicyFile, type Tree, UNITS } from '@leakless/policy';
import { buildIso, chooseAccel, probeKernelSource } from '@leakless/image';
import type { SelftestReport } from '@leakless/selftest';
import { type Missing, needTool, skipUnless } from '@leakless/testing';
import { antiTests, labNeeds, must, sh } from '../src/lab/index.js';
import { type Classification, describePacket } from '../src/bootlab/classify.js';
import { BOOTLAB_HOSTS, type BootLab, startBootLab } from '../src/bootlab/lab.js';
import { type BootReport, type ScenarioReport, writeBootReport } from '../src/bootlab/report.js';
import { type Finished, type Run, startRun, type Window } from '../src/bootlab/run.js';
import {
  activeProbesOnBoot,
  analyzeNotes,
  bootToTor,
  corruptedRuleset,
  firewallRestart,
  guestRequests,
  lanIdentifiers,
  linkReconnect,
  type Milestones,
  milestoneTimes,
  type Outcome,
  secs,
  selftestOnBoot,
  shutdownProbe,
  torKilled,
  until,
  usesNoSettings,
  wholeRun,
} from '../src/bootlab/scenarios.js';
import { imageTorDefaults } from '../src/bootlab/tor-defaults.js';
import { cache, installHint, printFigures, repo, sharedIso, work } from './shared.js';

const needFile = (path: string, what: string): Missing => (existsSync(path) ? undefined : `${what} (${path}) is missing`);
const skip = skipUnless(
  'the networked boot (e2e/iso/bootlab.test.ts)',
  ...labNeeds('nft', 'tcpdump', 'tor', 'tor-gencert', 'dnsmasq', 'openssl'),
  needTool('ping', ['-V'], installHint),
  needTool('qemu-system-x86_64', ['--version'], installHint),
  needTool('unsquashfs', ['-help'], installHint),
  needTool('xorriso', ['-version'], installHint),
  needTool('debos', ['--help'], installHint),
  needFile('/usr/share/OVMF/OVMF_CODE_4M.fd', 'OVMF'),
);

const OUT = join(repo, 'dist', 'lab', 'boot');
/**
 * The clean run on slot 0; the boots that need no clean run (no settings,
 * malformed settings, the corrupted ruleset, the anti-tests) on three more,
 * started once the clean run's self-test reported (so the clean run's boot
 * figures are its own): their boots overlap the clean run's fail-closed
 * windows, where its guest mostly waits. Sequentially they took 18 minutes.
 */
const SLOTS = 4;
/** The boots beside the clean run read no self-test and need no second vCPU (see RunOptions). */
const SIDE = { selftest: false, cpus: 1 } as const;

/** Authority and fallback lines as tor's binary carries them (its compiled-in directory endpoints). */
const TOR_STRINGS = [
  'moria1 orport=9201 no-v2 v3ident=F533C81CEF0BC0267857C99B2F471ADF249FA232 128.31.0.39:9231 1A25C6358DB91342AA51720A5038B72742732498',
  'tor26 orport=443 v3ident=2F3DF9CA0E5D36F2685A2DA67184EB8DCB8CBA8C ipv6=[2a02:16a8:662:2203::1]:443 217.196.147.77:80 FAA4 BCA4',
  'dizum orport=443 v3ident=E8A9C45EDE6D711294FADF8E7951F4DE6CA56B58 45.66.35.11:80 7EA6 EAD6 FD83 083C 538F 4403 8BBF A077 587D D755',
  '"185.220.101.1:80 orport=443 id=0123456789ABCDEF0123456789ABCDEF01234567"',
  '"192.0.2.200:9030 orport=9001 id=89ABCDEF0123456789ABCDEF0123456789ABCDEF"',
  // tor 0.4.8's fallback lines: no DirPort
  '"176.65.134.37 orport=443 id=8ECBA648364559FE79DBC70246C0CAABE083B46D"',
  '" ipv6=[2602:f915:e:563e::1]:443"',
  '162.201.194.145 orport=9001 id=345F576F29CA1F2A3B86262A6165E2F9F1AAAD8D ipv6=[2600:1700:3fc0:cdb0::44]:9001',
];

describe.skipIf(skipUnless('reading tor from an ISO', needTool('xorriso', ['-version'], installHint), needTool('mksquashfs', ['-version'], installHint)))(
  "the image's tor defaults",
  () => {
    it('are read from the ISO without mounting it (this kernel may have no iso9660 driver)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'lk-tordefaults-'));
      try {
        const root = join(dir, 'root');
        mkdirSync(join(root, 'usr', 'bin'), { recursive: true });
        // the strings among binary noise, as in the real executable
        writeFileSync(join(root, 'usr', 'bin', 'tor'), Buffer.concat(TOR_STRINGS.flatMap((l) => [Buffer.from([0, 1, 2, 0]), Buffer.from(l)])));
        mkdirSync(join(dir, 'iso', 'live'), { recursive: true });
        await must('mksquashfs', [root, join(dir, 'iso', 'live', 'filesystem.squashfs'), '-quiet', '-noappend']);
        const iso = join(dir, 'test.iso');
        await must('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-o', iso, join(dir, 'iso')]);
        const eps = await imageTorDefaults(iso);
        const keys = eps.map((e) => `${e.address}:${e.port}`).sort();
        expect(keys).toEqual(
          [
            '128.31.0.39:9201',
            '128.31.0.39:9231',
            '217.196.147.77:443',
            '217.196.147.77:80',
            '45.66.35.11:443',
            '45.66.35.11:80',
            '185.220.101.1:443',
            '185.220.101.1:80',
            '192.0.2.200:9001',
            '192.0.2.200:9030',
            '176.65.134.37:443',
            '162.201.194.145:9001',
          ].sort(),
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);

describe.skipIf(skip).sequential('the booted image on a network: every packet from power-on to power-off', () => {
  let policy: Policy;
  let assembly: Assembly;
  let iso: string;
  let expectedAssertions: number;
  let accel: 'kvm' | 'tcg';
  let bl: BootLab;
  const t0 = Date.now();
  const scenarios: ScenarioReport[] = [];
  const boots: BootReport['boots'][number][] = [];
  const figures: Record<string, string> = {};
  const m: Milestones = {};
  const say = (x: string) => console.log(`[bootlab ${((Date.now() - t0) / 1000).toFixed(0)} s] ${x}`);

  /** A scenario's body, run now; its outcome or error and how long it took. */
  interface Ran {
    readonly o?: Outcome;
    readonly err?: Error;
    readonly seconds: number;
  }
  const run = async (body: () => Promise<Outcome>): Promise<Ran> => {
    const t = Date.now();
    try {
      return { o: await body(), seconds: (Date.now() - t) / 1000 };
    } catch (e) {
      return { err: e as Error, seconds: (Date.now() - t) / 1000 };
    }
  };
  /** Run a scenario (or take one already running), record it for the report whatever happens; the test fails on any problem. */
  async function scenario(name: string, claim: string, body: (() => Promise<Outcome>) | Promise<Ran>): Promise<void> {
    const { o, err, seconds } = await (typeof body === 'function' ? run(body) : body);
    const problems = [...(o?.problems ?? []), ...(err ? [`could not finish: ${err.message.split('\n').slice(0, 20).join(' / ')}`] : [])];
    const c = o?.classification;
    scenarios.push({
      name,
      claim,
      ok: problems.length === 0,
      detail: [...(o?.notes ?? []), ...problems.map((p) => `PROBLEM: ${p}`)],
      seconds,
      packets: c?.packets.length ?? 0,
      flows: c?.flows.length ?? 0,
    });
    figures[`time: ${name}`] = `${seconds.toFixed(0)} s`;
    if (c)
      figures[`packets/flows: ${name}`] =
        `${c.packets.length} packets (${c.packets.filter((p) => p.from === 'guest').length} from the guest), ${c.flows.length} flows`;
    for (const n of o?.notes ?? []) say(`${name}: ${n}`);
    expect(problems).toEqual([]);
  }
  const recordBoot = (name: string, firmware: string, settings: string, done: Finished, notes: readonly string[], timings: Milestones = {}) =>
    boots.push({
      name,
      firmware,
      settings,
      seconds: done.exit.at / 1000,
      timings: milestoneTimes(timings),
      classification: done.whole,
      notes: [...notes, ...analyzeNotes(timings)],
    });

  beforeAll(async () => {
    const loaded = await readPolicyFile(join(repo, 'image-config', 'default.yaml'));
    if (!loaded.ok) throw new Error('default policy invalid');
    policy = loaded.policy;
    assembly = assemble(policy, allModules);
    const shared = await sharedIso();
    iso = shared.iso;
    expectedAssertions = shared.manifest.selftest.assertions as number;
    const d = await chooseAccel({ accel: 'auto', forDebos: false, kernel: probeKernelSource(cache), note: say });
    accel = d.accel;
    figures.accelerator = `${d.accel} (${d.accelReason})`;
    const tl = Date.now();
    bl = await startBootLab({ policy, log: say, slots: SLOTS });
    figures['lab up (namespaces, private Tor network, servers)'] = secs(Date.now() - tl);
  }, 1_800_000);

  afterAll(async () => {
    // a clean run that failed before its shutdown still has a guest: stop it before the lab goes
    if (clean?.boot.running()) await clean.finish().catch(() => undefined);
    await bl?.teardown();
    figures['networked suite total'] = secs(Date.now() - t0);
    if (boots.length || scenarios.length) {
      const r = writeBootReport({ generatedAt: new Date().toISOString(), iso: iso ?? '', accel: accel ?? 'tcg', boots, scenarios, figures });
      printFigures(`networked boot report: ${r.markdown}`, figures);
    }
  }, 120_000);

  // ---- the clean run: one boot, one capture, with the fail-closed windows inside it --------------------

  let clean: Run;
  let cleanDone: Finished | undefined;

  it('clean run: DHCP, the pre-Tor check, Tor bootstrap to 100 % and htpdate through Tor, on the lab network', async () => {
    await scenario(
      'clean boot',
      'the image boots on the lab LAN with the test settings, checks the time, bootstraps Tor and sets the clock through it',
      async () => {
        clean = await startRun({ bl, name: 'clean', iso, firmware: 'bios', accel, settings: { kind: 'lab' }, outDir: OUT, timeoutMs: 1_500_000 });
        return bootToTor(bl, clean, m);
      },
    );
  });

  it('requests in the guest: as the desktop user through its SocksPort, from the tbb namespace through its SocksPort, a lookup through the DNSPort', async () => {
    await scenario('requests', 'the desktop user, the tor-only namespace and the DNSPort reach the lab Internet through the private Tor network', () =>
      guestRequests(bl, clean),
    );
  });

  let selftestReport: SelftestReport | undefined;

  it('the self-test passes on the networked boot, and it checks kernel.unprivileged_userns_clone = 0 in the booted kernel', async () => {
    onTestFinished(startSideBoots);
    await scenario('self-test', 'every runtime assertion holds on the networked boot', async () => {
      const o = await selftestOnBoot(clean, assembly, expectedAssertions, m);
      selftestReport = o.report;
      figures['boot to self-test result (clean run, networked)'] = `${secs(m.selftest)} under ${accel}`;
      if (m.analyze) figures['systemd-analyze (clean run, read back from the guest)'] = m.analyze.time.replace(/\s+/g, ' ');
      return o;
    });
  });

  it('the self-test’s active probes run on this boot, where they reach something, and each passes', async () => {
    await scenario('self-test active probes', 'the refused probes and their positive controls ran against the lab’s destinations', async () => {
      if (!selftestReport) throw new Error('the self-test did not report');
      return activeProbesOnBoot(assembly, selftestReport);
    });
  });

  it('fail-closed: `systemctl restart` of the firewall unit opens no window', async () => {
    await scenario('firewall restart', 'restarting the firewall unit lets nothing out and leaves the ruleset as it was', () => firewallRestart(bl, clean));
  });

  it('fail-closed: NetworkManager reconnects the link: resolv.conf and the ruleset unchanged, nothing leaks during the reconnect', async () => {
    await scenario('link reconnect', 'a lost and regained link changes neither resolv.conf nor the ruleset, and lets nothing out', () =>
      linkReconnect(bl, clean),
    );
  });

  it('fail-closed: tor killed in the guest: nothing but ARP and DHCP leaves', async () => {
    await scenario('tor killed', 'with tor dead, no user and no service gets anything out', () => torKilled(bl, clean));
  });

  it('fail-closed: shutdown: nothing leaves after the network goes down, and the ruleset is never flushed', async () => {
    await scenario(
      'shutdown',
      'from NetworkManager stopping to power-off only the positive control leaves; the ruleset is loaded at the last moment',
      async () => {
        const o = await shutdownProbe(bl, clean, m);
        cleanDone = o.done;
        figures['boot to DHCP (clean run)'] = secs(m.dhcp);
        figures['boot to Tor bootstrap 100 % (clean run)'] = secs(m.torBootstrap);
        figures['boot to power-off (clean run)'] = secs(m.powerOff);
        recordBoot('clean', 'bios', 'lab (accepted)', o.done, o.notes, m);
        return o;
      },
    );
  });

  it('the whole clean run’s capture: zero leaks, nothing unparsable, no IPv6 (dist/lab/boot-capture.{md,json})', async () => {
    await scenario('whole clean run', 'from power-on to power-off only the allowed classes leave the guest', async () => {
      if (!cleanDone) throw new Error('the clean run did not finish');
      figures['clean run: packets by class'] = Object.entries(cleanDone.whole.counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      return wholeRun(cleanDone.whole);
    });
  });

  it('the LAN learns no identifier: no DHCP host name, FQDN or client id naming the NIC, and never the NIC’s own MAC', async () => {
    await scenario('LAN identifiers', 'nothing the guest sends names the machine to the LAN', async () => {
      if (!cleanDone) throw new Error('the clean run did not finish');
      return lanIdentifiers(cleanDone.whole);
    });
  });

  // ---- boots beside the clean run: none of the test settings, the corrupted ruleset, the anti-tests -----

  async function noSettingsBoot(
    slot: number,
    name: string,
    firmware: 'bios' | 'uefi',
    settings: { kind: 'absent' } | { kind: 'raw'; content: string },
    logged: RegExp,
  ): Promise<Outcome> {
    const tor = await imageTorDefaults(iso);
    const r = await startRun({ bl, slot, name, iso, firmware, accel, settings, outDir: OUT, timeoutMs: 900_000, ...SIDE });
    const o = await usesNoSettings(bl, r, logged, tor);
    recordBoot(name, firmware, settings.kind === 'absent' ? 'absent' : 'malformed (refused)', o.done, o.notes);
    return o;
  }
  const malformedSettings = (slot: number) => {
    const ok = bl.slots[slot]!.settings;
    return `${JSON.stringify({ format: 'leakless-test-settings', version: 1, torrc: [...ok.torrc, 'SocksPort 0.0.0.0:9050'], ca: ok.ca, agent: true })}\n`;
  };

  // planted images: module-only rebuilds from the cached base
  async function planted(name: string, transformTree: (t: Tree) => Tree): Promise<string> {
    const t = Date.now();
    const r = await buildIso(assembly, {
      outDir: join(work, `bootlab-${name}`),
      cacheDir: cache,
      workRoot: join(work, 'work', name),
      verify: 'report',
      transformTree,
    });
    figures[`module-only rebuild: ${name}`] = `${secs(Date.now() - t)} (base cached: ${r.base.cached})`;
    if (!r.base.cached) throw new Error(`the planted image ${name} rebuilt the base instead of reusing it`);
    return r.iso;
  }
  /** Each matching file edited once (undefined: removed); an edit that changes nothing throws, since a plant that silently does not apply would test the unplanted image. */
  const editFile = (tree: Tree, pred: (path: string) => boolean, edit: (content: string) => string | undefined): Tree => {
    if (!tree.files.some((f) => pred(f.path))) throw new Error('planting: no such file in the tree');
    return {
      ...tree,
      files: tree.files.flatMap((f) => {
        if (!pred(f.path)) return [f];
        const content = edit(f.content);
        if (content === f.content) throw new Error(`planting: the edit of ${f.path} did not apply`);
        return content === undefined ? [] : [{ ...f, content }];
      }),
    };
  };
  /** Tails' 2009 bug: a ruleset naming a user that does not exist is refused as a whole. */
  const corruptRuleset = (tree: Tree) =>
    editFile(
      tree,
      (p) => p === firewall.RULESET_PATH,
      (c) => c.replace(/meta skuid (\d+)/, 'meta skuid no-such-user-$1'),
    );
  /**
   * The firewall ordered after the network is online (the common `After=network-online.target` mistake) and
   * NetworkManager no longer requiring it. NetworkManager's DHCP then surely leaves before the lockdown: ordered
   * only after NetworkManager.service, the lockdown raced NetworkManager's first packet and sometimes won. The
   * namespaces' unit orders after the firewall, so it no longer orders before the network either: with a cycle,
   * systemd would drop a job to break it, and the anti-test would test systemd's choice of job, not the order.
   */
  const firewallAfterNm = (tree: Tree) => {
    let t = corruptRuleset(tree);
    t = editFile(
      t,
      (p) => p.endsWith(`/${firewall.UNIT_NAME}`),
      (c) => c.replace(/^Before=network-pre\.target$/m, 'After=network-online.target\nWants=network-online.target'),
    );
    t = editFile(
      t,
      (p) => p === firewall.dropInPath(UNITS.networkManager),
      () => undefined,
    );
    const network = new Set(['network-pre.target', UNITS.networkManager, 'network.target']);
    return editFile(
      t,
      (p) => p.endsWith(`/${UNITS.netns}`),
      (c) =>
        c.replace(
          /^Before=(.*)$/m,
          (_, units: string) =>
            `Before=${units
              .split(' ')
              .filter((u) => !network.has(u))
              .join(' ')}`,
        ),
    );
  };
  const plantedException = (tree: Tree) => {
    const anti = antiTests.find((a) => a.id === 'desktop-user-out');
    if (!anti) throw new Error('no desktop-user-out anti-test in the lab');
    const text = renderNft(anti.plant(firewall.ruleset(policy), policy), ['ANTI-TEST: the desktop user may send anything off loopback']);
    return editFile(
      tree,
      (p) => p === firewall.RULESET_PATH,
      () => text,
    );
  };
  const ping = (broadcast: string) => sh('ip', ['netns', 'exec', bl.netns, 'ping', '-b', '-c', '3', '-i', '0.3', '-W', '1', broadcast]);

  async function corruptedBoot(slot: number, name: string, image: string): Promise<Outcome & { readonly serial: string }> {
    const r = await startRun({ bl, slot, name, iso: image, firmware: 'bios', accel, settings: { kind: 'lab' }, outDir: OUT, timeoutMs: 900_000, ...SIDE });
    const o = await corruptedRuleset(r, ping);
    recordBoot(name, 'bios', 'lab (accepted)', o.done, o.notes);
    return { ...o, serial: await r.boot.serial() };
  }

  /** The anti-test: the planted exception's leak is reported, attributed to the desktop user, and reached the sink. */
  async function plantedExceptionBoot(slot: number, image: string): Promise<Outcome> {
    const r = await startRun({
      bl,
      slot,
      name: 'planted-exception',
      iso: image,
      firmware: 'bios',
      accel,
      settings: { kind: 'lab' },
      outDir: OUT,
      timeoutMs: 900_000,
      ...SIDE,
    });
    let done: Finished;
    let w: Window | undefined;
    try {
      await r.boot.hello(420_000);
      await until(
        'an address on the NIC',
        () => r.status(),
        (st) => st.links.some((l) => !l.name.startsWith('veth') && l.ipv4.length > 0),
        300_000,
        2000,
      );
      w = await r.window('planted', async () => ({}), { attempts: 10, gapMs: 200, settleMs: 2000 });
    } finally {
      done = await r.finish();
    }
    if (!w) throw new Error('the window did not run');
    const leaks = w.classification.leaks;
    const sunk = bl.sink().filter((e) => e.token?.startsWith(`${r.token}-planted`));
    const notes = [
      `leaks reported: ${leaks.length}; first: ${leaks.slice(0, 3).map(describePacket).join(' | ')}`,
      `reached the sink: ${JSON.stringify(sunk.slice(0, 4))}`,
    ];
    recordBoot('planted-exception', 'bios', 'lab (accepted)', done, notes);
    const problems: string[] = [];
    if (!leaks.some((p) => p.what.includes(`→ ${BOOTLAB_HOSTS.sink}:`))) problems.push('NOT CAUGHT: no leak to the sink in the capture');
    if (!sunk.some((e) => e.token?.endsWith('-dt'))) problems.push("the desktop user's TCP sender did not reach the sink: the plant did not work");
    // the plant opens the desktop user only: the unnamed uid stays refused, so the leak is attributed right
    const unnamed = sunk.filter((e) => /-u[tu]$/.test(e.token ?? ''));
    if (unnamed.length) problems.push(`the unnamed uid got out too: ${JSON.stringify(unnamed)}`);
    return { problems, notes, classification: w.classification };
  }

  /** The anti-test: the corrupted-ruleset scenario reports a firewall that starts after NetworkManager. */
  async function firewallAfterNmBoot(slot: number, image: string): Promise<Outcome> {
    const o = await corruptedBoot(slot, 'firewall-after-nm', image);
    const caught = o.problems.some((p) => /sent while the ruleset was corrupted: .*(udp 0\.0\.0\.0:68|arp)/.test(p));
    // systemd breaks an ordering cycle by dropping a job, and which one it drops decides what leaves: the plant must have none
    const cycle = o.serial.split('\n').find((l) => /ordering cycle/i.test(l));
    return {
      problems: [
        ...(caught ? [] : ['NOT CAUGHT: the corrupted-ruleset scenario did not report the DHCP or ARP NetworkManager sent']),
        ...(cycle ? [`the plant has an ordering cycle, so the boot tested systemd's way out of it: ${cycle.trim()}`] : []),
      ],
      notes: [`what the scenario reported: ${o.problems.slice(0, 10).join(' | ') || 'nothing'}`],
      ...(o.classification ? { classification: o.classification } : {}),
    };
  }

  const side = new Map<string, Promise<Ran>>();
  /** The boots beside the clean run, each slot's one after another; each records its own time. */
  function startSideBoots(): void {
    if (side.size || !bl) return;
    const chain = (steps: readonly [string, () => Promise<Outcome>][]) => {
      let prev: Promise<unknown> = Promise.resolve();
      for (const [name, body] of steps) {
        const p = prev.then(() => run(body));
        side.set(name, p);
        prev = p;
      }
    };
    // one module-only rebuild at a time (each ~20 s): they share the cached base
    const corrupted = planted('corrupted-ruleset', corruptRuleset);
    const exception = corrupted.catch(() => undefined).then(() => planted('planted-exception', plantedException));
    const afterNm = exception.catch(() => undefined).then(() => planted('firewall-after-nm', firewallAfterNm));
    for (const p of [corrupted, exception, afterNm]) p.catch(() => undefined);
    chain([
      ['no settings', () => noSettingsBoot(1, 'no-settings', 'uefi', { kind: 'absent' }, /leakless-test-settings: absent/)],
      [
        'malformed settings',
        () => noSettingsBoot(1, 'malformed-settings', 'bios', { kind: 'raw', content: malformedSettings(1) }, /leakless-test-settings: REFUSED: torrc\[\d+\]/),
      ],
    ]);
    chain([
      ['corrupted ruleset', async () => corruptedBoot(2, 'corrupted-ruleset', await corrupted)],
      ['anti-test: firewall after NetworkManager', async () => firewallAfterNmBoot(2, await afterNm)],
    ]);
    chain([['anti-test: planted exception', async () => plantedExceptionBoot(3, await exception)]]);
  }
  const sideBoot = (name: string): Promise<Ran> => {
    startSideBoots();
    const p = side.get(name);
    if (!p) throw new Error(`no side boot ${name}`);
    return p;
  };

  // [test title, side boot, claim in the report]
  const SIDE_TESTS: readonly [string, string, string][] = [
    [
      'a boot without the test settings uses none of them: tor dials the real authorities and those packets die in the lab',
      'no settings',
      'without fw_cfg settings the image uses none of them, and its tor traffic dies in the lab',
    ],
    [
      'malformed test settings (a SocksPort smuggled in) are refused with the reason logged, and none of them is used',
      'malformed settings',
      'a malformed settings file is refused as a whole, with the reason on the console',
    ],
    [
      'fail-closed: the ruleset file corrupted: no interface comes up and nothing is sent',
      'corrupted ruleset',
      'a ruleset that does not load leaves the lockdown in force and no network at all',
    ],
    [
      'anti-test: a planted exception (the desktop user’s direct connection) is reported as a leak',
      'anti-test: planted exception',
      'an ordinary user’s direct connection is reported as a leak',
    ],
    [
      'anti-test: a firewall unit ordered after NetworkManager is caught by the corrupted-ruleset scenario',
      'anti-test: firewall after NetworkManager',
      'the fail-closed scenario reports a firewall that starts after the network',
    ],
  ];
  for (const [title, name, claim] of SIDE_TESTS) it(title, () => scenario(name, claim, sideBoot(name)));

  it('reports the figures', () => {
    printFigures('networked boot figures', figures);
    expect(Object.keys(figures).length).toBeGreaterThan(3);
  });
});

export type { Classification };

// `leakless boot --lab`: one networked boot in the boot lab, the same
// scenarios the e2e suite runs on its clean boot (scenarios.ts), the report
// in dist/lab/boot-capture.{md,json}. The CLI loads this file from the
// checkout (it needs the lab: namespaces, the private Tor network, tcpdump).
import { allModules } from '@leakless/crosscheck';
import type { Firmware } from '@leakless/image';
import { assemble, readPolicyFile } from '@leakless/policy';
import { startBootLab } from './lab.js';
import { type BootReport, type ScenarioReport, writeBootReport } from './report.js';
import { startRun } from './run.js';
import {
  activeProbesOnBoot,
  analyzeNotes,
  bootToTor,
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
  wholeRun,
} from './scenarios.js';

export interface LabBootRun {
  readonly iso: string;
  readonly policyFile: string;
  readonly firmware: Firmware;
  readonly accel: 'kvm' | 'tcg';
  /** The self-test's assertion count the image carries (from its manifest), when known. */
  readonly expectedAssertions?: number;
  /** Also the fail-closed windows (firewall restart, link reconnect, tor killed) before the shutdown. */
  readonly failClosed: boolean;
  /** Captures and QEMU logs. */
  readonly outDir: string;
  readonly log: (line: string) => void;
}

export interface LabBootResult {
  readonly ok: boolean;
  readonly scenarios: readonly ScenarioReport[];
  readonly figures: Readonly<Record<string, string>>;
  readonly markdown: string;
  readonly json: string;
}

export async function runLabBoot(o: LabBootRun): Promise<LabBootResult> {
  const loaded = await readPolicyFile(o.policyFile);
  if (!loaded.ok) throw new Error(`${o.policyFile}: ${loaded.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  const policy = loaded.policy;
  const assembly = assemble(policy, allModules);
  const t0 = Date.now();
  const figures: Record<string, string> = { accelerator: o.accel };
  const scenarios: ScenarioReport[] = [];
  const m: Milestones = {};
  const bl = await startBootLab({ policy, log: o.log });
  const boots: BootReport['boots'][number][] = [];
  try {
    const run = await startRun({
      bl,
      name: 'clean',
      iso: o.iso,
      firmware: o.firmware,
      accel: o.accel,
      settings: { kind: 'lab' },
      outDir: o.outDir,
      timeoutMs: 1_500_000,
    });
    const step = async <T extends Outcome>(name: string, claim: string, body: () => Promise<T>): Promise<T | undefined> => {
      const t = Date.now();
      o.log(`scenario: ${name}`);
      let out: T | undefined;
      let err: Error | undefined;
      try {
        out = await body();
      } catch (e) {
        err = e as Error;
      }
      const problems = [...(out?.problems ?? []), ...(err ? [`could not finish: ${err.message}`] : [])];
      const c = out?.classification;
      scenarios.push({
        name,
        claim,
        ok: problems.length === 0,
        detail: [...(out?.notes ?? []), ...problems.map((p) => `PROBLEM: ${p}`)],
        seconds: (Date.now() - t) / 1000,
        packets: c?.packets.length ?? 0,
        flows: c?.flows.length ?? 0,
      });
      for (const p of problems) o.log(`  PROBLEM: ${p}`);
      return out;
    };
    await step('clean boot', 'the image boots on the lab LAN, checks the time, bootstraps Tor and sets the clock through it', () => bootToTor(bl, run, m));
    await step('requests', 'the desktop user, the tor-only namespace and the DNSPort reach the lab Internet through Tor', () => guestRequests(bl, run));
    const st = await step('self-test', 'every runtime assertion holds on the networked boot', () => selftestOnBoot(run, assembly, o.expectedAssertions, m));
    await step('self-test active probes', 'the refused probes and their positive controls ran against the lab’s destinations', async () => {
      if (!st) throw new Error('the self-test did not report');
      return activeProbesOnBoot(assembly, st.report);
    });
    if (o.failClosed) {
      await step('firewall restart', 'restarting the firewall unit lets nothing out', () => firewallRestart(bl, run));
      await step('link reconnect', 'a lost and regained link changes neither resolv.conf nor the ruleset', () => linkReconnect(bl, run));
      await step('tor killed', 'with tor dead nothing gets out', () => torKilled(bl, run));
    }
    const sd = await step('shutdown', 'nothing after the network goes down; the ruleset is never flushed', () => shutdownProbe(bl, run, m));
    const done = sd?.done ?? (await run.finish());
    await step('whole run', 'from power-on to power-off only the allowed classes leave the guest', async () => wholeRun(done.whole));
    await step('LAN identifiers', 'nothing the guest sends names the machine to the LAN', async () => lanIdentifiers(done.whole));
    Object.assign(figures, {
      'boot to DHCP': secs(m.dhcp),
      'boot to Tor bootstrap 100 %': secs(m.torBootstrap),
      'boot to self-test result': secs(m.selftest),
      'systemd-analyze (read back from the guest)': m.analyze?.time.replace(/\s+/g, ' ') ?? '–',
      'boot to power-off': secs(m.powerOff),
      'packets by class': Object.entries(done.whole.counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
      flows: String(done.whole.flows.length),
    });
    boots.push({
      name: 'clean',
      firmware: o.firmware,
      settings: 'lab (accepted)',
      seconds: done.exit.at / 1000,
      timings: milestoneTimes(m),
      classification: done.whole,
      notes: analyzeNotes(m),
    });
  } finally {
    await bl.teardown();
  }
  figures.total = secs(Date.now() - t0);
  const paths = writeBootReport({ generatedAt: new Date().toISOString(), iso: o.iso, accel: o.accel, boots, scenarios, figures });
  return { ok: scenarios.every((s) => s.ok), scenarios, figures, ...paths };
}

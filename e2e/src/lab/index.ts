// The leakless network lab: closed network namespaces, real packets, real uids.
//
// Reusable pieces (other suites — the private Tor network, netns, htpdate —
// build on the same lab):
//
//   buildLab(policy, {suffix?})  → Lab      lk-sut/lk-lan/lk-inet-XXXX + one lk-<ns>-XXXX per policy namespace,
//                                            veths, routes, documentation-range Internet, RFC1918 LAN (topology.ts)
//   teardownLab(lab)                         delete every namespace it made, killing what runs inside; never throws
//   createNamespace / deleteNamespace / addVeth / addRoute / sysctl / inNs / sh / must   (netns.ts)
//   installScripts() → {dir, remove}         python helpers copied where every uid can read them
//   startListener(ns, specs, dir) → Listener TCP/UDP echo endpoints that log every arrival (token, peer); stop()
//   runProbes({ns, uid, gid}, specs, dir)    probes as a real uid (setpriv), concurrent, bounded; returns per-probe results
//   startCapture(ns, iface) → Capture        tcpdump of outgoing packets; stop() → parsed packets (parsePcap)
//   loadNft(ns, text), startUnitInNs(ns, unit, files)   load rulesets the way the image's unit does
//   buildMatrix / labListeners / principals  the probe matrix from the policy (matrix.ts)
//   expectation(policy, facts, principal, target)       the oracle (oracle.ts), independent of the compiler
//   runMatrix(...) → MatrixRun, judge(...) → Judgement   one run, attributed and judged against oracle + control run
//   checkInvariants(facts, packets)          the safety invariants, from the wire alone (invariants.ts)
//   antiTests, controlRuleset                planted leaks and the no-filtering control (anti.ts)
//   writeReport(report)                      Markdown + JSON under dist/lab/
//   skipLab(what) / labUnavailable()         no root: skip loudly; CI=true: fail
//
// Rules (SPEC §5): namespaces are joined only to each other, never to this
// machine's uplink; Internet = documentation ranges; every name has a random
// suffix; teardown runs in finally/afterAll, also on failure.
import type { Policy } from '@leakless/policy';
import { installScripts, startListener, type Listener } from './listeners.js';
import { labListeners } from './matrix.js';
import { buildLab, teardownLab, type Lab } from './topology.js';

export { buildLab, teardownLab, labAddresses, pickLanSubnet, type Lab, type LabAddresses } from './topology.js';
export { createNamespace, deleteNamespace, namespaceExists, addVeth, addRoute, sysctl, inNs, mustInNs, sh, must, uniqueSuffix, type Ran, type VethEnd } from './netns.js';
export { installScripts, startListener, PYTHON, type Listener, type ListenerSpec, type ListenerEvent } from './listeners.js';
export { runProbes, type ProbeSpec, type ProbeResult, type ProbeKind, type Sender } from './probes.js';
export { startCapture, parsePcap, PROTO, type Capture, type CapturedPacket } from './capture.js';
export { loadNft, startUnitInNs, type UnitStep } from './sut.js';
export { buildMatrix, labListeners, principals, targetsFor, specOf, DEST_CLASSES, type Probe, type Principal, type Target, type DestClass } from './matrix.js';
export { expectation, type Expectation, type LabFacts } from './oracle.js';
export { runMatrix, judge, attribute, type MatrixRun, type Judgement, type ProbeVerdict, type Outcome } from './run.js';
export { checkInvariants, type InvariantResult, type Maker } from './invariants.js';
export { antiTests, controlRuleset, type AntiTest } from './anti.js';
export { writeReport, renderMarkdown, reportJson, matrixTable, type LabReport, type AntiTestOutcome } from './report.js';
export { skipLab, labUnavailable } from './prereq.js';

export interface RunningLab {
  readonly lab: Lab;
  readonly scriptsDir: string;
  readonly listeners: readonly Listener[];
  /** Stop listeners, delete namespaces, remove scripts. Never throws. */
  teardown(): Promise<void>;
}

/** buildLab + the matrix's listeners in every namespace. Tears down what it made if it fails. */
export async function startLab(policy: Policy): Promise<RunningLab> {
  const scripts = installScripts();
  const listeners: Listener[] = [];
  let lab: Lab | undefined;
  const teardown = async () => {
    for (const l of listeners) await l.stop().catch(() => undefined);
    if (lab) await teardownLab(lab);
    scripts.remove();
  };
  try {
    lab = await buildLab(policy);
    for (const [ns, specs] of labListeners(policy, lab)) listeners.push(await startListener(ns, specs, scripts.dir));
    return { lab, scriptsDir: scripts.dir, listeners, teardown };
  } catch (e) {
    await teardown();
    throw e;
  }
}

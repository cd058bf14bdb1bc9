// The leakless network lab: closed network namespaces, real packets, real uids.
// Every lab suite (the firewall matrix, netns, the time tools, the private Tor
// network) builds on these pieces:
//
//   buildLab(policy, {namespaces?, suffix?}) → Lab   lk-sut/lk-lan/lk-inet-XXXX, veths, routes, documentation-range
//                                            Internet, RFC1918 LAN, the lab's directory; the policy namespaces
//                                            made by the lab or (namespaces: 'script') by the netns script in
//                                            the sut's holder (private /run/netns, /etc and /usr/lib overlays)   (topology.ts)
//   teardownLab(lab)                         stop what the lab started, delete its namespaces and directory; never throws
//   addInternetHosts(lab, addrs)             more Internet hosts (documentation ranges only)
//   run / runHelper / startServer (exec.ts)  a command, a staged helper, a server: where (sut, lan, inet, a policy
//                                            namespace), as a uid (setpriv), with files bound over paths, via a launcher
//   helper / labFile / writeEtc              stage a helper, write a lab file, write /etc or /usr/lib through the holder
//   startProcess (process.ts)                a long-running process, ready on a line, stopped without throwing
//   createNamespace / addVeth / addRoute / sysctl / inNs / sh / must / asUser   (netns.ts)
//   startListener(lab, ns, specs) → Listener TCP/UDP echo endpoints that log every arrival (token, peer); stop()
//   runProbes(lab, {ns, uid, gid}, specs)    probes as a real uid (setpriv), concurrent, bounded; per-probe results
//   startCapture(ns, iface) → Capture        tcpdump of outgoing packets; stop() → parsed packets (parsePcap)
//   loadNft(ns, text), startUnitInNs(ns, unit, files)   load rulesets the way the image's unit does
//   unitFailure(steps)                                  the step that stopped that unit, if any
//   buildMatrix / labListeners / principals  the probe matrix from the policy (matrix.ts)
//   expectation(policy, facts, principal, target)       the oracle (oracle.ts), independent of the compiler
//   runMatrix(...) → MatrixRun, judge(...) → Judgement   one run, attributed and judged against oracle + control run
//   checkInvariants(facts, packets)          the safety invariants, from the wire alone (invariants.ts)
//   antiTests, controlRuleset                planted leaks and the no-filtering control (anti.ts)
//   writeReport(report)                      Markdown + JSON under dist/lab/
//   labNeeds(...tools)                       root and tools, for @leakless/testing's skipUnless
//
// Rules: namespaces are joined only to each other, never to this machine's
// uplink; Internet = documentation ranges; every name has a random suffix;
// probes are bounded; teardown runs in finally/afterAll, also on failure.
import type { Policy } from '@leakless/policy';
import { type Listener, startListener } from './listeners.js';
import { labListeners } from './matrix.js';
import { buildLab, type Lab, teardownLab } from './topology.js';

export { type AntiTest, antiTests, controlRuleset } from './anti.js';
export { type Capture, type CapturedPacket, PROTO, parseFrame, parsePcap, pcapRecords, startCapture } from './capture.js';
export {
  type Bind,
  type ExecOptions,
  helper,
  labArgv,
  labFile,
  run,
  runHelper,
  type ServerCommand,
  startServer,
  type Where,
  whereArgv,
  writeEtc,
} from './exec.js';
export { checkInvariants, type InvariantResult, type Maker } from './invariants.js';
export { type Listener, type ListenerEvent, type ListenerSpec, startListener } from './listeners.js';
export { buildMatrix, DEST_CLASSES, type DestClass, labListeners, type Principal, type Probe, principals, specOf, type Target, targetsFor } from './matrix.js';
export {
  addAddr,
  addRoute,
  addVeth,
  asUser,
  createNamespace,
  deleteNamespace,
  type Ids,
  inNs,
  must,
  mustInNs,
  namespaceExists,
  type Ran,
  sh,
  sysctl,
  uniqueSuffix,
  type VethEnd,
} from './netns.js';
export { type Expectation, expectation, type LabFacts } from './oracle.js';
export { labNeeds } from './prereq.js';
export { type ProbeKind, type ProbeResult, type ProbeSpec, runProbes, type Sender } from './probes.js';
export { type Proc, type ProcOptions, startProcess } from './process.js';
export { type AntiTestOutcome, type LabReport, matrixTable, renderMarkdown, reportJson, writeReport } from './report.js';
export { attribute, type Judgement, judge, type MatrixRun, type Outcome, type ProbeVerdict, runMatrix } from './run.js';
export { makeLabDir, NODE, PYTHON, stageFile, unreachableByOthers, writeLabFile } from './stage.js';
export { loadNft, startUnitInNs, unitFailure, type UnitStep } from './sut.js';
export {
  addInternetHosts,
  buildLab,
  isDocumentationAddress,
  type Lab,
  type LabAddresses,
  type LabNetwork,
  type LabOptions,
  labAddresses,
  type PolicyNamespaces,
  pickLanSubnet,
  teardownLab,
} from './topology.js';

export interface RunningLab {
  readonly lab: Lab;
  readonly listeners: readonly Listener[];
  /** Stop listeners, delete namespaces, remove the lab's directory. Never throws. */
  teardown(): Promise<void>;
}

/** buildLab + the matrix's listeners in every namespace. Tears down what it made if it fails. */
export async function startLab(policy: Policy): Promise<RunningLab> {
  const lab = await buildLab(policy);
  const listeners: Listener[] = [];
  try {
    for (const [ns, specs] of labListeners(policy, lab)) listeners.push(await startListener(lab, ns, specs));
    return { lab, listeners, teardown: () => teardownLab(lab) };
  } catch (e) {
    await teardownLab(lab);
    throw e;
  }
}

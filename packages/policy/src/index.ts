// @leakless/policy: the policy model, its validation and derived views, the
// module contract and the emit helpers every module shares.
export { policySchema } from './schema.js';
export type { PolicyInput, PolicyDocument, User, UserRole, Listener, Namespace } from './schema.js';
export { parsePolicy, formatIssue, formatPath } from './validate.js';
export type { PolicyResult } from './validate.js';
export type { PolicyIssue } from './rules.js';
export { derivePolicy } from './policy.js';
export {
  EPHEMERAL_PORTS,
  FRONTED_TRANSPORTS,
  TRANSPORT_PLUGINS,
  parseBridgeLine,
  transportPlugin,
} from './bridges.js';
export type { BridgeArg, BridgeLine, BridgeParse, BridgeTransport, TorBridges, TransportPlugin } from './bridges.js';
export type { Policy, TorListener, TorListenerKind, ResolvedNamespace } from './policy.js';
export { readPolicyFile } from './load.js';
export { policyJsonSchema } from './json-schema.js';
export { emission, checkResult } from './contract.js';
export type {
  Emission,
  GeneratedFile,
  LeaklessModule,
  RuntimeAssertion,
  RuntimeCheck,
  StaticAssertion,
  StaticContext,
  CheckResult,
  SystemUser,
  ToolRunner,
  TreeReader,
} from './contract.js';
export { buildTree, memoryTree, sha256, byteOrder } from './tree.js';
export type { Tree, TreeFile } from './tree.js';
export { compileTemplate, loadTemplate } from './render.js';
export type { Template } from './render.js';
export { tarballOf } from './tar.js';
export { writeOutputs } from './output.js';
export { assemble, checkStatic } from './assemble.js';
export type { Assembly, StaticResult } from './assemble.js';
export { addressIn, cidrWithin, parseCidr4, formatCidr4, nthAddress } from './net.js';
export {
  UNITS,
  PATHS,
  ETC_KEPT,
  VENDOR_LOCATIONS,
  CLEARNET_RESOLVER_DROPIN,
  UNIT_SEARCH_PATH,
  layoutProblem,
  layoutProblems,
  unitDropInDirs,
  unitDropInPath,
  unitOfPath,
} from './names.js';
export { parseUnit, parseUnitWithDropIns, unitValues, unitWords } from './unit-file.js';
export { APT_SOURCES_D, APT_SOURCES_LIST, aptSourceFiles, parseAptSources } from './apt-sources.js';
export type { AptSourceEntry } from './apt-sources.js';
export type { UnitFile } from './unit-file.js';
export { defaultProfilePath, readDefaultPolicy } from './profile.js';
export { hostToolRunner } from './tool-runner.js';

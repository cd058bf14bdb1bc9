// @leakless/image: the live image from an assembly, in linear steps: plan
// (pure: packages, users, units, the self-test document), recipes (pure:
// debos YAML for the cached base layer and the module layer), build (debos,
// squashfs, ISO), verify (the built root filesystem), boot (QEMU, the
// in-image self-test read back), bench (build, rebuild, size, boot and
// reproducibility figures).
export {
  planImage,
  imageFiles,
  selftestDigest,
  PlanError,
  SELFTEST_PORT,
  SELFTEST_PATH,
  SELFTEST_UNIT,
  RUNTIME_ASSERTIONS_PATH,
  LIVE_PACKAGES,
  IMAGE_MASKED_UNITS,
  DEBIAN_ACCOUNTS,
  selftestPackages,
} from './iso-plan.js';
export type { ImagePlan, PlanUser } from './iso-plan.js';
export { baseKey, baseInputsRecord, baseRecipe, topRecipe, grubCfg, usersTsv, ISO_NAME, KERNEL_ARGS, MODULE_LAYER } from './iso-recipes.js';
export type { BaseInputs, RenderedRecipe } from './iso-recipes.js';
export { buildIso, IsoBuildError, probeKernelSource, toolVersions, withBuildEnv, BUILD_ENV, BASE_KIND, BASES_KEPT, CACHE_KEEP } from './iso-build.js';
export type { BuildSource, IsoBuildOptions, IsoBuildResult, Manifest } from './iso-build.js';
export { planRecord } from './manifest.js';
export type { PlanRecord } from './manifest.js';
export { secureBootRecord, readPe, parseSbatLevel, PeError, SHIM_VERIFICATION_FAILED, EFI_BOOT_FILES } from './secureboot.js';
export type { EfiBinary, SecureBootRecord } from './secureboot.js';
export { makeSbom, validateSbom, rootfsPackages, parseDpkgStatus, dep5Licenses, debPurl, serialNumber, sbomPackageCount, SBOM_NAME } from './sbom.js';
export type { DebianPackage, LeaklessFile, SbomInputs } from './sbom.js';
export { signRelease, verifyRelease, sha512Sums, parseSums, ReleaseSignError, SUMS_NAME, SIGNATURE_NAME } from './release-sign.js';
export type { SignOptions, VerifyResult } from './release-sign.js';
export {
  openSavedRepo,
  saveRepo,
  toolClosure,
  parseInstalled,
  hostBuildEnv,
  fetchDebs,
  debRecords,
  SavedRepoError,
  BUILD_TOOL_PACKAGES,
  MANIFEST_COPY,
} from './saved-repo.js';
export type { DebRecord, PackageId, SavedRepo } from './saved-repo.js';
export { openBuildEnv, routesOut, BuildEnvError } from './build-env.js';
export type { BuildEnv } from './build-env.js';
export { remoteFetch, remotePush, remoteFetchable, artifactTag, RemoteCacheError } from './remote-cache.js';
export type { RemoteCache, RemoteFetch } from './remote-cache.js';
export { resolvePackages, parseSimulation, ResolveError } from './resolve.js';
export { verifyRootfs, elToritoPlatforms } from './iso-verify.js';
export { packagesLayer, repoRecipeFiles, LAYER_DEBS_SH, DEBS_REPO_DIR } from './iso-debs.js';
export { USERS_SH } from './iso-scripts.js';
export { bootIso, qemuArgs, OVMF_CODE, OVMF_VARS, STALL_LIMIT_MS } from './boot.js';
export type { BootOptions, BootResult, Firmware, QemuPlan } from './boot.js';
export { startLabBoot } from './boot-lab.js';
export { expectedResults, isoAssertions } from './iso-assertions.js';
export type { LabBoot, LabBootOptions, TimedEvent } from './boot-lab.js';
export type { QemuLabDevices } from './boot.js';
export {
  encodeTestSettings,
  fwCfgArgs,
  parseTestSettings,
  torrcDropIn,
  TEST_SETTINGS_FW_CFG,
  TEST_SETTINGS_PATHS,
  TEST_SETTINGS_SYSFS,
} from './test-channel.js';
export type { ParsedSettings, TestSettings } from './test-channel.js';
export { LAB_PORT, LATE_MARKER, lateScript, parseCommand, parseLateLines, parseSenderLine, RULESET_HASH_SH, SENDER_SH, WATCHED_UNITS } from './lab-agent.js';
export type {
  AgentCommand,
  AgentEvent,
  AgentReply,
  AgentRequest,
  AgentStatus,
  HttpOutcome,
  HttpVia,
  Ids,
  LateReport,
  LinkState,
  SenderResult,
  SenderSpec,
  UnitState,
} from './lab-agent.js';
export { bundleGuest, LAB_AGENT_PROGRAM, LAB_AGENT_UNIT, labGuestFiles, TEST_SETTINGS_PROGRAM, TEST_SETTINGS_UNIT } from './guest-files.js';
export { runBench, liveBuild, liveBuildConfig, specStages } from './bench.js';
export type { BenchOptions, BenchReport } from './bench.js';
export {
  ACCEL_FLAGS,
  FAKEMACHINE_FLAGS,
  FAKEMACHINE_MODULES,
  PANIC_LINE,
  PROBE_TIMEOUT_MS,
  AccelError,
  bootProbeKernel,
  chooseAccel,
  decideAccel,
  fakemachineMissing,
  fakemachineRelease,
  hostView,
  kvmVerdict,
  probeKvm,
  probeQemuArgs,
} from './accel.js';
export type {
  Accel,
  AccelDecision,
  AccelFlag,
  ChooseOptions,
  DebosChoice,
  DecideInputs,
  FakemachineBackend,
  FakemachineFlag,
  HostView,
  KernelBoot,
  KvmProbeOptions,
  KvmVerdict,
} from './accel.js';
export { ensureProbeKernel, kernelPackageOf, ProbeKernelError, PROBE_KERNEL_KIND } from './probe-kernel.js';
export {
  commitEntry,
  contentDigest,
  digestContent,
  digestFile,
  entryDirName,
  listEntries,
  lookupEntry,
  lookupLatest,
  newEntryDir,
  parseEntry,
  pruneCache,
  checkContent,
  CACHE_FORMAT,
  ENTRY_FILE,
} from './cache.js';
export type { CacheEntry, CacheHit, FileDigest, PruneOptions } from './cache.js';
export { resolveSources, parseSources, mirrorFor, SourcesError, HOST_DEBIAN_SOURCES } from './sources.js';
export type { AptSources, SourceEntry } from './sources.js';
export { diskTree } from './disk-tree.js';
export { safeRemove, mountsUnder } from './iso-mounts.js';

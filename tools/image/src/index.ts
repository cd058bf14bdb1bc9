// @leakless/image: the live image from an assembly, in linear steps: plan
// (pure: packages, users, units, the self-test document), recipes (pure:
// debos YAML for the cached base layer and the module layer), build (debos,
// squashfs, ISO), verify (the built root filesystem), boot (QEMU, the
// in-image self-test read back), bench (the numbers of SPEC §9).
export { planImage, imageFiles, selftestDigest, PlanError, SELFTEST_PORT, SELFTEST_PATH, SELFTEST_UNIT, RUNTIME_ASSERTIONS_PATH, LIVE_PACKAGES, DEBIAN_ACCOUNTS, selftestPackages } from './iso-plan.js';
export type { ImagePlan, PlanUser } from './iso-plan.js';
export { baseKey, baseRecipe, topRecipe, grubCfg, usersTsv, ISO_NAME, KERNEL_ARGS, MODULE_LAYER } from './iso-recipes.js';
export type { BaseInputs, RenderedRecipe } from './iso-recipes.js';
export { buildIso, IsoBuildError, pruneCache, digestFile, resolveSources } from './iso-build.js';
export type { IsoBuildOptions, IsoBuildResult, Manifest } from './iso-build.js';
export { verifyRootfs, elToritoPlatforms } from './iso-verify.js';
export { bootIso, qemuArgs, OVMF_CODE, OVMF_VARS } from './boot.js';
export type { BootOptions, BootResult, Firmware, QemuPlan } from './boot.js';
export { runBench, liveBuild, specStages } from './bench.js';
export type { BenchOptions, BenchReport } from './bench.js';
export { kvmUsable, probeKvm, probeBootSector, PROBE_EXIT_CODE } from './kvm.js';
export type { KvmVerdict, KvmProbeOptions } from './kvm.js';
export { diskTree } from './disk-tree.js';
export { toolRunner } from './run-tool.js';
export { safeRemove, mountsUnder } from './iso-mounts.js';

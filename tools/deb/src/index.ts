// @leakless/deb: Debian packages from the emissions. One leakless-<module>
// package per module, leakless-users (the policy's fixed ids, created before
// any package that would allocate one) and the leakless metapackage; built
// with dpkg-deb, reproducible from the policy's SOURCE_DATE_EPOCH.
export {
  planDebs,
  inputProblems,
  controlFile,
  packageName,
  maskedUnitsOf,
  DebInputError,
  DIVERTED,
  DIVERT_SUFFIX,
  VENDOR_COPIES,
  USERS_PACKAGE,
  META_PACKAGE,
  DEFAULT_MAINTAINER,
  ESSENTIAL,
} from './plan.js';
export type { DebFile, DebInput, DebPackage, DebPlan, Diversion, PackageUser } from './plan.js';
export { buildDebs, stagePackage, debFileName } from './build.js';
export type { BuildResult, BuiltDeb } from './build.js';
export { debianVersionProblem, fileVersion } from './version.js';
export { accountsTsv, usersOf } from './users.js';
export { MASK_STATE_DIR } from './scripts.js';
export { installedAssertions } from './installed.js';

// @leakless/apt-repo: the one helper that makes local apt repositories
// (file:, flat, deterministic): the leakless .debs for a chroot or an image,
// and the packages an image was built from.
export {
  makeAptRepo,
  sourcesLine,
  sourcesStanza,
  releaseFile,
  rfc2822Date,
  parseParagraphs,
  packagesOf,
  canonicalDebName,
  repoDigest,
  AptRepoError,
  INDEX_FILES,
} from './repo.js';
export type { AptRepo, AptRepoOptions, RepoPackage } from './repo.js';

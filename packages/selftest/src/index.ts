// @leakless/selftest: evaluating runtime assertions on a live system. The
// same evaluator runs in a module's tests, in the lab and, bundled into one
// file, as the image's leakless-selftest.
export { evaluateRuntime, normalizeNftListing, ipAddresses, ipRoutes, nftInventory, listeningSockets } from './evaluate.js';
export type { Exec, RuntimeResult, EvaluateOptions } from './evaluate.js';
export type { SelftestAssertion, SelftestDocument } from './document.js';
export {
  runSelftest,
  isSettled,
  judgeReport,
  formatReport,
  resultLine,
  parseResultLine,
  parseSelftestDocument,
  RESULT_MARKER,
  SECURE_BOOT_EFIVAR,
  secureBootState,
} from './selftest.js';
export type { SecureBootState, SelftestReport, SelftestResult, SelftestOptions } from './selftest.js';
export { bundleSelftest, SELFTEST_NODE_TARGET } from './bundle.js';

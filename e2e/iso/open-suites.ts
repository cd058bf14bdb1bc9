// The ISO suites that do not pass yet (docs/design.md#open-suites): left out
// of npm run e2e, and so out of CI, rather than skipped there; run them with
// npm run e2e:open. Each leaves this list when it passes in a full run.
export const OPEN_SUITES = ['bootlab.test.ts'];

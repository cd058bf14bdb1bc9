import { defineConfig } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';
import { OPEN_SUITES } from './open-suites.ts';
// npm run e2e:open: only the suites npm run e2e leaves out (open-suites.ts).
export default defineConfig({
  ...sourceConditions,
  test: {
    name: 'iso-open',
    root: import.meta.dirname,
    include: OPEN_SUITES,
    globalSetup: ['./global-setup.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 1_800_000,
    fileParallelism: false,
  },
});

import { configDefaults, defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';
import { OPEN_SUITES } from './open-suites.ts';
export default defineProject({
  ...sourceConditions,
  test: {
    name: 'iso',
    include: ['**/*.test.ts'],
    // suites that do not pass yet run with npm run e2e:open, never in npm run e2e
    exclude: [...configDefaults.exclude, ...OPEN_SUITES],
    globalSetup: ['./global-setup.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 1_800_000,
    fileParallelism: false,
  },
});

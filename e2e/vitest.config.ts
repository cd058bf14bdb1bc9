import { defineProject } from 'vitest/config';
import { sourceConditions } from '../vitest.shared.ts';
export default defineProject({
  ...sourceConditions,
  test: { name: 'lab', include: ['src/**/*.test.ts'], testTimeout: 120_000, hookTimeout: 120_000, fileParallelism: false },
});

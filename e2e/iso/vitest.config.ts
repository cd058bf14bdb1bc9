import { defineProject } from 'vitest/config';
export default defineProject({
  resolve: { conditions: ['source'] },
  test: { name: 'iso', include: ['**/*.test.ts'], testTimeout: 1_800_000, hookTimeout: 1_800_000, fileParallelism: false },
});

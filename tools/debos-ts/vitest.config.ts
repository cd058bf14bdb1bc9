import { defineProject } from 'vitest/config';
export default defineProject({
  resolve: { conditions: ['source'] },
  test: { name: 'debos-ts', include: ['src/**/*.test.ts'] },
});

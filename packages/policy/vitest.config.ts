import { defineProject } from 'vitest/config';
export default defineProject({
  resolve: { conditions: ['source'] },
  test: { name: 'policy', include: ['src/**/*.test.ts'] },
});

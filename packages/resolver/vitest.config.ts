import { defineProject } from 'vitest/config';
export default defineProject({
  resolve: { conditions: ['source'] },
  test: { name: 'resolver', include: ['src/**/*.test.ts'] },
});

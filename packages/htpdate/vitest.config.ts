import { defineProject } from 'vitest/config';
export default defineProject({
  resolve: { conditions: ['source'] },
  test: { name: 'htpdate', include: ['src/**/*.test.ts'] },
});

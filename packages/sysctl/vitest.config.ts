import { defineProject } from 'vitest/config';
export default defineProject({
  resolve: { conditions: ['source'] },
  test: { name: 'sysctl', include: ['src/**/*.test.ts'] },
});

import { defineProject } from 'vitest/config';
export default defineProject({
  resolve: { conditions: ['source'] },
  test: { name: 'tor-config', include: ['src/**/*.test.ts'] },
});

import { defineProject } from 'vitest/config';
export default defineProject({
  resolve: { conditions: ['source'] },
  test: { name: 'firewall', include: ['src/**/*.test.ts'] },
});

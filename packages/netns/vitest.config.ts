import { defineProject } from 'vitest/config';
export default defineProject({
  resolve: { conditions: ['source'] },
  test: { name: 'netns', include: ['src/**/*.test.ts'] },
});

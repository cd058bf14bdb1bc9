import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';
export default defineProject({
  ...sourceConditions,
  test: { name: 'netns', include: ['src/**/*.test.ts'] },
});

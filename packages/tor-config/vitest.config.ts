import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';
export default defineProject({
  ...sourceConditions,
  test: { name: 'tor-config', include: ['src/**/*.test.ts'] },
});

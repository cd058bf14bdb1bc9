import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';
export default defineProject({
  ...sourceConditions,
  test: { name: 'htpdate', include: ['src/**/*.test.ts'] },
});

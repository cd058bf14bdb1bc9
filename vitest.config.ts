import { defineConfig } from 'vitest/config';

// One project per workspace package; the ISO/QEMU suite is its own project so
// `npm test` can leave it to `npm run e2e`.
export default defineConfig({
  test: {
    projects: ['packages/*/vitest.config.ts', 'tools/*/vitest.config.ts', 'e2e/vitest.config.ts', 'e2e/iso/vitest.config.ts'],
  },
});

// Shared by every package's vitest config: tests import workspace packages
// from their TypeScript sources (the "source" export condition), so a test
// run never depends on a stale build.
import { defaultServerConditions } from 'vite';

export const sourceConditions = {
  resolve: { conditions: ['source', ...defaultServerConditions] },
  ssr: { resolve: { conditions: ['source', ...defaultServerConditions], externalConditions: ['source'] } },
};

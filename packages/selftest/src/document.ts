// The document the image carries for leakless-selftest: every runtime
// assertion of every module (plus the image's own), tagged with its module.
import type { RuntimeAssertion } from '@leakless/policy';

export interface SelftestAssertion extends RuntimeAssertion {
  readonly module: string;
}

/** The JSON the image carries (see the image planner for its path). */
export interface SelftestDocument {
  readonly version: 1;
  readonly policy: string;
  readonly release: string;
  readonly assertions: readonly SelftestAssertion[];
}

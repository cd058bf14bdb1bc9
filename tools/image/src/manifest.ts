// What the manifest says about the image as planned (before any byte is
// built): the policy and release it is made from, its fixed users, and the
// units the build enabled and masked. A masked unit is a promise as much as
// an enabled one (nothing can start it, e.g. a second firewall that would
// flush leakless' ruleset): a reviewer reads both from the manifest.
import type { ImagePlan } from './iso-plan.js';

export interface PlanRecord {
  readonly policy: string;
  readonly release: string;
  readonly sourceDateEpoch: number;
  readonly suite: string;
  readonly selftest: { readonly assertions: number };
  readonly users: readonly { name: string; uid: number; gid: number }[];
  /** The units the build enabled. */
  readonly units: readonly string[];
  /** The units the build masked (links to /dev/null). */
  readonly maskedUnits: readonly string[];
}

export function planRecord(plan: ImagePlan): PlanRecord {
  return {
    policy: plan.selftest.policy,
    release: plan.selftest.release,
    sourceDateEpoch: plan.sourceDateEpoch,
    suite: plan.suite,
    selftest: { assertions: plan.selftest.assertions.length },
    users: plan.users.map(({ name, uid, gid }) => ({ name, uid, gid })),
    units: plan.units,
    maskedUnits: plan.maskedUnits,
  };
}

// Test fixtures: the default profile and variants of it, validated like any
// policy (a variant that breaks a rule fails loudly here, not in a test).
import type { Policy, PolicyDocument } from '@leakless/policy';
import { policyWith } from '@leakless/policy/testing';

export function policyOf(edit: (doc: PolicyDocument) => void = () => {}): Policy {
  return policyWith((doc) => edit(doc as PolicyDocument));
}

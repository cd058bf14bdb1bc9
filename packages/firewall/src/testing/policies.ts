// Test fixtures: the default profile and variants of it, validated like any
// policy (a variant that breaks a rule fails loudly here, not in a test).
import { parsePolicy, readPolicyFile, type Policy, type PolicyDocument } from '@leakless/policy';

const DEFAULT_FILE = new URL('../../../../image-config/default.yaml', import.meta.url).pathname;
const loaded = await readPolicyFile(DEFAULT_FILE);
if (!loaded.ok) throw new Error(`default policy invalid: ${loaded.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
const defaultDoc: PolicyDocument = loaded.policy.document;

export function defaultDocument(): PolicyDocument {
  return structuredClone(defaultDoc);
}

export function policyOf(edit: (doc: PolicyDocument) => void = () => {}): Policy {
  const doc = defaultDocument();
  edit(doc);
  const r = parsePolicy(doc);
  if (!r.ok) throw new Error(`fixture policy invalid: ${r.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  return r.policy;
}

// config (unknown) → validated Policy, in three stages: schema, cross-field
// rules, derived views. Never throws on bad input: it returns every issue with
// the path of the offending field, so the CLI can print them and exit 2.
import type { z } from 'zod';
import { policySchema } from './schema.js';
import { derivePolicy, type Policy } from './policy.js';
import { runRules, type PolicyIssue } from './rules.js';

export type PolicyResult = { ok: true; policy: Policy } | { ok: false; issues: PolicyIssue[] };

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  return typeof v;
}

// One-line, field-first messages ("is required", "expected number, got string").
const errorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === 'invalid_type') {
    if (iss.input === undefined) return 'is required';
    return `expected ${iss.expected === 'array' ? 'list' : iss.expected}, got ${typeName(iss.input)}`;
  }
  if (iss.code === 'unrecognized_keys') return `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')}`;
  if (iss.code === 'invalid_value' && iss.values.length > 1) return `must be one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}`;
  return undefined;
};

export function parsePolicy(input: unknown): PolicyResult {
  const parsed = policySchema.safeParse(input, { error: errorMap });
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({
      rule: 'schema',
      path: i.code === 'unrecognized_keys' && i.keys.length === 1 ? formatPath([...i.path, i.keys[0]!]) : formatPath(i.path),
      message: i.code === 'unrecognized_keys' && i.keys.length === 1 ? 'unknown field' : i.message,
    }));
    return { ok: false, issues: dedupe(issues) };
  }
  const issues = runRules(parsed.data);
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, policy: derivePolicy(parsed.data) };
}

function dedupe(issues: PolicyIssue[]): PolicyIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.path}\u0000${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function formatIssue(i: PolicyIssue): string {
  return `${i.path}: ${i.message.replace(/[\r\n]+/g, ' ')} [${i.rule}]`;
}

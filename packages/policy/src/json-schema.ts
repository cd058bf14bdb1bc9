// The JSON Schema for editors, generated from the one zod schema (a test keeps
// the committed image-config/policy.schema.json equal to this).
import { z } from 'zod';
import { policySchema } from './schema.js';

export function policyJsonSchema(): string {
  const schema = z.toJSONSchema(policySchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' });
  return JSON.stringify({ ...schema, title: 'leakless image policy' }, null, 2) + '\n';
}

// Reading a policy file (YAML or JSON) into an unknown value for parsePolicy.
// A file that cannot be read or parsed is reported like any other bad input.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { PolicyIssue } from './rules.js';
import { parsePolicy, type PolicyResult } from './validate.js';

export async function readPolicyFile(file: string): Promise<PolicyResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    return fail(file, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let data: unknown;
  try {
    data = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { strict: true, uniqueKeys: true });
  } catch (e) {
    return fail(file, `not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`);
  }
  return parsePolicy(data);
}

function fail(file: string, message: string): { ok: false; issues: PolicyIssue[] } {
  return { ok: false, issues: [{ rule: 'file', path: file, message }] };
}

import { describe, expect, it } from 'vitest';
import { parsePolicy, formatIssue } from './validate.js';
import { defaultPolicyInput, invalidCases } from './testing.js';

describe('parsePolicy', () => {
  it('accepts the default profile', () => {
    const r = parsePolicy(defaultPolicyInput());
    expect(r.ok ? [] : r.issues).toEqual([]);
  });

  it.each(invalidCases)('rejects: $name', ({ mutate, path, message }) => {
    const input = defaultPolicyInput();
    mutate(input);
    const r = parsePolicy(input);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const hit = r.issues.find((i) => i.path === path);
    expect(hit, `issues were: ${r.issues.map(formatIssue).join(' | ')}`).toBeDefined();
    expect(hit!.message).toMatch(message);
    for (const i of r.issues) expect(formatIssue(i)).not.toMatch(/\n/);
  });

  it('reports every problem at once, not only the first', () => {
    const input = defaultPolicyInput();
    input.users[2].uid = 1000;
    input.tor.socksPorts[0].clients.push('mallory');
    const r = parsePolicy(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => i.path)).toEqual(expect.arrayContaining(['users[2].uid', 'tor.socksPorts[0].clients[2]']));
  });

  it('rejects non-objects with a root path', () => {
    const r = parsePolicy('nope');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues[0]!.path).toBe('(root)');
  });
});

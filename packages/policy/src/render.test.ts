import { describe, expect, it } from 'vitest';
import { compileTemplate } from './render.js';

describe('compileTemplate', () => {
  it('inserts values raw (no HTML escaping in config files)', () => {
    const t = compileTemplate<{ v: string }>('x <%= v %>\n', ['v'], 't');
    expect(t({ v: 'a<&>"b' })).toBe('x a<&>"b\n');
  });
  it('throws on a missing value instead of rendering an empty string', () => {
    const t = compileTemplate<{ v?: string }>('x <%= v %>\n', ['v'], 't');
    expect(() => t({})).toThrow(/missing value for v/);
    const u = compileTemplate<{ o: { a?: string } }>('x <%= o.a %>\n', ['o'], 'u');
    expect(() => u({ o: {} })).toThrow(/template value is undefined/);
  });
});

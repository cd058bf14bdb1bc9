import { allModules } from '@leakless/crosscheck';
import { policyJsonSchema } from '@leakless/policy';
import { defaultPolicy, defaultPolicyInput } from '@leakless/policy/testing';
import { describe, expect, it } from 'vitest';
import { anchorsOf } from './anchors.js';
import { FIELD_NOTES } from './field-notes.js';
import { anchorOf, fieldsOf, type JsonSchema, readIntro, renderPolicyDoc, valueAt } from './policy-doc.js';

const schema = JSON.parse(policyJsonSchema()) as JsonSchema;
const doc = () => renderPolicyDoc({ schema, defaults: defaultPolicyInput(), notes: FIELD_NOTES, intro: readIntro() });

describe('docs/policy.md', () => {
  // Regenerate after a schema, profile or note change: npm run docs -w tools/repo
  it('is the rendering of the schema, the default profile and the field notes', async () => {
    await expect(doc()).toMatchFileSnapshot('../../../docs/policy.md');
  });

  it('names only leakless files the default policy ships, at the path it ships them', () => {
    const shipped = new Set(allModules.flatMap((m) => m.emit(defaultPolicy()).files.map((f) => f.path)));
    const named = Object.values(FIELD_NOTES).flatMap((n) => Object.values(n.uses ?? {}).flatMap((u) => u.match(/\/[\w./-]*\/leakless\/[\w./-]+/g) ?? []));
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((p) => !shipped.has(p))).toEqual([]);
  });

  it('is deterministic', () => {
    expect(doc()).toBe(doc());
  });

  it('documents every field of the schema, and no field that is gone', () => {
    const paths = fieldsOf(schema).map((f) => f.path);
    expect(paths.filter((p) => !(p in FIELD_NOTES))).toEqual([]);
    expect(Object.keys(FIELD_NOTES).filter((p) => !paths.includes(p))).toEqual([]);
  });

  it('says what every field means: the schema’s description or, only where there is none, the note’s', () => {
    const fields = fieldsOf(schema);
    expect(fields.filter((f) => !f.schema.description && !FIELD_NOTES[f.path]?.meaning).map((f) => f.path)).toEqual([]);
    expect(fields.filter((f) => f.schema.description && FIELD_NOTES[f.path]?.meaning).map((f) => f.path)).toEqual([]);
  });

  it('gives every field an anchor named after its path, and shows the default profile’s value', () => {
    const text = doc();
    const anchors = anchorsOf(text);
    for (const f of fieldsOf(schema)) expect(anchors.has(anchorOf(f.path)), f.path).toBe(true);
    expect(text).toContain('<a id="tor.socksPorts.clients"></a>');
    expect(text).toContain(`Default profile: \`${defaultPolicyInput().tor.automapRange}\`.`);
  });
});

describe('the renderer', () => {
  const tiny: JsonSchema = {
    type: 'object',
    required: ['a', 'list'],
    properties: {
      a: { type: 'integer', minimum: 1, maximum: 9, description: 'the a' },
      list: { type: 'array', minItems: 1, items: { type: 'object', required: ['n'], properties: { n: { type: 'string' }, m: { type: 'boolean' } } } },
      opt: { type: 'integer', default: 30 },
    },
  };

  it('walks objects and lists of objects, with required flags', () => {
    expect(fieldsOf(tiny).map((f) => [f.path, f.required])).toEqual([
      ['a', true],
      ['list', true],
      ['list[].n', true],
      ['list[].m', false],
      ['opt', false],
    ]);
  });

  it('renders limits, the default value (a table for a list of objects) and the uses', () => {
    const text = renderPolicyDoc({
      schema: tiny,
      defaults: { a: 3, list: [{ n: 'x' }, { n: 'y', m: true }] },
      notes: { list: { meaning: 'the list' }, 'list[].n': { meaning: 'n', uses: { firewall: 'a rule' } }, 'list[].m': { meaning: 'm' }, opt: { meaning: 'o' } },
      intro: '# T\n',
    });
    expect(text).toContain('*type: integer; 1 to 9; required.*');
    expect(text).toContain('Default profile: `3`.');
    expect(text).toContain('| n | m |\n|---|---|\n| `x` |  |\n| `y` | `true` |');
    expect(text).toContain('- **firewall**: a rule');
    expect(text).toContain('Default profile: not set (the schema’s default, `30`, applies).');
    expect(text).toContain('Each item has: [`n`](#list.n), [`m`](#list.m).');
  });

  it('reads values by path, never under a list', () => {
    expect(valueAt({ a: { b: 2 } }, 'a.b')).toBe(2);
    expect(valueAt({ a: [{ b: 2 }] }, 'a[].b')).toBeUndefined();
  });
});

// docs/policy.md, generated: the policy's JSON Schema (from the one zod
// schema, with its .describe() texts) walked field by field, each with its
// type and limits, its value in the default profile and what the modules make
// of it (field-notes.ts), after a hand-written introduction (policy-intro.md).
// Pure: the same schema, profile and notes give the same bytes.
import { readFileSync } from 'node:fs';
import type { FieldNote } from './field-notes.js';

/** The subset of JSON Schema (draft 2020-12) that z.toJSONSchema produces for the policy. */
export interface JsonSchema {
  readonly type?: string;
  readonly description?: string;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | JsonSchema;
  readonly items?: JsonSchema;
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly default?: unknown;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
  readonly exclusiveMaximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly pattern?: string;
}

export interface Field {
  /** Policy path with [] for list items: tor.socksPorts[].port */
  readonly path: string;
  readonly depth: number;
  readonly schema: JsonSchema;
  readonly required: boolean;
}

/** Every field of the schema in document order; list items are folded into their list ([] paths name their fields). */
export function fieldsOf(root: JsonSchema): Field[] {
  const out: Field[] = [];
  const walk = (s: JsonSchema, path: string, depth: number, required: boolean) => {
    if (path !== '') out.push({ path, depth, schema: s, required });
    const obj = s.type === 'array' && s.items?.type === 'object' ? s.items : s.type === 'object' ? s : undefined;
    const prefix = s.type === 'array' ? `${path}[]` : path;
    for (const [k, v] of Object.entries(obj?.properties ?? {})) walk(v, prefix === '' ? k : `${prefix}.${k}`, depth + 1, obj!.required?.includes(k) ?? false);
  };
  walk(root, '', 0, true);
  return out;
}

/** The anchor of a field in docs/policy.md: its path without the [] of list items. */
export function anchorOf(path: string): string {
  return path.replace(/\[\]/g, '');
}

const code = (v: unknown) => `\`${typeof v === 'string' ? v : JSON.stringify(v)}\``;

function typeOf(s: JsonSchema): string {
  if (s.const !== undefined) return `always ${code(s.const)}`;
  if (s.enum) return `one of ${s.enum.map(code).join(', ')}`;
  if (s.type === 'array') {
    const item = s.items ? (s.items.type === 'object' ? 'objects' : typeOf(s.items)) : 'anything';
    return `list of ${item}`;
  }
  if (s.type === 'object') return 'object (no other fields allowed)';
  return s.type ?? 'any';
}

// zod writes JavaScript's safe-integer range as the bounds of every integer: not a limit anyone chose.
const bound = (v: number | undefined) => (v === undefined || Math.abs(v) === Number.MAX_SAFE_INTEGER ? undefined : v);

function limitsOf(s: JsonSchema): string[] {
  const l: string[] = [];
  const min = bound(s.minimum);
  const max = bound(s.maximum);
  if (min !== undefined && max !== undefined) l.push(`${min} to ${max}`);
  else if (min !== undefined) l.push(`at least ${min}`);
  else if (max !== undefined) l.push(`at most ${max}`);
  if (s.exclusiveMinimum !== undefined) l.push(`more than ${s.exclusiveMinimum}`);
  if (s.exclusiveMaximum !== undefined) l.push(`less than ${s.exclusiveMaximum}`);
  if (s.minLength !== undefined && s.minLength > 0) l.push(s.minLength === 1 ? 'not empty' : `at least ${s.minLength} characters`);
  if (s.maxLength !== undefined) l.push(`at most ${s.maxLength} characters`);
  if (s.minItems !== undefined && s.minItems > 0) l.push(`at least ${s.minItems} item${s.minItems === 1 ? '' : 's'}`);
  if (s.maxItems !== undefined) l.push(`at most ${s.maxItems} items`);
  if (s.pattern !== undefined) l.push(`matches ${code(s.pattern)}`);
  const item = s.type === 'array' && s.items && s.items.type !== 'object' ? limitsOf(s.items) : [];
  if (item.length) l.push(`each item: ${item.join(', ')}`);
  return l;
}

/** The value at a path without [] in a plain object; undefined when absent or under a list. */
export function valueAt(doc: unknown, path: string): unknown {
  if (path.includes('[]')) return undefined;
  let v: unknown = doc;
  for (const k of path.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  return v;
}

const isScalar = (v: unknown) => v === null || ['string', 'number', 'boolean'].includes(typeof v);
const cell = (v: unknown): string =>
  v === undefined ? '' : isScalar(v) ? code(v) : Array.isArray(v) && v.every(isScalar) ? (v.length ? v.map(code).join(' ') : '`[]`') : code(v);

function defaultOf(v: unknown, s: JsonSchema): string[] {
  if (v === undefined)
    return s.default !== undefined ? [`Default profile: not set (the schema’s default, ${code(s.default)}, applies).`, ''] : ['Default profile: not set.', ''];
  if (Array.isArray(v) && v.length > 0 && v.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x))) {
    const rows = v as Record<string, unknown>[];
    const keys = Object.keys(s.items?.properties ?? {}).filter((k) => rows.some((r) => r[k] !== undefined));
    return [
      'Default profile:',
      '',
      `| ${keys.join(' | ')} |`,
      `|${keys.map(() => '---').join('|')}|`,
      ...rows.map((r) => `| ${keys.map((k) => cell(r[k])).join(' | ')} |`),
      '',
    ];
  }
  const text = JSON.stringify(v);
  if (text.length <= 100) return [`Default profile: ${code(v)}.`, ''];
  return ['Default profile:', '', '```json', JSON.stringify(v, null, 2), '```', ''];
}

function usesOf(note: FieldNote | undefined): string[] {
  const uses = Object.entries(note?.uses ?? {});
  if (uses.length === 0) return [];
  return ['What it becomes:', '', ...uses.map(([who, what]) => `- **${who}**: ${what}`), ''];
}

export interface PolicyDocInputs {
  readonly schema: JsonSchema;
  /** The default profile as a plain object. */
  readonly defaults: unknown;
  readonly notes: Readonly<Record<string, FieldNote>>;
  readonly intro: string;
}

export function renderPolicyDoc(inp: PolicyDocInputs): string {
  const fields = fieldsOf(inp.schema);
  const top = fields.filter((f) => f.depth === 1);
  const out: string[] = [
    '<!-- Generated by tools/repo from the policy schema (@leakless/policy) and tools/repo/src/field-notes.ts; do not edit.',
    '     Regenerate: npm run docs -w tools/repo -->',
    inp.intro.trimEnd(),
    '',
    '## Fields',
    '',
    ...top.map((f) => `- [\`${f.path}\`](#${anchorOf(f.path)})`),
    '',
  ];
  for (const f of fields) {
    const s = f.schema;
    const note = inp.notes[f.path];
    const meaning = s.description ?? note?.meaning;
    const heading = '#'.repeat(Math.min(f.depth + 2, 6));
    out.push(`<a id="${anchorOf(f.path)}"></a>`, '', `${heading} \`${f.path}\``, '');
    if (meaning) out.push(meaning, '');
    const facts = [`type: ${typeOf(s)}`, ...limitsOf(s), f.required ? 'required' : 'optional'];
    out.push(`*${facts.join('; ')}.*`, '');
    if (!f.path.includes('[]') && s.type !== 'object') out.push(...defaultOf(valueAt(inp.defaults, f.path), s));
    const kids = fields.filter((k) => k.depth === f.depth + 1 && (k.path.startsWith(`${f.path}.`) || k.path.startsWith(`${f.path}[].`)));
    if (kids.length) {
      const links = kids.map((k) => `[\`${k.path.slice(k.path.lastIndexOf('.') + 1)}\`](#${anchorOf(k.path)})`).join(', ');
      out.push(`${s.type === 'array' ? 'Each item has' : 'Fields'}: ${links}.`, '');
    }
    out.push(...usesOf(note));
  }
  return (
    out
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .trimEnd() + '\n'
  );
}

export const INTRO_FILE = new URL('./policy-intro.md', import.meta.url);

export function readIntro(): string {
  return readFileSync(INTRO_FILE, 'utf8');
}

// A tiny, deterministic YAML emitter for debos recipes: maps keep the key order
// they are given, strings are quoted whenever a YAML 1.1 parser (debos uses
// gopkg.in/yaml.v2) could read them as anything but that exact string, and
// multi-line commands become literal blocks so a reviewer can read them.
//
// debos runs the recipe through Go text/template before parsing it, so every
// literal "{{" is escaped: a recipe value can never turn into a template action.

export type YamlScalar = string | number | boolean;
export type YamlValue = YamlScalar | readonly YamlValue[] | YamlMap;
export interface YamlMap {
  readonly [key: string]: YamlValue | undefined;
}

// yaml.v2 resolves these (any case) to booleans or null.
const YAML11_SPECIAL = /^(y|n|yes|no|on|off|true|false|null|~)$/i;
const PLAIN = /^[A-Za-z_/][A-Za-z0-9_./+@-]*$/;
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/** Escape Go text/template's left delimiter (the right one is inert on its own). */
export function escapeTemplate(s: string): string {
  return s.replace(/\{\{/g, '{{ "{{" }}');
}

function quoted(s: string): string {
  // JSON strings are valid YAML double-quoted scalars.
  return JSON.stringify(s);
}

function scalar(v: YamlScalar): string {
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`yaml: cannot represent ${v}`);
    return String(v);
  }
  if (PLAIN.test(v) && !YAML11_SPECIAL.test(v)) return v;
  // quote first, then escape: the escape's own quotes must stay unescaped
  return escapeTemplate(quoted(v));
}

function blockLiteral(s: string, indent: string): string {
  const trailing = /\n*$/.exec(s)![0].length;
  const chomp = trailing === 0 ? '-' : trailing === 1 ? '' : '+';
  const body = trailing === 0 ? s : s.slice(0, s.length - trailing);
  const lines = escapeTemplate(body).split('\n');
  // An explicit indentation indicator when the first line would confuse auto-detection.
  const indicator = lines[0] === '' || lines[0]!.startsWith(' ') ? '2' : '';
  const extra = trailing > 1 ? Array.from({ length: trailing - 1 }, () => '') : [];
  return `|${indicator}${chomp}\n` + [...lines, ...extra].map((l) => (l === '' ? '' : indent + l)).join('\n');
}

function isMultiline(v: YamlValue | undefined): v is string {
  return typeof v === 'string' && v.includes('\n') && !CONTROL.test(v);
}

function emitValue(v: YamlValue, indent: string): string {
  if (isMultiline(v)) return ' ' + blockLiteral(v, indent + '  ');
  if (typeof v !== 'object') return ' ' + scalar(v);
  if (Array.isArray(v)) {
    if (v.length === 0) return ' []';
    return '\n' + v.map((item: YamlValue) => emitItem(item, indent)).join('\n');
  }
  const entries = Object.entries(v as YamlMap).filter(([, x]) => x !== undefined) as [string, YamlValue][];
  if (entries.length === 0) return ' {}';
  return '\n' + emitMap(entries, indent + '  ');
}

function emitItem(item: YamlValue, indent: string): string {
  if (typeof item === 'object' && !Array.isArray(item)) {
    const entries = Object.entries(item as YamlMap).filter(([, x]) => x !== undefined) as [string, YamlValue][];
    if (entries.length === 0) return `${indent}- {}`;
    // "- key: value" with the following keys aligned under the first one
    const inner = emitMap(entries, indent + '    ');
    return `${indent}  - ${inner.slice(indent.length + 4)}`;
  }
  if (isMultiline(item)) return `${indent}  -` + ' ' + blockLiteral(item, indent + '    ');
  if (Array.isArray(item)) throw new Error('yaml: nested sequences are not used in recipes');
  return `${indent}  - ${scalar(item as YamlScalar)}`;
}

function emitKey(k: string): string {
  if (!/^[a-z][a-z0-9_-]*$/.test(k)) throw new Error(`yaml: unexpected key ${JSON.stringify(k)}`);
  return k;
}

function emitMap(entries: readonly [string, YamlValue][], indent: string): string {
  return entries.map(([k, v]) => `${indent}${emitKey(k)}:${emitValue(v, indent)}`).join('\n');
}

/** Render a top-level map. Same input, same bytes; ends with one newline. */
export function toYaml(doc: YamlMap): string {
  const entries = Object.entries(doc).filter(([, x]) => x !== undefined) as [string, YamlValue][];
  return emitMap(entries, '') + '\n';
}

// ejs for config files: `<%= x %>` goes through an escape that throws on a
// missing value (ejs would silently render "" for undefined) and otherwise
// inserts the value raw — HTML escaping is wrong for config files. Templates
// are compiled once, in strict mode (no `with`), with their locals declared.
import ejs from 'ejs';
import { readFileSync } from 'node:fs';

function strictRaw(value: unknown): string {
  if (value === undefined || value === null) throw new Error(`template value is ${value}`);
  if (typeof value === 'object') throw new Error(`template value is an object: ${JSON.stringify(value)}`);
  return String(value);
}

export type Template<L extends Record<string, unknown>> = (locals: L) => string;

export function compileTemplate<L extends Record<string, unknown>>(source: string, locals: readonly (keyof L & string)[], name: string): Template<L> {
  const fn = ejs.compile(source, {
    strict: true,
    _with: false,
    destructuredLocals: [...locals],
    escape: strictRaw,
    filename: name,
  });
  return (data: L) => {
    for (const k of locals) if (data[k] === undefined) throw new Error(`${name}: missing value for ${k}`);
    try {
      return fn(data) as string;
    } catch (e) {
      throw new Error(`${name}: ${(e as Error).message.split('\n').pop()}`);
    }
  };
}

/** Load a template that sits next to the module that owns it (templates/ beside src/ and dist/). */
export function loadTemplate<L extends Record<string, unknown>>(moduleUrl: string, file: string, locals: readonly (keyof L & string)[]): Template<L> {
  const url = new URL(`../templates/${file}`, moduleUrl);
  return compileTemplate<L>(readFileSync(url, 'utf8'), locals, file);
}

// What a lab principal runs or reads (node and python helpers, configs,
// certificates, the emitted tools) lives in a directory the lab owns and every
// uid can traverse, never in the checkout: a clone in `mktemp -d` or in root's
// 0700 home is unreadable to the tor, htp or desktop uid, and a helper started
// from there as that uid fails with "Cannot find module". Root copies the
// files over; the principal only ever sees the staged copy.
import { accessSync, chmodSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Interpreters a principal runs helpers with: system paths, never a per-user shim (pyenv, nvm) under root's home. */
export const NODE = process.execPath;
export const PYTHON = '/usr/bin/python3';

/**
 * Why `path` cannot be reached by a uid that is neither its owner nor in its
 * group (every directory above it searchable by others, the file readable,
 * and executable when `exec`), or undefined when it can.
 */
export function unreachableByOthers(path: string, exec = false): string | undefined {
  const full = resolve(path);
  const dirs: string[] = [];
  for (let d = dirname(full); ; d = dirname(d)) {
    dirs.unshift(d);
    if (d === dirname(d)) break;
  }
  for (const d of dirs) if ((statSync(d).mode & 0o001) === 0) return `${d} is not searchable by other uids (mode ${(statSync(d).mode & 0o777).toString(8)})`;
  const mode = statSync(full).mode;
  if ((mode & 0o004) === 0) return `${full} is not readable by other uids (mode ${(mode & 0o777).toString(8)})`;
  if (exec && (mode & 0o001) === 0) return `${full} is not executable by other uids (mode ${(mode & 0o777).toString(8)})`;
  return undefined;
}

/**
 * A fresh directory (mode 0755) under the first temporary directory other
 * uids can reach: TMPDIR may point into a home they cannot enter.
 */
export function makeLabDir(prefix: string): string {
  const bases = [...new Set([tmpdir(), '/tmp'])];
  // for a directory, "executable" is "searchable"
  const why = (b: string) => (existsSync(b) ? unreachableByOthers(b, true) : `${b} does not exist`);
  const base = bases.find((b) => why(b) === undefined);
  if (!base) throw new Error(`lab: no temporary directory other uids can reach (${bases.map(why).join('; ')})`);
  const dir = mkdtempSync(join(base, prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/** Write a file in a lab directory, readable by every uid unless `mode` says otherwise. */
export function writeLabFile(dir: string, name: string, content: string | Buffer, mode = 0o644): string {
  const p = join(dir, name);
  mkdirSync(dirname(p), { recursive: true, mode: 0o755 });
  writeFileSync(p, content, { mode });
  chmodSync(p, mode);
  return p;
}

/**
 * Copy a helper (a source file next to the code that uses it) into `dir`,
 * mode 0644, and return the staged path. The same name from another source is
 * an error, not a silent overwrite.
 */
export function stageFile(dir: string, source: URL): string {
  const from = fileURLToPath(source);
  accessSync(from, constants.R_OK);
  const to = join(dir, 'helpers', basename(from));
  if (existsSync(to)) {
    if (!readFileSync(to).equals(readFileSync(from))) throw new Error(`lab: two different helpers named ${basename(from)} (${from})`);
    return to;
  }
  mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
  copyFileSync(from, to);
  chmodSync(to, 0o644);
  return to;
}

/** The command that runs a staged helper: node for .mjs/.js, python (isolated mode) for .py. */
export function interpreterFor(path: string): string[] {
  if (/\.(mjs|js)$/.test(path)) return [NODE];
  if (path.endsWith('.py')) return [PYTHON, '-I'];
  throw new Error(`lab: no interpreter for helper ${path} (.mjs, .js or .py)`);
}

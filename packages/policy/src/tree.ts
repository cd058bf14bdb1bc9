// The in-memory tree: every module's files merged, each path owned by exactly
// one module, sorted by byte order so every writer (directory, tarball) sees
// the same sequence.
import { createHash } from 'node:crypto';
import type { Emission, GeneratedFile, TreeReader } from './contract.js';

export interface TreeFile extends GeneratedFile {
  readonly module: string;
}

export interface Tree {
  /** Files sorted by path (byte order). */
  readonly files: readonly TreeFile[];
  /** Every parent directory of a file, sorted, without the root. */
  readonly directories: readonly string[];
}

const SAFE_PATH = /^(\/[A-Za-z0-9._@+-]+)+$/;

export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function buildTree(emissions: readonly Emission[]): Tree {
  const owners = new Map<string, TreeFile>();
  for (const e of emissions) {
    for (const f of e.files) {
      if (!SAFE_PATH.test(f.path) || f.path.split('/').some((s) => s === '.' || s === '..'))
        throw new Error(`${e.module}: unsafe file path ${JSON.stringify(f.path)}`);
      if (!Number.isInteger(f.mode) || f.mode < 0 || f.mode > 0o7777) throw new Error(`${e.module}: ${f.path}: bad mode ${f.mode}`);
      const prev = owners.get(f.path);
      if (prev) throw new Error(`${f.path} is emitted by both ${prev.module} and ${e.module}`);
      owners.set(f.path, { ...f, module: e.module });
    }
  }
  const files = [...owners.values()].sort((a, b) => byteOrder(a.path, b.path));
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.split('/').slice(1, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add('/' + parts.slice(0, i).join('/'));
  }
  for (const d of dirs) if (owners.has(d)) throw new Error(`${d} is both a file and a directory`);
  return { files, directories: [...dirs].sort(byteOrder) };
}

export function memoryTree(tree: Tree): TreeReader {
  const byPath = new Map(tree.files.map((f) => [f.path, f]));
  return {
    read: (p) => byPath.get(p)?.content,
    mode: (p) => byPath.get(p)?.mode,
    paths: () => tree.files.map((f) => f.path),
  };
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

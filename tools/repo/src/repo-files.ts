// The files of the repository as git sees them: tracked ones plus new ones
// not yet added (so a check catches a bad citation before the commit), never
// ignored ones (node_modules, dist). Reading is the only side effect here.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export function repoFiles(root: string = REPO_ROOT): string[] {
  const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, maxBuffer: 64 * 1024 * 1024 });
  const paths = out.toString('utf8').split('\0').filter(Boolean);
  // a file deleted in the work tree is still in the index until the next commit
  return [...new Set(paths)].filter((p) => existsSync(join(root, p)) && statSync(join(root, p)).isFile()).sort();
}

/** The text of a file, or undefined for a binary one (a NUL byte in it). */
export function readText(path: string, root: string = REPO_ROOT): string | undefined {
  const b = readFileSync(join(root, path));
  return b.includes(0) ? undefined : b.toString('utf8');
}

/** Every text file of the repository, path → content. */
export function repoTexts(root: string = REPO_ROOT, keep: (path: string) => boolean = () => true): Map<string, string> {
  const m = new Map<string, string>();
  for (const p of repoFiles(root)) {
    if (!keep(p)) continue;
    const t = readText(p, root);
    if (t !== undefined) m.set(p, t);
  }
  return m;
}

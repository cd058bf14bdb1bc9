// Writing an emission to disk (the only fs writes of the emit path). Both
// outputs are first written beside their target and then renamed into place,
// so a failure at any point leaves the previous tree and tarball as they were.
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Tree } from './tree.js';

function sibling(target: string, tag: string): string {
  return join(dirname(target), `.${tag}-${process.pid}-${randomBytes(4).toString('hex')}-${target.split('/').pop()}`);
}

async function writeTreeInto(root: string, tree: Tree): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const d of tree.directories) await mkdir(join(root, d), { recursive: true, mode: 0o755 });
  for (const f of tree.files) {
    const p = join(root, f.path);
    await writeFile(p, f.content);
    await chmod(p, f.mode); // explicit: not subject to the umask
  }
}

export interface WriteTargets {
  readonly treeDir?: string;
  readonly tarFile?: string;
}

export async function writeOutputs(tree: Tree, tarball: Buffer, targets: WriteTargets): Promise<void> {
  const staged: { tmp: string; target: string }[] = [];
  try {
    if (targets.tarFile) {
      await mkdir(dirname(targets.tarFile), { recursive: true });
      const tmp = sibling(targets.tarFile, 'new');
      staged.push({ tmp, target: targets.tarFile });
      await writeFile(tmp, tarball, { mode: 0o644 });
    }
    if (targets.treeDir) {
      await mkdir(dirname(targets.treeDir), { recursive: true });
      const tmp = sibling(targets.treeDir, 'new');
      staged.push({ tmp, target: targets.treeDir });
      await writeTreeInto(tmp, tree);
    }
  } catch (e) {
    await Promise.all(staged.map((s) => rm(s.tmp, { recursive: true, force: true })));
    throw e;
  }
  for (const s of staged) {
    const old = sibling(s.target, 'old');
    const hadOld = await rename(s.target, old).then(
      () => true,
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return false;
        throw e;
      },
    );
    await rename(s.tmp, s.target);
    if (hadOld) await rm(old, { recursive: true, force: true });
  }
}

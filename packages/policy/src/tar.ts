// The deterministic tarball of a tree: sorted entries (parents first), every
// mtime = SOURCE_DATE_EPOCH, uid/gid 0 unless a file says otherwise, explicit
// modes, no user/group names. Same tree, same bytes.
import tar from 'tar-stream';
import type { Tree } from './tree.js';
import { byteOrder } from './tree.js';

export async function tarballOf(tree: Tree, sourceDateEpoch: number): Promise<Buffer> {
  const mtime = new Date(sourceDateEpoch * 1000);
  type Entry = { name: string; dir: boolean; mode: number; uid: number; gid: number; body?: string };
  const entries: Entry[] = [
    ...tree.directories.map((d) => ({ name: `.${d}/`, dir: true, mode: 0o755, uid: 0, gid: 0 })),
    ...tree.files.map((f) => ({ name: `.${f.path}`, dir: false, mode: f.mode, uid: f.uid ?? 0, gid: f.gid ?? 0, body: f.content })),
  ].sort((a, b) => byteOrder(a.name, b.name));

  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const e of entries) {
    const header = { name: e.name, mode: e.mode, uid: e.uid, gid: e.gid, mtime, type: e.dir ? ('directory' as const) : ('file' as const) };
    await new Promise<void>((resolve, reject) =>
      e.dir ? pack.entry(header, (err) => (err ? reject(err) : resolve())) : pack.entry(header, e.body!, (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

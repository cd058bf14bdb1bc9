// Building the planned packages with Debian's own dpkg-deb, reproducibly:
// every file and directory written with its mode and the policy's
// SOURCE_DATE_EPOCH as mtime, owners root (--root-owner-group), xz on one
// thread (multithreaded xz output depends on the core count). Two builds of
// the same plan give the same bytes on any machine with the same dpkg.
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { controlFile, type DebPackage, type DebPlan } from './plan.js';
import { fileVersion } from './version.js';

export interface BuiltDeb {
  readonly name: string;
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
}

export interface BuildResult {
  readonly outDir: string;
  readonly debs: readonly BuiltDeb[];
  readonly ms: number;
}

export function debFileName(p: DebPackage): string {
  return `${p.name}_${fileVersion(p.version)}_all.deb`;
}

function md5sums(p: DebPackage): string {
  const conf = new Set(p.conffiles);
  return p.files
    .filter((f) => !conf.has(f.path))
    .map((f) => `${createHash('md5').update(f.content).digest('hex')}  ${f.path.slice(1)}\n`)
    .sort()
    .join('');
}

/** Write a package's tree (files, DEBIAN/) under `root`, every mtime the epoch. */
export async function stagePackage(p: DebPackage, root: string, maintainer: string, epoch: number): Promise<void> {
  const dirs = new Set<string>([root, join(root, 'DEBIAN')]);
  const write = async (rel: string, content: string | Buffer, mode: number) => {
    const abs = join(root, rel);
    for (let d = dirname(abs); d.length > root.length; d = dirname(d)) dirs.add(d);
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, content);
    await chmod(abs, mode);
  };
  for (const f of p.files) await write(f.path.slice(1), f.content, f.mode);
  await write('DEBIAN/control', controlFile(p, maintainer), 0o644);
  await write('DEBIAN/md5sums', md5sums(p), 0o644);
  if (p.conffiles.length) await write('DEBIAN/conffiles', p.conffiles.map((c) => `${c}\n`).join(''), 0o644);
  for (const [name, text] of Object.entries(p.scripts)) if (text) await write(`DEBIAN/${name}`, text, 0o755);
  for (const d of dirs) await chmod(d, 0o755);
  const all = [...dirs];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p2 = join(d, e.name);
      if (e.isDirectory()) await walk(p2);
      else await utimes(p2, epoch, epoch);
    }
  };
  await walk(root);
  // directories last: writing into one changes its mtime
  for (const d of all.sort((a, b) => b.length - a.length)) await utimes(d, epoch, epoch);
}

async function sha256File(path: string): Promise<string> {
  const { createReadStream } = await import('node:fs');
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Build every package of the plan into outDir. Packages are built in a
 * scratch directory beside outDir and moved in only when all succeeded.
 */
export async function buildDebs(plan: DebPlan, outDir: string, note: (s: string) => void = () => {}): Promise<BuildResult> {
  const started = Date.now();
  const out = resolve(outDir);
  const work = `${out}.build-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  await mkdir(join(work, 'debs'), { recursive: true });
  try {
    const built: BuiltDeb[] = [];
    for (const p of plan.packages) {
      const t = Date.now();
      const root = join(work, 'stage', p.name);
      await stagePackage(p, root, plan.maintainer, plan.sourceDateEpoch);
      const file = join(work, 'debs', debFileName(p));
      const r = await execa('dpkg-deb', ['--root-owner-group', '-Zxz', '--threads-max=1', '--build', root, file], {
        reject: false,
        all: true,
        env: { SOURCE_DATE_EPOCH: String(plan.sourceDateEpoch), LC_ALL: 'C' },
      });
      if (r.exitCode !== 0)
        throw new Error(`dpkg-deb --build ${p.name} failed (exit ${r.exitCode}): ${(r.all ?? '').trim().split('\n').slice(-3).join(' | ')}`);
      built.push({ name: p.name, file: debFileName(p), bytes: (await stat(file)).size, sha256: await sha256File(file) });
      note(`${debFileName(p)}: ${(await stat(file)).size} bytes (${Date.now() - t} ms)`);
    }
    await mkdir(out, { recursive: true });
    for (const b of built) await rename(join(work, 'debs', b.file), join(out, b.file));
    return { outDir: out, debs: built.map((b) => ({ ...b, file: join(out, b.file) })), ms: Date.now() - started };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

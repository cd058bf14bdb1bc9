// The kernel the KVM probe boots: Debian's current linux-image-amd64 kernel,
// fetched once with `apt-get download` from the host's configured mirrors and
// kept in the build cache. Not the host's kernel (a build machine or
// container may have none, /boot empty) and not the image's (the first build
// has no image yet, and the probe decides how to build it).
import { execa } from 'execa';
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { silentProgress, type Progress } from '@leakless/debos-ts';
import { commitEntry, lookupLatest, newEntryDir, pruneCache } from './cache.js';
import { safeRemove } from './iso-mounts.js';
import { sha256 } from '@leakless/policy';

export const PROBE_KERNEL_KIND = 'probe-kernel';
export const PROBE_KERNEL_META = 'linux-image-amd64';
export const PROBE_KERNEL_FILE = 'vmlinuz';

export class ProbeKernelError extends Error {
  override readonly name = 'ProbeKernelError';
}

/** The kernel package the metapackage depends on, from `apt-cache depends` output. */
export function kernelPackageOf(aptCacheDepends: string): string | undefined {
  return /^\s*Depends:\s*(linux-image-[0-9][^\s<>]*)\s*$/m.exec(aptCacheDepends)?.[1];
}

const tailOf = (s: string | undefined, n = 5) =>
  (s ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('W: Download is performed unsandboxed'))
    .slice(-n)
    .join(' | ');

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await execa(cmd, args, { reject: false, all: true, ...(cwd ? { cwd } : {}), env: { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' } });
  if (r.exitCode !== 0)
    throw new ProbeKernelError(`${cmd} ${args.join(' ')} failed (${r.exitCode ?? (r as { code?: string }).code ?? r.signal}): ${tailOf(r.all)}`);
  return r.all ?? '';
}

export interface ProbeKernelOptions {
  readonly cacheDir: string;
  readonly progress?: Progress;
  readonly note?: (s: string) => void;
}

/** The probe kernel's path: the cached one if any is intact, else fetched now. */
export async function ensureProbeKernel(o: ProbeKernelOptions): Promise<string> {
  const hit = await lookupLatest(o.cacheDir, PROBE_KERNEL_KIND, { ...(o.note ? { note: o.note } : {}) });
  if (hit) return join(hit.dir, PROBE_KERNEL_FILE);
  const progress = o.progress ?? silentProgress();
  progress.stage(`fetch a Debian kernel for the KVM probe (apt-get download ${PROBE_KERNEL_META})`);
  const tmp = await newEntryDir(o.cacheDir, PROBE_KERNEL_KIND);
  try {
    let deps = await run('apt-cache', ['depends', '--no-recommends', '--no-suggests', PROBE_KERNEL_META]).catch(() => '');
    let pkg = kernelPackageOf(deps);
    if (!pkg) {
      // a fresh machine or container may have no package lists yet
      progress.line('apt-get update');
      await run('apt-get', ['update', '-qq']);
      deps = await run('apt-cache', ['depends', '--no-recommends', '--no-suggests', PROBE_KERNEL_META]);
      pkg = kernelPackageOf(deps);
      if (!pkg) throw new ProbeKernelError(`${PROBE_KERNEL_META} depends on no linux-image package: ${tailOf(deps)}`);
    }
    progress.line(`apt-get download ${pkg}`);
    await run('apt-get', ['download', '-q', pkg], tmp);
    const deb = (await readdir(tmp)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new ProbeKernelError(`apt-get download ${pkg} left no .deb in ${tmp}`);
    const version = (await run('dpkg-deb', ['-f', join(tmp, deb), 'Version'])).trim();
    const debSha = sha256(await readFile(join(tmp, deb)));
    progress.line(`extract vmlinuz from ${deb}`);
    // only the kernel image: the package's ~400 MB of modules are not needed
    await run('bash', ['-o', 'pipefail', '-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "./boot/vmlinuz-*"', 'extract', join(tmp, deb), tmp]);
    const boot = await readdir(join(tmp, 'boot')).catch(() => [] as string[]);
    const image = boot.find((f) => f.startsWith('vmlinuz-'));
    if (!image) throw new ProbeKernelError(`${deb} holds no /boot/vmlinuz-*`);
    await rename(join(tmp, 'boot', image), join(tmp, PROBE_KERNEL_FILE));
    await rm(join(tmp, 'boot'), { recursive: true, force: true });
    await rm(join(tmp, deb), { force: true });
    const key = sha256(`${pkg} ${version}`);
    const entry = await commitEntry(o.cacheDir, tmp, PROBE_KERNEL_KIND, key, {
      package: pkg,
      version,
      deb: { name: deb, sha256: debSha },
      image: `/boot/${image}`,
    });
    await pruneCache(o.cacheDir, { keep: { [PROBE_KERNEL_KIND]: 1 }, ...(o.note ? { note: o.note } : {}) });
    progress.end(true);
    return join(entry.dir, PROBE_KERNEL_FILE);
  } catch (e) {
    progress.end(false);
    await safeRemove(tmp);
    throw e;
  }
}

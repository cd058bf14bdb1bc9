// The build environment of a rebuild: a chroot made only from the saved
// repository's tools (the recorded debos, mmdebstrap, mksquashfs, xorriso,
// GRUB, shim … at their recorded versions), entered in a network namespace
// that has nothing but loopback, so the rebuild can use neither this host's
// tools nor a mirror that has moved on. The image's packages are served from
// the saved repository on 127.0.0.1 inside that namespace.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { safeRemove } from './iso-mounts.js';

export class BuildEnvError extends Error {
  override readonly name = 'BuildEnvError';
}

export interface BuildEnv {
  /** The chroot. */
  readonly root: string;
  /** The network namespace (loopback only). */
  readonly netns: string;
  /** Routes in the namespace, as `ip route` printed them (every one on lo). */
  readonly routes: readonly string[];
  /** A debos that runs inside the chroot and the namespace (for runDebos' `debos`). */
  readonly debos: string;
  /** The apt sources line of the image repository as the chroot sees it. */
  readonly fetch: { readonly name: string; readonly content: string };
  /** Run a command inside the chroot (argv prefix). */
  readonly run: readonly string[];
  close(): Promise<void>;
}

const REPO_PORT = 8642;
const here = dirname(fileURLToPath(import.meta.url));

/** Every route of a namespace that leaves it (anything not on lo). */
export function routesOut(ipRoute: string): string[] {
  return ipRoute
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/\bdev lo\b/.test(l));
}

async function must(cmd: string, args: readonly string[], what: string): Promise<string> {
  const r = await execa(cmd, args, { reject: false, all: true });
  if (r.exitCode !== 0) throw new BuildEnvError(`${what}: ${cmd} ${args.join(' ')} failed: ${(r.all ?? '').trim().split('\n').slice(-4).join(' | ')}`);
  return r.stdout;
}

/**
 * Make `root` a chroot that systemd-nspawn can run in (debos runs every chroot
 * action of host mode with it). nspawn's first step marks "/" MS_SLAVE|MS_REC,
 * which the kernel refuses (EINVAL) unless "/" is a mount point, and a chroot's
 * "/" is a plain directory: so root is bound onto itself (private: nothing
 * mounted under it reaches the host's mounts), then gets the /proc, /sys (with
 * /sys/fs/cgroup, where nspawn reads the cgroup mode), /dev and /run nspawn
 * needs, and the host directories in `binds` at their own paths. nspawn also
 * refuses to start without the host's machine ID, which mmdebstrap leaves
 * empty for a reproducible tree: the chroot gets a random one of its own (it
 * is the tools' chroot's, never written into the image). Returns the undo,
 * which unmounts everything it mounted, innermost first.
 */
export async function prepareChroot(root: string, binds: readonly string[]): Promise<() => Promise<void>> {
  const machineId = join(root, 'etc', 'machine-id');
  if (!/^[0-9a-f]{32}$/.test((await readFile(machineId, 'utf8').catch(() => '')).trim())) {
    await mkdir(dirname(machineId), { recursive: true });
    await writeFile(machineId, `${randomBytes(16).toString('hex')}\n`);
  }
  const mounted: string[] = [];
  const undo = async () => {
    for (const m of mounted.splice(0).reverse()) await execa('umount', ['-R', '-l', m], { reject: false });
  };
  const mount = async (args: string[], to: string, what: string) => {
    await mkdir(to, { recursive: true });
    await must('mount', [...args, to], what);
    mounted.push(to);
  };
  try {
    await mount(['--bind', root], root, 'the chroot onto itself');
    await must('mount', ['--make-private', root], 'the chroot onto itself');
    await mount(['-t', 'proc', 'proc'], join(root, 'proc'), 'proc');
    await mount(['--rbind', '/sys'], join(root, 'sys'), 'bind /sys');
    await mount(['--rbind', '/dev'], join(root, 'dev'), 'bind /dev');
    await mount(['-t', 'tmpfs', 'tmpfs'], join(root, 'run'), 'tmpfs /run');
    for (const b of binds) await mount(['--bind', b], join(root, b), `bind ${b}`);
    return undo;
  } catch (e) {
    await undo();
    throw e;
  }
}

export interface BuildEnvOptions {
  /** The saved repository (image/ and tools/). */
  readonly repoDir: string;
  /** Where the chroot goes (outside every directory in `binds`). */
  readonly root: string;
  /** The tool packages to install (the recorded build environment). */
  readonly packages: readonly string[];
  /** Host directories the build reads and writes, bound into the chroot at the same path. */
  readonly binds: readonly string[];
  readonly suite: string;
  readonly note?: (s: string) => void;
}

export async function openBuildEnv(o: BuildEnvOptions): Promise<BuildEnv> {
  const netns = `lk-rebuild-${randomBytes(3).toString('hex')}`;
  const root = o.root;
  let unmount: (() => Promise<void>) | undefined;
  let server: ResultPromise | undefined;
  const close = async () => {
    if (server) {
      server.kill('SIGTERM');
      await server.catch(() => undefined);
    }
    await unmount?.();
    await safeRemove(root).catch(() => undefined);
    await rm(`${root}.debos`, { force: true });
    await execa('ip', ['netns', 'del', netns], { reject: false });
  };
  try {
    await must('ip', ['netns', 'add', netns], 'network namespace');
    await must('ip', ['-n', netns, 'link', 'set', 'lo', 'up'], 'network namespace');
    const routes = [
      ...(await must('ip', ['-n', netns, 'route', 'show', 'table', 'all'], 'routes')).split('\n'),
      ...(await must('ip', ['-n', netns, '-6', 'route', 'show', 'table', 'all'], 'routes')).split('\n'),
    ].filter(Boolean);
    const out = routesOut(routes.join('\n'));
    if (out.length) throw new BuildEnvError(`the rebuild namespace ${netns} has a route out: ${out[0]}`);

    o.note?.(`build environment: ${o.packages.length} recorded tool packages into ${root} (namespace ${netns}, loopback only)`);
    await mkdir(dirname(root), { recursive: true });
    await must(
      'ip',
      [
        'netns',
        'exec',
        netns,
        'mmdebstrap',
        '--mode=root',
        '--variant=minbase',
        `--include=${o.packages.join(',')}`,
        // naming a hook directory turns mmdebstrap's own merged-/usr set-up off: name it too
        '--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr',
        '--hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount',
        o.suite,
        root,
        `deb [trusted=yes] file:${join(o.repoDir, 'tools')} ./`,
      ],
      'build environment (mmdebstrap from the saved tools)',
    );
    unmount = await prepareChroot(root, o.binds);

    // the image repository, served inside the namespace
    server = execa('ip', ['netns', 'exec', netns, process.execPath, join(here, 'repo-server.js'), join(o.repoDir, 'image'), String(REPO_PORT)], {
      reject: false,
      stdin: 'ignore',
    });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new BuildEnvError('the saved repository server did not start in 10 s')), 10_000);
      server!.stdout?.on('data', (d: Buffer) => {
        if (d.toString().includes('listening')) {
          clearTimeout(t);
          resolve();
        }
      });
      void server!.then((r) => reject(new BuildEnvError(`the saved repository server exited: ${r.stderr}`)));
    });

    const debos = `${root}.debos`;
    await writeFile(
      debos,
      `#!/bin/sh\n# debos in the recorded build environment, in a namespace with loopback only\nexec ip netns exec ${netns} chroot ${root} /bin/sh -c 'cd "$0" && exec debos "$@"' "$PWD" "$@"\n`,
    );
    await chmod(debos, 0o755);
    return {
      root,
      netns,
      routes,
      debos,
      fetch: { name: 'saved-repo.list', content: `deb [trusted=yes] http://127.0.0.1:${REPO_PORT}/ ./\n` },
      run: ['ip', 'netns', 'exec', netns, 'chroot', root],
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

// Running things in the lab: where (a lab namespace, or a policy namespace
// whoever made it), as whom (a real uid via setpriv), with which files bound
// over which paths (a private mount namespace, never the host's), and the one
// way to start a server and have teardownLab stop it. A helper script is
// always staged in the lab's directory first (stage.ts), so the uid that runs
// it can read it wherever the checkout lives.
import { asUser, type Ids, type Ran, sh } from './netns.js';
import { type Proc, type ProcOptions, startProcess } from './process.js';
import { interpreterFor, stageFile, writeLabFile } from './stage.js';
import type { Lab } from './topology.js';

/**
 * 'sut' (inside the holder when the netns script owns the namespaces), 'lan',
 * 'inet'; a policy namespace by its policy name (the lab's lk-<name>-XXXX, or
 * the script's, inside the holder); or a lab namespace by its name.
 */
export type Where = 'sut' | 'lan' | 'inet' | { readonly guest: string } | { readonly ns: string };

export interface Bind {
  readonly source: string;
  readonly target: string;
  readonly readOnly?: boolean;
}

export interface ExecOptions {
  /** Run as this uid/gid, no supplementary groups (after the binds, which need root). */
  readonly as?: Ids;
  /** Files bound over paths in a private mount namespace for this command only. */
  readonly binds?: readonly Bind[];
  /** A clean environment with exactly these variables. */
  readonly env?: Readonly<Record<string, string>>;
  /** Commands in front of the program, run as root after the binds (a launcher: `leakless-netns-exec tbb --`). */
  readonly via?: readonly string[];
}

/** The argv prefix that puts a command in `where`. */
export function whereArgv(lab: Lab, where: Where): string[] {
  const holder = lab.holder ? ['nsenter', '-t', String(lab.holder.pid), '-m', '-n', '--'] : undefined;
  if (where === 'lan' || where === 'inet') return ['ip', 'netns', 'exec', lab[where]];
  if (where === 'sut') return holder ?? ['ip', 'netns', 'exec', lab.sut];
  if ('ns' in where) return ['ip', 'netns', 'exec', where.ns];
  if (holder) return [...holder, 'ip', 'netns', 'exec', where.guest];
  const g = lab.guests.get(where.guest);
  if (!g) throw new Error(`lab: no policy namespace ${where.guest} in this lab`);
  return ['ip', 'netns', 'exec', g];
}

/** The whole argv: where, binds (a private mount namespace), environment, uid, via, the command. */
export function labArgv(lab: Lab, where: Where, argv: readonly string[], opts: ExecOptions = {}): string[] {
  const binds = opts.binds ?? [];
  const mounts = binds.length
    ? [
        'unshare',
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        ['set -e', ...binds.map((b) => `mount --bind${b.readOnly ? ' -o ro' : ''} "$1" "$2"; shift 2`), 'exec "$@"'].join('\n'),
        'sh',
        ...binds.flatMap((b) => [b.source, b.target]),
      ]
    : [];
  const env = opts.env ? ['env', '-i', ...Object.entries(opts.env).map(([k, v]) => `${k}=${v}`)] : [];
  return [...whereArgv(lab, where), ...mounts, ...env, ...asUser(opts.as), ...(opts.via ?? []), ...argv];
}

/** Run a command in the lab and wait for it; never throws (see sh). */
export function run(
  lab: Lab,
  where: Where,
  cmd: string,
  args: readonly string[],
  opts: ExecOptions & { input?: string; timeoutMs?: number } = {},
): Promise<Ran> {
  const argv = labArgv(lab, where, [cmd, ...args], opts);
  return sh(argv[0]!, argv.slice(1), opts);
}

/** Stage a helper that sits next to the calling code (`new URL('./x.mjs', import.meta.url)`) and return its staged path. */
export function helper(lab: Lab, source: URL): string {
  return stageFile(lab.dir, source);
}

/** Run a staged helper (node for .mjs, python for .py) in the lab and wait for it. */
export function runHelper(
  lab: Lab,
  where: Where,
  source: URL,
  args: readonly string[],
  opts: ExecOptions & { input?: string; timeoutMs?: number } = {},
): Promise<Ran> {
  const path = helper(lab, source);
  const [cmd, ...pre] = interpreterFor(path);
  return run(lab, where, cmd!, [...pre, path, ...args], opts);
}

export type ServerCommand = readonly string[] | { readonly helper: URL; readonly args?: readonly string[] };

/**
 * Start a long-running process in the lab (a helper script, staged first, or
 * a plain command), wait until it is ready, and register it with the lab:
 * teardownLab stops it if the caller does not.
 */
export async function startServer(
  lab: Lab,
  where: Where,
  command: ServerCommand,
  opts: ExecOptions & Omit<ProcOptions, 'label'> & { label?: string },
): Promise<Proc> {
  let argv: string[];
  if ('helper' in command) {
    const path = helper(lab, command.helper);
    argv = [...interpreterFor(path), path, ...(command.args ?? [])];
  } else argv = [...(command as readonly string[])];
  const place = typeof where === 'string' ? where : 'ns' in where ? where.ns : where.guest;
  const label =
    opts.label ??
    `${argv
      .map((a) => a.split('/').pop())
      .join(' ')
      .slice(0, 60)} in ${place}${opts.as ? ` as uid ${opts.as.uid}` : ''}`;
  const proc = await startProcess(labArgv(lab, where, argv, opts), { ...opts, label });
  lab.procs.push(proc);
  return proc;
}

/** Write a file in the lab's directory (readable by every uid unless `mode` says otherwise). */
export function labFile(lab: Lab, name: string, content: string | Buffer, mode = 0o644): string {
  return writeLabFile(lab.dir, name, content, mode);
}

/** Write a file under /etc or /usr/lib through the holder's overlays: it exists for this lab only. */
export async function writeEtc(lab: Lab, path: string, content: string, mode: number): Promise<void> {
  if (!lab.holder) throw new Error(`writeEtc ${path}: only a lab with namespaces: 'script' has a private /etc and /usr/lib`);
  if (!path.startsWith('/etc/') && !path.startsWith('/usr/lib/')) throw new Error(`writeEtc: ${path} is not under /etc or /usr/lib`);
  const r = await run(lab, 'sut', 'sh', ['-c', 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"', 'sh', path, mode.toString(8)], {
    input: content,
  });
  if (r.exitCode !== 0) throw new Error(`writeEtc ${path}: ${r.stderr}`);
}

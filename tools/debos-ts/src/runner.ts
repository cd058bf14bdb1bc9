// Running debos with execa: every line goes to the full log file and to the
// progress display (stage = the action debos announced, plus elapsed time);
// on failure the error names the failing action and carries the last lines
// it logged. Whether debos runs in fakemachine or host mode
// (--disable-fakemachine) is the caller's decision (see @leakless/image's
// accelerator probe): this runner only carries it out.
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { execa } from 'execa';
import { parseDebosLine } from './log.js';
import { silentProgress, type Progress, type StageTiming } from './progress.js';

export type DebosMode = 'host' | 'fakemachine';
/** fakemachine's backends; naming one makes debos fail instead of falling back to the host. */
export type FakemachineBackend = 'kvm' | 'qemu' | 'uml';

export interface DebosRunOptions {
  /** Path of the rendered recipe (its directory is $RECIPEDIR). */
  readonly recipe: string;
  readonly artifactDir: string;
  /** debos' working directory; in host mode its scratch dir (.debos-*) is created here. */
  readonly cwd: string;
  /** The full log (every line debos and its commands printed). */
  readonly logFile: string;
  readonly mode: DebosMode;
  /** fakemachine mode: the backend (--fakemachine-backend); default debos' auto (which may fall back to the host). */
  readonly fakemachineBackend?: FakemachineBackend;
  /** Why this mode (written to the log). */
  readonly modeReason?: string;
  /** -e K:V: environment for commands debos runs in the chroot (systemd-nspawn --setenv). */
  readonly environ?: Readonly<Record<string, string>>;
  /** Environment of the debos process itself (host `run` actions inherit it). */
  readonly env?: Readonly<Record<string, string>>;
  /** -t K:V template variables. */
  readonly templateVars?: Readonly<Record<string, string>>;
  readonly progress?: Progress;
  /** The debos binary (default: debos on PATH). */
  readonly debos?: string;
  /** How many log lines a failure carries (default 40). */
  readonly tailLines?: number;
  readonly timeoutMs?: number;
  readonly extraArgs?: readonly string[];
}

export interface DebosRun {
  /** The mode debos ran in (host when debos fell back from fakemachine on its own). */
  readonly mode: 'host' | 'fakemachine';
  readonly modeReason: string;
  readonly argv: readonly string[];
  readonly stages: readonly StageTiming[];
  readonly ms: number;
  readonly logFile: string;
}

export type DebosFailure = 'not-found' | 'failed' | 'timeout' | 'killed';

export class DebosError extends Error {
  override readonly name = 'DebosError';
  constructor(
    readonly kind: DebosFailure,
    /** 127 when debos is missing, else debos' exit code (or 1 when it was killed). */
    readonly exitCode: number,
    message: string,
    readonly logFile: string,
    /** The action that failed (debos' own report, else the last one it started). */
    readonly action: string | undefined,
    /** The last lines logged (by the failing action when known). */
    readonly tail: readonly string[],
    readonly stages: readonly StageTiming[],
  ) {
    super(message);
  }
}

/** The debos command line (pure: the mode is decided by the caller). */
export function debosArgs(
  o: Pick<DebosRunOptions, 'recipe' | 'artifactDir' | 'environ' | 'templateVars' | 'extraArgs' | 'fakemachineBackend'>,
  mode: 'host' | 'fakemachine',
): string[] {
  const args: string[] = [];
  if (mode === 'host') args.push('--disable-fakemachine');
  else if (o.fakemachineBackend) args.push('--fakemachine-backend', o.fakemachineBackend);
  args.push('--artifactdir', o.artifactDir);
  for (const k of Object.keys(o.templateVars ?? {}).sort()) args.push('-t', `${k}:${o.templateVars![k]}`);
  for (const k of Object.keys(o.environ ?? {}).sort()) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`debos: bad environment variable name ${JSON.stringify(k)}`);
    args.push('-e', `${k}:${o.environ![k]}`);
  }
  args.push(...(o.extraArgs ?? []), o.recipe);
  return args;
}

function closeStream(s: WriteStream): Promise<void> {
  return new Promise((resolve) => s.end(resolve));
}

export async function runDebos(o: DebosRunOptions): Promise<DebosRun> {
  const progress = o.progress ?? silentProgress();
  const tailLines = o.tailLines ?? 40;
  const mode = o.mode;
  const reason = o.modeReason ?? `${mode} mode requested`;
  const bin = o.debos ?? 'debos';
  const args = debosArgs(o, mode);
  await mkdir(dirname(o.logFile), { recursive: true });
  await mkdir(o.artifactDir, { recursive: true });
  const log = createWriteStream(o.logFile, { flags: 'w' });
  log.write(`# ${[bin, ...args].join(' ')}\n# mode: ${mode} (${reason})\n`);
  const started = Date.now();

  const recent: string[] = [];
  let actionLines: string[] = [];
  let currentAction: string | undefined;
  let failedAction: string | undefined;
  let failure: string | undefined;
  let sawDone = false;
  let fellBack = false;
  const keep = (buf: string[], line: string) => {
    buf.push(line);
    if (buf.length > tailLines) buf.shift();
  };

  const sub = execa(bin, args, {
    cwd: o.cwd,
    env: { ...o.env },
    extendEnv: true,
    stdin: 'ignore',
    all: true,
    buffer: false,
    reject: false,
    ...(o.timeoutMs !== undefined ? { timeout: o.timeoutMs } : {}),
  });
  let spawnError: Error | undefined;
  try {
    for await (const line of sub.iterable({ from: 'all' })) {
      log.write(line + '\n');
      keep(recent, line);
      const ev = parseDebosLine(line);
      switch (ev.kind) {
        case 'action':
          currentAction = ev.name;
          actionLines = [];
          progress.stage(ev.name);
          break;
        case 'failed':
          failedAction = ev.action;
          failure = `${ev.stage}: ${ev.error}`;
          keep(actionLines, line);
          break;
        case 'done':
          sawDone = true;
          break;
        case 'output':
          keep(actionLines, line);
          progress.line(ev.text);
          break;
        case 'host-mode':
          fellBack = mode === 'fakemachine';
          break;
        case 'message':
          keep(actionLines, line);
          progress.line(ev.text);
          break;
      }
    }
  } catch (e) {
    spawnError = e as Error;
  }
  const r = await sub;
  await closeStream(log);
  const code = (r as { code?: string }).code ?? (spawnError as NodeJS.ErrnoException | undefined)?.code;

  if (code === 'ENOENT') {
    const stages = progress.finish(false);
    throw new DebosError(
      'not-found',
      127,
      `${bin}: not found. Install it without Recommends (they pull systemd-resolved, which breaks DNS here): ` +
        `apt-get install --no-install-recommends debos systemd-container (or: tools/leakless/install-deps.sh e2e)`,
      o.logFile,
      undefined,
      [],
      stages,
    );
  }
  const ok = r.exitCode === 0 && !failedAction && sawDone;
  const stages = progress.finish(ok);
  if (ok) {
    const ran = fellBack
      ? { mode: 'host' as const, modeReason: `${reason}; but debos could not start fakemachine and ran on the host (see ${o.logFile})` }
      : { mode, modeReason: reason };
    return { ...ran, argv: [bin, ...args], stages, ms: Date.now() - started, logFile: o.logFile };
  }

  const action = failedAction ?? currentAction;
  const tail = actionLines.length ? actionLines : recent;
  const kind: DebosFailure = r.timedOut ? 'timeout' : r.isTerminated && !r.timedOut ? 'killed' : 'failed';
  const how = r.timedOut
    ? `timed out after ${o.timeoutMs} ms`
    : r.exitCode === undefined
      ? `killed by ${r.signal ?? 'a signal'}`
      : r.exitCode === 0
        ? 'exited 0 but did not report "Recipe done"'
        : `exit ${r.exitCode}`;
  const message =
    `debos failed${action ? ` in action "${action}"` : ' before its first action'} (${how})` +
    (failure ? `: ${failure}` : '') +
    `\nlast ${tail.length} log lines (full log: ${o.logFile}):\n` +
    tail.map((l) => `  | ${l}`).join('\n');
  throw new DebosError(kind, r.exitCode && r.exitCode > 0 ? r.exitCode : 1, message, o.logFile, action, tail, stages);
}

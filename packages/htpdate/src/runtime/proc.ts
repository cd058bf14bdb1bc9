// Process plumbing shared by the three tools: config loading, running a
// subcommand of the same bundle as an unprivileged user, running the
// clock-setting helper, and turning outcomes into exit codes.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { EXIT, ToolFailure, type Outcome } from './exit-codes.js';
import { DEFAULT_CONFIG, parseTimeConf, type TimeConfig } from './config.js';

export interface Parsed {
  readonly command: string | undefined;
  readonly config: string;
  readonly flags: ReadonlyMap<string, string | true>;
  readonly positionals: readonly string[];
}

/** `CMD [--config FILE] [--flag[=value]]… [positional]…`; valueFlags take the next word. */
export function parseArgv(argv: readonly string[], valueFlags: readonly string[], boolFlags: readonly string[]): Parsed {
  const flags = new Map<string, string | true>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || valueFlags.includes(a)) {
      const v = argv[++i];
      if (v === undefined) throw new ToolFailure('invalid-config', `${a} needs a value`);
      flags.set(a, v);
    } else if (boolFlags.includes(a)) flags.set(a, true);
    else if (a.startsWith('-')) throw new ToolFailure('invalid-config', `unknown option ${a}`);
    else positionals.push(a);
  }
  const [command, ...rest] = positionals;
  return { command, config: (flags.get('--config') as string | undefined) ?? DEFAULT_CONFIG, flags, positionals: rest };
}

export function loadConfig(path: string): TimeConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ToolFailure('invalid-config', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return parseTimeConf(text);
  } catch (e) {
    if (e instanceof ToolFailure) throw new ToolFailure('invalid-config', `${path}: ${e.message}`);
    throw e;
  }
}

export function uid(): number {
  return process.getuid?.() ?? -1;
}

export interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly timedOut: boolean;
}

/**
 * Run a subcommand of this same bundle as uid:gid (libuv sets gid, clears
 * supplementary groups, then sets uid), with an empty environment and cwd /,
 * so the network-facing half holds no privilege of the caller.
 */
export function runSelfAs(ids: { uid: number; gid: number }, args: readonly string[], opts: { timeoutMs: number; maxStdout: number }): Promise<ChildResult> {
  return runProgram(process.execPath, [process.argv[1]!, ...args], { ...opts, uid: ids.uid, gid: ids.gid });
}

export function runProgram(
  cmd: string,
  args: readonly string[],
  opts: { timeoutMs: number; maxStdout: number; uid?: number; gid?: number },
): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], {
      cwd: '/',
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      stdio: ['ignore', 'pipe', 'inherit'],
      ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
      ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
    });
    let out = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      if (out.length > opts.maxStdout) child.kill('SIGKILL');
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: out.slice(0, opts.maxStdout + 1), timedOut });
    });
  });
}

/** Run a tool's main: a ToolFailure becomes its exit code and one line on stderr; anything else is a bug (exit 1). */
export function runMain(tool: string, main: () => Promise<Outcome | undefined>): void {
  main().then(
    // exit explicitly: a lingering socket or timer must not keep a oneshot
    // unit running (stdout/stderr are synchronous on Linux, nothing is lost)
    (o) => process.exit(EXIT[o ?? 'ok']),
    (e: unknown) => {
      if (e instanceof ToolFailure) {
        process.stderr.write(`${tool}: ${e.outcome}: ${e.message}\n`);
        process.exit(EXIT[e.outcome]);
      }
      process.stderr.write(`${tool}: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exit(EXIT.internal);
    },
  );
}

export function log(tool: string, line: string): void {
  process.stderr.write(`${tool}: ${line}\n`);
}

/** The outcome a child's exit code stands for (for propagating it unchanged). */
export function outcomeOfCode(code: number | null): Outcome | undefined {
  return (Object.keys(EXIT) as Outcome[]).find((k) => EXIT[k] === code);
}

// Long-running lab processes (listeners, servers, tcpdump, tor, the netns
// holder): started, awaited until they say they are ready, and stopped. One
// implementation, so every suite gets the same bounded wait, the same error
// (with the process's own words) when it dies early, and the same stop that
// never throws on a teardown path.
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';

export interface ProcOptions {
  /** Shown in errors. */
  readonly label: string;
  /** A stdout or stderr line that says the process is ready; without it, ready once spawned. */
  readonly ready?: RegExp | ((line: string) => boolean);
  readonly readyTimeoutMs?: number;
  /** Every stdout line (text output). */
  readonly onLine?: (line: string) => void;
  /** Every stderr line. */
  readonly onErrLine?: (line: string) => void;
  /** Raw stdout chunks instead of lines (binary output: a pcap). */
  readonly onData?: (chunk: Buffer) => void;
  readonly stdin?: 'ignore' | 'pipe';
}

export interface Proc {
  readonly label: string;
  readonly pid: number;
  /** stdin, when started with stdin: 'pipe'. */
  write(text: string): void;
  endInput(): void;
  /** Everything it wrote on stderr so far. */
  stderr(): string;
  running(): boolean;
  /**
   * Send `signal`, wait up to graceMs for the exit, then SIGKILL. Idempotent;
   * never throws. Resolves with how it ended.
   */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<{ exitCode?: number; signal?: string }>;
}

const tail = (text: string, n = 5) => text.trim().split('\n').slice(-n).join(' | ');

export async function startProcess(argv: readonly string[], opts: ProcOptions): Promise<Proc> {
  const child: ResultPromise = execa(argv[0]!, argv.slice(1), {
    reject: false,
    buffer: false,
    stdin: opts.stdin ?? 'ignore',
    encoding: opts.onData ? 'buffer' : 'utf8',
  });
  let stderr = '';
  let stdoutTail = '';
  let exited = false;
  const ended = child.then((r) => {
    exited = true;
    return { exitCode: r.exitCode, signal: r.signal };
  });
  const isReady = (line: string) => (opts.ready instanceof RegExp ? opts.ready.test(line) : (opts.ready?.(line) ?? false));
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  if (opts.onData) child.stdout!.on('data', (d: Buffer) => opts.onData!(d));
  else
    createInterface({ input: child.stdout! }).on('line', (line) => {
      stdoutTail = `${stdoutTail}\n${line}`.slice(-2000);
      opts.onLine?.(line);
      if (isReady(line)) markReady();
    });
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr += `${line}\n`;
    opts.onErrLine?.(line);
    if (isReady(line)) markReady();
  });

  const proc: Proc = {
    label: opts.label,
    pid: child.pid ?? -1,
    write: (text) => void child.stdin?.write(text),
    endInput: () => void child.stdin?.end(),
    stderr: () => stderr,
    running: () => !exited,
    async stop(signal = 'SIGKILL', graceMs = 3000) {
      if (!exited) {
        child.kill(signal);
        const killer = signal === 'SIGKILL' ? undefined : setTimeout(() => child.kill('SIGKILL'), graceMs);
        await ended;
        if (killer) clearTimeout(killer);
      }
      return ended;
    },
  };
  if (!opts.ready) return proc;

  const limit = opts.readyTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const died = ended.then((r) => {
    throw new Error(`${opts.label} exited (${r.exitCode ?? r.signal}) before it was ready: ${tail(stderr) || tail(stdoutTail) || 'no output'}`);
  });
  died.catch(() => undefined); // an exit after it was ready is not an error here
  try {
    await Promise.race([
      ready,
      died,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${opts.label} not ready after ${limit} ms: ${tail(stderr) || tail(stdoutTail) || 'no output'}`)), limit);
      }),
    ]);
  } catch (e) {
    await proc.stop();
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return proc;
}

// The progress display for long work (bootstrap, squashfs, ISO, boot): the
// current stage, its elapsed time and, on a terminal, the latest log line.
// On a non-terminal (CI logs) it prints one line per stage start/end and a
// heartbeat, never the tool output itself (that goes to the full log file).

export interface StageTiming {
  readonly name: string;
  readonly ms: number;
  readonly ok: boolean;
}

export interface Progress {
  /** Start a stage; ends the previous one as ok. */
  stage(name: string): void;
  /** A line of tool output belonging to the current stage. */
  line(text: string): void;
  /** End the current stage with this outcome (the clock keeps running for the next). */
  end(ok: boolean): void;
  /** End the current stage (if any) and stop the clock. */
  finish(ok: boolean): StageTiming[];
  /** A message between stages (kept above the status line). */
  note(text: string): void;
}

export interface ProgressOptions {
  /** Prefix for every line, e.g. "iso". */
  readonly label: string;
  readonly write?: (s: string) => void;
  /** Redraw a status line in place (a terminal) or print lines (a log). */
  readonly tty?: boolean;
  readonly heartbeatMs?: number;
  readonly now?: () => number;
  /** Total stages, if known, for "3/7". */
  readonly total?: number;
}

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function createProgress(opts: ProgressOptions): Progress {
  const write = opts.write ?? ((s: string) => process.stderr.write(s));
  const tty = opts.tty ?? Boolean(process.stderr.isTTY);
  const now = opts.now ?? Date.now;
  const heartbeatMs = opts.heartbeatMs ?? 30_000;
  const width = () => (tty ? (process.stderr.columns ?? 100) : 100);
  const done: StageTiming[] = [];
  let current: { name: string; start: number; index: number } | undefined;
  let lastLine = '';
  let lastBeat = 0;
  let timer: NodeJS.Timeout | undefined;
  let statusShown = false;
  let count = 0;

  const clearStatus = () => {
    if (tty && statusShown) write('\r\x1b[2K');
    statusShown = false;
  };
  const counter = (i: number) => (opts.total ? ` ${i}/${opts.total}` : '');
  const drawStatus = () => {
    if (!current) return;
    const elapsed = formatDuration(now() - current.start);
    if (tty) {
      const head = `[${opts.label}${counter(current.index)}] ${current.name} ${elapsed}`;
      const room = width() - head.length - 4;
      const tail = room > 10 && lastLine ? `  ${lastLine.slice(0, room)}` : '';
      write(`\r\x1b[2K${head}${tail}`);
      statusShown = true;
    } else if (now() - lastBeat >= heartbeatMs) {
      lastBeat = now();
      write(`[${opts.label}] … ${current.name} still running (${elapsed})\n`);
    }
  };
  const endStage = (ok: boolean) => {
    if (!current) return;
    const ms = now() - current.start;
    done.push({ name: current.name, ms, ok });
    clearStatus();
    write(`[${opts.label}${counter(current.index)}] ${ok ? 'done' : 'FAILED'}: ${current.name} (${formatDuration(ms)})\n`);
    current = undefined;
    lastLine = '';
  };
  const ensureTimer = () => {
    if (timer) return;
    timer = setInterval(drawStatus, tty ? 1000 : Math.min(heartbeatMs, 5000));
    timer.unref();
  };

  return {
    stage(name) {
      endStage(true);
      count++;
      current = { name, start: now(), index: count };
      lastBeat = now();
      if (!tty) write(`[${opts.label}${counter(count)}] ${name} …\n`);
      drawStatus();
      ensureTimer();
    },
    line(text) {
      // eslint-disable-next-line no-control-regex
      lastLine = text.replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
      if (tty) drawStatus();
    },
    end(ok) {
      endStage(ok);
    },
    note(text) {
      clearStatus();
      write(`[${opts.label}] ${text}\n`);
      drawStatus();
    },
    finish(ok) {
      if (current) endStage(ok);
      if (timer) clearInterval(timer);
      timer = undefined;
      return [...done];
    },
  };
}

/** A Progress that shows nothing (library use, tests) but still times stages. */
export function silentProgress(now: () => number = Date.now): Progress {
  return createProgress({ label: '', write: () => {}, tty: false, now, heartbeatMs: Number.MAX_SAFE_INTEGER });
}

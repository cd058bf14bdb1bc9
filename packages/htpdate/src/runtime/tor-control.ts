// "After Tor has bootstrapped" without a marker file from another package:
// ask tor itself over its ControlPort (root is the ControlPort's only client in
// the policy). Tails' unit polls /run/tor-has-bootstrapped/done once a second;
// this polls GETINFO status/bootstrap-phase once a second instead.
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';

/** A line-oriented reader of control-port replies ("250-…", "250 OK"). */
class Replies {
  private buf = '';
  private waiters: ((lines: string[] | Error) => void)[] = [];
  private lines: string[] = [];
  private failed: Error | undefined;

  constructor(sock: Duplex) {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.buf += d;
      if (this.buf.length > 65536) this.fail(new Error('control port reply too long'));
      for (let nl = this.buf.indexOf('\r\n'); nl >= 0; nl = this.buf.indexOf('\r\n')) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 2);
        this.lines.push(line);
        // a reply ends with "NNN " (space after the status code)
        if (/^\d{3} /.test(line)) {
          const done = this.lines;
          this.lines = [];
          this.waiters.shift()?.(done);
        }
      }
    });
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => this.fail(new Error('control port closed the connection')));
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const w of this.waiters.splice(0)) w(e);
  }

  next(): Promise<string[]> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => this.waiters.push((r) => (r instanceof Error ? reject(r) : resolve(r))));
  }
}

export class ControlConnection {
  private constructor(
    private readonly sock: Duplex,
    private readonly replies: Replies,
  ) {}

  /** Over any connected stream (tests use an in-memory pair). */
  static over(sock: Duplex): ControlConnection {
    return new ControlConnection(sock, new Replies(sock));
  }

  static open(address: string, port: number): Promise<ControlConnection> {
    return new Promise((resolve, reject) => {
      const sock = connect({ host: address, port, family: 4 });
      sock.once('error', reject);
      sock.once('connect', () => {
        sock.off('error', reject);
        resolve(ControlConnection.over(sock));
      });
    });
  }

  async command(line: string): Promise<string[]> {
    if (/[\r\n]/.test(line)) throw new Error('control command with a newline');
    const reply = this.replies.next();
    this.sock.write(`${line}\r\n`);
    const lines = await reply;
    if (!lines[lines.length - 1]!.startsWith('250')) throw new Error(`tor: ${lines[lines.length - 1]}`);
    return lines;
  }

  /** PROTOCOLINFO, then NULL or COOKIE authentication (Debian's tor uses cookie auth on its ControlPort). */
  async authenticate(readCookie: (path: string) => Promise<Buffer> = (p) => readFile(p)): Promise<void> {
    const info = await this.command('PROTOCOLINFO 1');
    const auth = info.find((l) => l.startsWith('250-AUTH '));
    const methods = /METHODS=([A-Z,]+)/.exec(auth ?? '')?.[1]?.split(',') ?? [];
    if (methods.includes('NULL')) {
      await this.command('AUTHENTICATE');
      return;
    }
    const file = /COOKIEFILE="((?:[^"\\]|\\.)*)"/.exec(auth ?? '')?.[1];
    if (!methods.includes('COOKIE') || file === undefined) throw new Error(`no usable control-port authentication (methods: ${methods.join(',') || 'none'})`);
    const cookie = await readCookie(file.replace(/\\(.)/g, '$1'));
    if (cookie.length !== 32) throw new Error(`control cookie ${file} is ${cookie.length} bytes, not 32`);
    await this.command(`AUTHENTICATE ${cookie.toString('hex')}`);
  }

  /** Bootstrap progress in percent (status/bootstrap-phase … PROGRESS=n). */
  async bootstrapProgress(): Promise<number> {
    const lines = await this.command('GETINFO status/bootstrap-phase');
    const m = /PROGRESS=(\d{1,3})/.exec(lines.join('\n'));
    if (!m) throw new Error('tor did not report its bootstrap phase');
    return Number(m[1]);
  }

  close(): void {
    this.sock.destroy();
  }
}

/**
 * Resolve once tor reports 100 %. Connection errors are retried (tor may be
 * restarting, e.g. set-clock restarts it); gives up at the deadline.
 */
export async function waitForBootstrap(
  control: { address: string; port: number },
  opts: {
    deadlineMs: number;
    pollMs?: number;
    now?: () => number;
    log?: (s: string) => void;
    readCookie?: (path: string) => Promise<Buffer>;
    open?: () => Promise<ControlConnection>;
  },
): Promise<void> {
  const open = opts.open ?? (() => ControlConnection.open(control.address, control.port));
  const now = opts.now ?? Date.now;
  const poll = opts.pollMs ?? 1000;
  let last = '';
  const sleep = (t: number): Promise<void> => new Promise((r) => setTimeout(r, t));
  while (now() < opts.deadlineMs) {
    let conn: ControlConnection | undefined;
    try {
      conn = await open();
      await conn.authenticate(opts.readCookie);
      while (now() < opts.deadlineMs) {
        const p = await conn.bootstrapProgress();
        if (p >= 100) return;
        const msg = `tor bootstrap at ${p} %`;
        if (msg !== last) opts.log?.(msg);
        last = msg;
        await sleep(poll);
      }
    } catch (e) {
      const msg = `control port ${control.address}:${control.port}: ${(e as Error).message}`;
      if (msg !== last) opts.log?.(msg);
      last = msg;
      await sleep(poll);
    } finally {
      conn?.close();
    }
  }
  throw new Error(`tor did not finish bootstrapping in time (${last || 'no answer'})`);
}

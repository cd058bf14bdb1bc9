// "After Tor has bootstrapped" without a marker file from another package:
// ask tor itself, over its control socket, until GETINFO
// status/bootstrap-phase says 100 % (Tails' unit polls
// /run/tor-has-bootstrapped/done once a second instead).
//
// The client runs as root, so whoever answers must be proven to be tor
// (docs/threat-model.md#controlport). A TCP ControlPort can be bound by any
// local user while tor is down, and its PROTOCOLINFO reply names a cookie
// file the client would read and send: a squatter got root to send it the
// bytes of a root-only file and could fake a finished bootstrap. So:
//   - the control socket is a unix socket in tor's run directory, which only
//     root and the tor user can write: before connecting, the socket and every
//     directory above it must belong to one of them and be writable by no one
//     else, so nobody else can have put a listener there, tor running or not;
//   - the cookie path is the configuration's, never the server's;
//   - authentication is SAFECOOKIE: the server must first prove it knows the
//     cookie (SERVERHASH, checked in constant time), and the client never
//     sends the cookie itself, only an HMAC bound to the server's nonce;
//   - every reply and the whole wait have a deadline.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { lstatSync, readFileSync, type Stats } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';

/** Where tor's control socket and cookie are, and who may own them besides root. */
export interface ControlEndpoint {
  readonly socket: string;
  readonly cookie: string;
  /** The tor daemon user (Debian's tor chowns its socket and cookie to it). */
  readonly torUid: number;
}

/** A reply takes no longer than this, even when the overall deadline is further away. */
export const REPLY_TIMEOUT_MS = 10_000;
export const COOKIE_BYTES = 32;
const SERVER_TO_CONTROLLER = 'Tor safe cookie authentication server-to-controller hash';
const CONTROLLER_TO_SERVER = 'Tor safe cookie authentication controller-to-server hash';

type Lstat = (path: string) => Pick<Stats, 'uid' | 'mode' | 'size' | 'isSocket' | 'isFile' | 'isDirectory' | 'isSymbolicLink'>;

/**
 * Why `path` (a socket or a regular file, per `kind`) could have been put
 * there by someone other than root or the tor user, or undefined. Every
 * directory from its parent up to / must belong to root or tor and be
 * writable by its owner only; the entry itself must belong to one of them.
 */
export function pathProblem(path: string, kind: 'socket' | 'file', torUid: number, lstat: Lstat = lstatSync): string | undefined {
  if (!path.startsWith('/')) return `${path} is not absolute`;
  const trusted = (uid: number): boolean => uid === 0 || uid === torUid;
  let st: ReturnType<Lstat>;
  try {
    st = lstat(path);
  } catch (e) {
    return `${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  if (kind === 'socket' ? !st.isSocket() : !st.isFile()) return `${path} is not a ${kind}`;
  if (!trusted(st.uid)) return `${path} belongs to uid ${st.uid}, not to root or the tor user (${torUid})`;
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    let d: ReturnType<Lstat>;
    try {
      d = lstat(dir);
    } catch (e) {
      return `${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    }
    if (!d.isDirectory()) return `${dir} is not a directory`;
    if (!trusted(d.uid)) return `${dir} belongs to uid ${d.uid}, not to root or the tor user (${torUid})`;
    if (d.mode & 0o022) return `${dir} is writable by others (mode ${(d.mode & 0o7777).toString(8)})`;
    if (dir === '/') return undefined;
  }
}

/** The HMACs of SAFECOOKIE (tor's control-spec, AUTHCHALLENGE). */
export function safeCookieHashes(cookie: Buffer, clientNonce: Buffer, serverNonce: Buffer): { server: Buffer; client: Buffer } {
  const msg = Buffer.concat([cookie, clientNonce, serverNonce]);
  return {
    server: createHmac('sha256', SERVER_TO_CONTROLLER).update(msg).digest(),
    client: createHmac('sha256', CONTROLLER_TO_SERVER).update(msg).digest(),
  };
}

/** A line-oriented reader of control replies ("250-…", "250 OK"). */
class Replies {
  private buf = '';
  private waiters: ((lines: string[] | Error) => void)[] = [];
  private lines: string[] = [];
  private failed: Error | undefined;

  constructor(sock: Duplex) {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.buf += d;
      if (this.buf.length > 65536) this.fail(new Error('control reply too long'));
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
    sock.on('close', () => this.fail(new Error('the control socket closed the connection')));
  }

  fail(e: Error): void {
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
    private readonly now: () => number,
  ) {}

  /** Over any connected stream (tests use an in-memory pair). */
  static over(sock: Duplex, now: () => number = Date.now): ControlConnection {
    return new ControlConnection(sock, new Replies(sock), now);
  }

  /** Connect to tor's control socket once its path proves that only root or tor can have made it. */
  static open(endpoint: ControlEndpoint, deadlineMs: number): Promise<ControlConnection> {
    const bad = pathProblem(endpoint.socket, 'socket', endpoint.torUid);
    if (bad) return Promise.reject(new Error(`not tor's control socket: ${bad}`));
    return new Promise((resolve, reject) => {
      const sock = connect({ path: endpoint.socket });
      const timer = setTimeout(
        () => {
          sock.destroy();
          reject(new Error(`no connection to ${endpoint.socket} before the deadline`));
        },
        Math.max(0, Math.min(REPLY_TIMEOUT_MS, deadlineMs - Date.now())),
      );
      sock.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(ControlConnection.over(sock));
      });
    });
  }

  /** One command, its reply within REPLY_TIMEOUT_MS and before `deadlineMs`; a reply other than 250 throws. */
  async command(line: string, deadlineMs: number): Promise<string[]> {
    if (/[\r\n]/.test(line)) throw new Error('control command with a newline');
    const verb = line.split(' ', 1)[0];
    const wait = Math.max(0, Math.min(REPLY_TIMEOUT_MS, deadlineMs - this.now()));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const e = new Error(`no reply to ${verb} within ${Math.round(wait / 1000)} s`);
        this.replies.fail(e);
        this.sock.destroy();
        reject(e);
      }, wait);
    });
    const reply = this.replies.next();
    this.sock.write(`${line}\r\n`);
    try {
      const lines = await Promise.race([reply, timeout]);
      if (!lines[lines.length - 1]!.startsWith('250')) throw new Error(`${verb}: ${lines[lines.length - 1]}`);
      return lines;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * SAFECOOKIE only (Debian's tor offers it with CookieAuthentication 1).
   * `cookie` is read from the configured path; the file PROTOCOLINFO names
   * is never read. Throws unless the server proves it knows the cookie.
   */
  async authenticate(cookie: Buffer, deadlineMs: number): Promise<void> {
    if (cookie.length !== COOKIE_BYTES) throw new Error(`the control cookie is ${cookie.length} bytes, not ${COOKIE_BYTES}`);
    const info = await this.command('PROTOCOLINFO 1', deadlineMs);
    const methods = /^250-AUTH METHODS=([A-Z,]+)/.exec(info.find((l) => l.startsWith('250-AUTH ')) ?? '')?.[1]?.split(',') ?? [];
    if (!methods.includes('SAFECOOKIE')) throw new Error(`no SAFECOOKIE authentication offered (methods: ${methods.join(',') || 'none'})`);
    const clientNonce = randomBytes(32);
    const challenge = await this.command(`AUTHCHALLENGE SAFECOOKIE ${clientNonce.toString('hex')}`, deadlineMs);
    const m = /^250 AUTHCHALLENGE SERVERHASH=([0-9A-Fa-f]{64}) SERVERNONCE=([0-9A-Fa-f]{64})$/.exec(challenge[challenge.length - 1]!);
    if (!m) throw new Error('malformed AUTHCHALLENGE reply');
    const hashes = safeCookieHashes(cookie, clientNonce, Buffer.from(m[2]!, 'hex'));
    if (!timingSafeEqual(hashes.server, Buffer.from(m[1]!, 'hex'))) throw new Error('the server does not know tor’s cookie (SERVERHASH): not tor');
    await this.command(`AUTHENTICATE ${hashes.client.toString('hex')}`, deadlineMs);
  }

  /** Bootstrap progress in percent (status/bootstrap-phase … PROGRESS=n). */
  async bootstrapProgress(deadlineMs: number): Promise<number> {
    const lines = await this.command('GETINFO status/bootstrap-phase', deadlineMs);
    const m = / PROGRESS=(\d{1,3}) /.exec(lines.join('\n'));
    if (!m) throw new Error('tor did not report its bootstrap phase');
    return Number(m[1]);
  }

  close(): void {
    this.sock.destroy();
  }
}

/** The cookie, from the configured path, once that path proves only root or tor can have written it. */
export function readCookie(endpoint: ControlEndpoint): Buffer {
  const bad = pathProblem(endpoint.cookie, 'file', endpoint.torUid);
  if (bad) throw new Error(`not tor's cookie: ${bad}`);
  return readFileSync(endpoint.cookie);
}

/**
 * Resolve once tor reports 100 %. Failures are retried once per poll (tor may
 * be starting or restarting, e.g. set-clock restarts it) until the deadline,
 * which is required: a wait without an end would hold the unit forever.
 */
export async function waitForBootstrap(opts: {
  deadlineMs: number;
  open: (deadlineMs: number) => Promise<ControlConnection>;
  cookie: () => Buffer;
  pollMs?: number;
  now?: () => number;
  log?: (s: string) => void;
}): Promise<void> {
  if (!Number.isFinite(opts.deadlineMs)) throw new Error('waiting for the bootstrap needs a deadline');
  const now = opts.now ?? Date.now;
  const poll = opts.pollMs ?? 1000;
  let last = '';
  const say = (msg: string): void => {
    if (msg !== last) opts.log?.(msg);
    last = msg;
  };
  const sleep = (t: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, Math.min(t, opts.deadlineMs - now()))));
  while (now() < opts.deadlineMs) {
    let conn: ControlConnection | undefined;
    try {
      conn = await opts.open(opts.deadlineMs);
      await conn.authenticate(opts.cookie(), opts.deadlineMs);
      while (now() < opts.deadlineMs) {
        const p = await conn.bootstrapProgress(opts.deadlineMs);
        if (p >= 100) return;
        say(`tor bootstrap at ${p} %`);
        await sleep(poll);
      }
    } catch (e) {
      say(`control socket: ${(e as Error).message}`);
      await sleep(poll);
    } finally {
      conn?.close();
    }
  }
  throw new Error(`tor did not finish bootstrapping in time (${last || 'no answer'})`);
}

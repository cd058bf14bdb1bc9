// The control client against scripted servers over in-memory streams: tor
// itself (SAFECOOKIE with the real cookie), and the squatter of the attack
// (a program that listened where the client dials while tor was down: it
// names a root-only file as the cookie and reports a finished bootstrap).
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { duplexPair } from '../test/duplex-pair.js';
import { ControlConnection, pathProblem, safeCookieHashes, waitForBootstrap } from './tor-control.js';

const COOKIE = Buffer.alloc(32, 0xab);

interface Script {
  /** The cookie the server knows (tor's), or undefined for a squatter that does not. */
  cookie?: Buffer;
  methods?: string;
  cookieFile?: string;
  steps?: number[];
  /** Never answer this command (a server that accepts and stalls). */
  stallOn?: string;
}

/** A scripted control server; returns every line the client sent. */
function fakeServer(srv: Duplex, s: Script) {
  const commands: string[] = [];
  const steps = [...(s.steps ?? [100])];
  let buf = '';
  let authed = false;
  let expected: Buffer | undefined;
  srv.setEncoding('latin1');
  srv.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      commands.push(line);
      if (s.stallOn && line.startsWith(s.stallOn)) continue;
      if (line === 'PROTOCOLINFO 1')
        srv.write(
          `250-PROTOCOLINFO 1\r\n250-AUTH METHODS=${s.methods ?? 'COOKIE,SAFECOOKIE'} COOKIEFILE="${s.cookieFile ?? '/run/tor/control.authcookie'}"\r\n250-VERSION Tor="0.4.9.1"\r\n250 OK\r\n`,
        );
      else if (line.startsWith('AUTHCHALLENGE SAFECOOKIE ')) {
        const serverNonce = randomBytes(32);
        const h = safeCookieHashes(s.cookie ?? randomBytes(32), Buffer.from(line.split(' ')[2]!, 'hex'), serverNonce);
        expected = h.client;
        srv.write(`250 AUTHCHALLENGE SERVERHASH=${h.server.toString('hex').toUpperCase()} SERVERNONCE=${serverNonce.toString('hex').toUpperCase()}\r\n`);
      } else if (line.startsWith('AUTHENTICATE')) {
        // a squatter accepts anything; tor checks the client's hash
        authed = !s.cookie || (expected !== undefined && line === `AUTHENTICATE ${expected.toString('hex')}`);
        srv.write(authed ? '250 OK\r\n' : '515 Authentication failed\r\n');
      } else if (line === 'GETINFO status/bootstrap-phase' && (authed || !s.cookie)) {
        const p = steps.length > 1 ? steps.shift()! : steps[0]!;
        srv.write(`250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=${p} TAG=x SUMMARY="x"\r\n250 OK\r\n`);
      } else srv.write('514 Authentication required.\r\n');
    }
  });
  return commands;
}

const serving = (s: Script) => {
  const log: string[][] = [];
  return {
    log,
    open: async () => {
      const [client, srv] = duplexPair();
      log.push(fakeServer(srv, s));
      return ControlConnection.over(client);
    },
  };
};

describe('waitForBootstrap over SAFECOOKIE', () => {
  it('tor proves it knows the cookie, the client answers with its HMAC (never the cookie) and polls until 100 %', async () => {
    const tor = serving({ cookie: COOKIE, steps: [5, 50, 100] });
    await waitForBootstrap({ deadlineMs: Date.now() + 5000, pollMs: 5, cookie: () => COOKIE, open: tor.open });
    const c = tor.log[0]!;
    expect(c[0]).toBe('PROTOCOLINFO 1');
    expect(c[1]).toMatch(/^AUTHCHALLENGE SAFECOOKIE [0-9a-f]{64}$/);
    expect(c[2]).toMatch(/^AUTHENTICATE [0-9a-f]{64}$/);
    expect(c.join('\n')).not.toContain(COOKIE.toString('hex'));
    expect(c.filter((x) => x.startsWith('GETINFO'))).toHaveLength(3);
  });
  it('gives up at the deadline when tor stays below 100 %', async () => {
    const tor = serving({ cookie: COOKIE, steps: [45] });
    await expect(waitForBootstrap({ deadlineMs: Date.now() + 200, pollMs: 10, cookie: () => COOKIE, open: tor.open })).rejects.toThrow(/45 %/);
  });
  it('retries when the socket is not there yet (tor restarting)', async () => {
    let n = 0;
    const tor = serving({ cookie: COOKIE });
    await waitForBootstrap({
      deadlineMs: Date.now() + 5000,
      pollMs: 5,
      cookie: () => COOKIE,
      open: async () => {
        if (++n < 3) throw Object.assign(new Error('connect ENOENT'), { code: 'ENOENT' });
        return tor.open();
      },
    });
    expect(n).toBe(3);
  });
  it('refuses a server that offers no SAFECOOKIE (NULL, plain COOKIE, a password)', async () => {
    for (const methods of ['NULL', 'COOKIE', 'HASHEDPASSWORD']) {
      const srv = serving({ cookie: COOKIE, methods });
      await expect(waitForBootstrap({ deadlineMs: Date.now() + 100, pollMs: 10, cookie: () => COOKIE, open: srv.open })).rejects.toThrow(
        /no SAFECOOKIE authentication offered/,
      );
      expect(srv.log.flat().some((l) => l.startsWith('AUTHENTICATE') || l.startsWith('GETINFO'))).toBe(false);
    }
  });
  it('a wait without a deadline is refused', async () => {
    await expect(waitForBootstrap({ deadlineMs: Number.POSITIVE_INFINITY, cookie: () => COOKIE, open: serving({}).open })).rejects.toThrow(/deadline/);
  });
});

describe('attack: a squatter where the client dials (tor down), naming a root-only file as the cookie and faking "bootstrapped"', () => {
  const squatter: Script = { cookieFile: '/etc/shadow', steps: [100] };
  it('never reads the file the server names, never authenticates, never believes its bootstrap: fails at the deadline', async () => {
    const srv = serving(squatter);
    const read: string[] = [];
    const t0 = Date.now();
    await expect(
      waitForBootstrap({
        deadlineMs: t0 + 300,
        pollMs: 20,
        cookie: () => {
          read.push('the configured cookie');
          return COOKIE;
        },
        open: srv.open,
      }),
    ).rejects.toThrow(/does not know tor’s cookie \(SERVERHASH\): not tor/);
    expect(read.every((r) => r === 'the configured cookie')).toBe(true);
    const sent = srv.log.flat();
    expect(sent.filter((l) => l.startsWith('AUTHENTICATE'))).toEqual([]);
    expect(sent.filter((l) => l.startsWith('GETINFO'))).toEqual([]);
    expect(sent.join('\n')).not.toContain(COOKIE.toString('hex'));
  });
  it('control: the same scripted server with tor’s cookie is believed (the refusal is the proof of the cookie, nothing else)', async () => {
    await waitForBootstrap({ deadlineMs: Date.now() + 2000, pollMs: 5, cookie: () => COOKIE, open: serving({ ...squatter, cookie: COOKIE }).open });
  });
});

describe('attack: a server that accepts and never answers', () => {
  it('every reply has a deadline: the wait ends at its deadline, not never', async () => {
    const srv = serving({ cookie: COOKIE, stallOn: 'PROTOCOLINFO' });
    const t0 = Date.now();
    await expect(waitForBootstrap({ deadlineMs: t0 + 400, pollMs: 10, cookie: () => COOKIE, open: srv.open })).rejects.toThrow(
      /did not finish bootstrapping in time \(control socket: no reply to PROTOCOLINFO/,
    );
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe('the listener must be one only root or tor can have made', () => {
  const TOR = 106;
  type Entry = { uid: number; mode: number; type: 'socket' | 'file' | 'dir' | 'link' };
  const fs = (entries: Record<string, Entry>) => (p: string) => {
    const e = entries[p];
    if (!e) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return {
      uid: e.uid,
      mode: e.mode,
      size: 32,
      isSocket: () => e.type === 'socket',
      isFile: () => e.type === 'file',
      isDirectory: () => e.type === 'dir',
      isSymbolicLink: () => e.type === 'link',
    } as Pick<Stats, 'uid' | 'mode' | 'size' | 'isSocket' | 'isFile' | 'isDirectory' | 'isSymbolicLink'>;
  };
  const debian: Record<string, Entry> = {
    '/': { uid: 0, mode: 0o755, type: 'dir' },
    '/run': { uid: 0, mode: 0o755, type: 'dir' },
    '/run/tor': { uid: TOR, mode: 0o2755, type: 'dir' },
    '/run/tor/control': { uid: TOR, mode: 0o660, type: 'socket' },
    '/run/tor/control.authcookie': { uid: TOR, mode: 0o640, type: 'file' },
  };
  it("Debian's layout passes: /run/tor is the tor user's, 02755", () => {
    expect(pathProblem('/run/tor/control', 'socket', TOR, fs(debian))).toBeUndefined();
    expect(pathProblem('/run/tor/control.authcookie', 'file', TOR, fs(debian))).toBeUndefined();
  });
  it.each([
    ['a socket of the desktop user', { '/run/tor/control': { uid: 1000, mode: 0o777, type: 'socket' } }, /belongs to uid 1000/],
    ['a directory others may write', { '/run/tor': { uid: TOR, mode: 0o2777, type: 'dir' } }, /\/run\/tor is writable by others/],
    ['a directory of the desktop user', { '/run/tor': { uid: 1000, mode: 0o755, type: 'dir' } }, /\/run\/tor belongs to uid 1000/],
    ['a directory that is a link', { '/run/tor': { uid: 0, mode: 0o777, type: 'link' } }, /\/run\/tor is not a directory/],
    ['a world-writable /run', { '/run': { uid: 0, mode: 0o1777, type: 'dir' } }, /\/run is writable by others/],
    ['a regular file where the socket should be', { '/run/tor/control': { uid: TOR, mode: 0o660, type: 'file' } }, /is not a socket/],
    ['no socket at all (tor down)', { '/run/tor/control': undefined }, /ENOENT/],
  ] as const)('refused: %s', (_, change, msg) => {
    const entries = { ...debian, ...change } as Record<string, Entry>;
    expect(pathProblem('/run/tor/control', 'socket', TOR, fs(entries))).toMatch(msg);
  });
});

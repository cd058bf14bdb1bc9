import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { duplexPair } from '../test/duplex-pair.js';
import { EXIT, ToolFailure } from './exit-codes.js';
import { parsePlainHttpUrl } from './http.js';
import { ConnectivityJudge, preTorCheck, type PreTorSettings } from './pretor.js';

const fixture = readFileSync(new URL('../../fixtures/nm-connectivity-request.bin', import.meta.url));
const FLOOR = 1763769600_000; // 2025-11-22
const GOOD_DATE = 'Mon, 01 Dec 2025 12:00:00 GMT';
const settings: PreTorSettings = {
  url: parsePlainHttpUrl('http://fedoraproject.org/static/hotspot.txt')!,
  expectedBody: 'OK',
  timeoutMs: 300,
  releaseFloorMs: FLOOR,
  releaseCeilingMs: FLOOR + 5 * 31_557_600_000,
};

type Server = (sock: Duplex, client: Duplex) => void;

/** Run the check against an in-memory server; returns the outcome name and what the server received. */
async function run(server: Server, opts: { lookup?: () => Promise<string>; s?: Partial<PreTorSettings> } = {}) {
  let received = Buffer.alloc(0);
  const io = {
    lookup4: opts.lookup ?? (async () => '198.51.100.10'),
    connect: () => {
      const [client, srv] = duplexPair();
      srv.on('data', (d: Buffer) => {
        const first = received.length === 0;
        received = Buffer.concat([received, d]);
        if (first) server(srv, client);
      });
      return client;
    },
  };
  try {
    const r = await preTorCheck({ ...settings, ...opts.s }, io);
    return { outcome: 'ok' as const, timestamp: r.timestamp, received };
  } catch (e) {
    if (!(e instanceof ToolFailure)) throw e;
    return { outcome: e.outcome, message: e.message, received };
  }
}

const answer =
  (text: string, end = true): Server =>
  (sock) => {
    sock.write(Buffer.from(text, 'latin1'));
    if (end) sock.end();
  };

describe('preTorCheck outcomes (Tails exit codes)', () => {
  it('online with a correct date: prints the Date as a UTC timestamp; the request is NetworkManager’s, byte for byte', async () => {
    const r = await run(answer(`HTTP/1.1 200 OK\r\nDate: ${GOOD_DATE}\r\nContent-Length: 2\r\n\r\nOK`));
    expect(r).toMatchObject({ outcome: 'ok', timestamp: '2025-12-01T12:00:00+00:00' });
    expect(r.received.equals(fixture)).toBe(true);
  });
  it('online by the X-NetworkManager-Status header even with another body', async () => {
    const r = await run(answer(`HTTP/1.1 204 No Content\r\nDate: ${GOOD_DATE}\r\nX-NetworkManager-Status: online\r\n\r\n`));
    expect(r.outcome).toBe('ok');
  });
  it('decides on the body prefix without waiting for the connection to close (NM early abort)', async () => {
    const r = await run(answer(`HTTP/1.1 200 OK\r\nDate: ${GOOD_DATE}\r\n\r\nOK and more`, false));
    expect(r.outcome).toBe('ok');
  });
  it('reads a chunked body', async () => {
    const r = await run(answer(`HTTP/1.1 200 OK\r\nDate: ${GOOD_DATE}\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nO\r\n1\r\nK\r\n0\r\n\r\n`));
    expect(r.outcome).toBe('ok');
  });
  it.each([
    ['a redirect', 'HTTP/1.1 302 Found\r\nLocation: http://10.0.0.1/login\r\nDate: ' + GOOD_DATE + '\r\n\r\n'],
    ['a login page', 'HTTP/1.1 200 OK\r\nDate: ' + GOOD_DATE + '\r\nContent-Length: 14\r\n\r\n<html>login</html>'],
    ['an empty body', 'HTTP/1.1 200 OK\r\nDate: ' + GOOD_DATE + '\r\nContent-Length: 0\r\n\r\n'],
    ['a body cut short', 'HTTP/1.1 200 OK\r\nDate: ' + GOOD_DATE + '\r\n\r\nO'],
    ['a 511 page', 'HTTP/1.1 511 Network Authentication Required\r\nDate: ' + GOOD_DATE + '\r\n\r\n<html>'],
  ])('captive portal: %s', async (_, text) => {
    const r = await run(answer(text));
    expect(r.outcome).toBe('captive-portal');
    expect(EXIT[r.outcome]).toBe(5);
  });
  it('missing Date → 2', async () => {
    const r = await run(answer('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK'));
    expect([r.outcome, EXIT[r.outcome]]).toEqual(['missing-date', 2]);
  });
  it.each([['Date: tomorrow'], ['Date: Mon, 01 Dec 2025 12:00:00 GMT\r\nDate: Mon, 01 Dec 2025 12:00:01 GMT'], ['Date: Tue, 01 Dec 2025 12:00:00 GMT']])(
    'malformed Date → 3 (%j)',
    async (h) => {
      const r = await run(answer(`HTTP/1.1 200 OK\r\n${h}\r\n\r\nOK`));
      expect([r.outcome, EXIT[r.outcome]]).toEqual(['malformed-date', 3]);
    },
  );
  it('a Date before the release → 6', async () => {
    const r = await run(answer('HTTP/1.1 200 OK\r\nDate: Fri, 21 Nov 2025 23:59:59 GMT\r\n\r\nOK'));
    expect([r.outcome, EXIT[r.outcome]]).toEqual(['date-in-past', 6]);
  });
  it('attack: "Date: Fri, 31 Dec 9999" (tor could never bootstrap, the clock never corrected) → 13, no time given', async () => {
    const r = await run(answer('HTTP/1.1 200 OK\r\nDate: Fri, 31 Dec 9999 23:59:59 GMT\r\n\r\nOK'));
    expect([r.outcome, EXIT[r.outcome]]).toEqual(['date-in-future', 13]);
    expect(r).not.toHaveProperty('timestamp');
  });
  it('a Date one second after the ceiling → 13; the ceiling itself is accepted', async () => {
    expect((await run(answer('HTTP/1.1 200 OK\r\nDate: Fri, 22 Nov 2030 06:00:01 GMT\r\n\r\nOK'))).outcome).toBe('date-in-future');
    expect((await run(answer('HTTP/1.1 200 OK\r\nDate: Fri, 22 Nov 2030 06:00:00 GMT\r\n\r\nOK'))).outcome).toBe('ok');
  });
  it('exactly the release time is accepted', async () => {
    const r = await run(answer('HTTP/1.1 200 OK\r\nDate: Sat, 22 Nov 2025 00:00:00 GMT\r\n\r\nOK'));
    expect(r.outcome).toBe('ok');
  });
  it('a server that never answers → timeout 7', async () => {
    const r = await run(() => {});
    expect([r.outcome, EXIT[r.outcome]]).toEqual(['timeout', 7]);
  });
  it('a server that sends half a header and stalls → timeout 7', async () => {
    const r = await run(answer('HTTP/1.1 200 OK\r\nDa', false));
    expect(r.outcome).toBe('timeout');
  });
  it('a DNS lookup that hangs → timeout 7', async () => {
    const r = await run(answer(''), { lookup: () => new Promise(() => {}) });
    expect(r.outcome).toBe('timeout');
  });
  it.each([
    ['not HTTP', answer('SSH-2.0-x\r\n')],
    ['closed before a header', answer('')],
    ['a reset', ((_: Duplex, client: Duplex) => client.destroy(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))) as Server],
  ])('http failure → 4: %s', async (_, server) => {
    const r = await run(server);
    expect([r.outcome, EXIT[r.outcome]]).toEqual(['http-failure', 4]);
  });
  it('a failed DNS lookup → 4', async () => {
    const r = await run(answer(''), { lookup: () => Promise.reject(Object.assign(new Error('x'), { code: 'ENOTFOUND' })) });
    expect(r).toMatchObject({ outcome: 'http-failure', message: expect.stringContaining('ENOTFOUND') });
  });
});

describe('ConnectivityJudge', () => {
  it('diverging body is a portal as soon as the first byte differs', () => {
    const j = new ConnectivityJudge('OK');
    expect(j.push(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'))).toBeUndefined();
    expect(j.push(Buffer.from('X'))).toMatchObject({ kind: 'captive-portal' });
  });
  it('respects Content-Length when the body is shorter than expected', () => {
    const j = new ConnectivityJudge('OK');
    expect(j.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nO'))).toMatchObject({ kind: 'captive-portal' });
  });
});

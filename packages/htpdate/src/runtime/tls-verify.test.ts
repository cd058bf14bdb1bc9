// The certificate rule, checked through real TLS handshakes (OpenSSL on both
// sides) over an in-memory stream: valid, not yet valid (accepted), expired,
// wrong host and untrusted (refused), as htpdate's fetcher sees them.
import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, createSecureContext } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAYS, makeTestCa, type Issued, type TestCa } from '../test/certs.js';
import { duplexPair } from '../test/duplex-pair.js';
import { formatHttpDate } from './timefmt.js';
import { offsetThrough, type FetchSettings } from './htp.js';
import { parsePemBundle, verifyNotYetValid } from './tls-verify.js';

let ca: TestCa;
let other: TestCa;
const now = Date.now();
const certs: Record<string, Issued & { chain?: string }> = {};

beforeAll(() => {
  ca = makeTestCa();
  other = makeTestCa('some other CA');
  const inter = ca.intermediate('leakless test intermediate');
  certs.valid = ca.issue({ dns: ['pool.example'], notBefore: now - DAYS, notAfter: now + 30 * DAYS });
  certs.future = ca.issue({ dns: ['pool.example'], notBefore: now + 2 * DAYS, notAfter: now + 90 * DAYS });
  certs.expired = ca.issue({ dns: ['pool.example'], notBefore: now - 90 * DAYS, notAfter: now - DAYS });
  certs.otherHost = ca.issue({ dns: ['elsewhere.example'], notBefore: now - DAYS, notAfter: now + 30 * DAYS });
  certs.futureOtherHost = ca.issue({ dns: ['elsewhere.example'], notBefore: now + 2 * DAYS, notAfter: now + 90 * DAYS });
  certs.futureUntrusted = other.issue({ dns: ['pool.example'], notBefore: now + 2 * DAYS, notAfter: now + 90 * DAYS });
  certs.futureViaIntermediate = { ...inter.issue({ dns: ['pool.example'], notBefore: now + 2 * DAYS, notAfter: now + 90 * DAYS }), chain: inter.certPem };
  certs.futureNoIntermediate = inter.issue({ dns: ['pool.example'], notBefore: now + 2 * DAYS, notAfter: now + 90 * DAYS });
  certs.wildcard = ca.issue({ dns: ['*.pool.example'], notBefore: now - DAYS, notAfter: now + 30 * DAYS });
}, 60_000);
afterAll(() => {
  ca?.remove();
  other?.remove();
});

/** A SOCKS5 + TLS + HTTP server on the far end of an in-memory pair; `dateMs` is what its Date header says. */
function serve(cert: Issued & { chain?: string }, dateMs: number): Socket {
  const [client, srv] = duplexPair();
  let stage = 0;
  const onData = (d: Buffer): void => {
    if (stage++ === 0) return void srv.write(Buffer.from([5, 0]));
    expect(d[3]).toBe(3); // host name, resolved by the proxy
    srv.off('data', onData);
    srv.pause();
    srv.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
    const tls = new TLSSocket(srv, {
      isServer: true,
      secureContext: createSecureContext({ cert: cert.certPem + (cert.chain ?? ''), key: cert.keyPem }),
    });
    tls.on('data', () => tls.end(`HTTP/1.1 301 Moved\r\nLocation: https://elsewhere/\r\nDate: ${formatHttpDate(dateMs)}\r\n\r\n`));
    tls.on('error', () => {});
  };
  srv.on('data', onData);
  return client as unknown as Socket;
}

function settings(): FetchSettings {
  return { socks: { address: '127.0.0.1', port: 9062 }, anchors: parsePemBundle(ca.certPem), caPem: ca.certPem, timeoutMs: 5000 };
}

describe('htpdate certificate rule (through real TLS handshakes)', () => {
  it('a valid certificate: the offset is the Date header minus the local time (a 301 counts, not followed)', async () => {
    const off = await offsetThrough(serve(certs.valid!, now + 3_600_000), 'pool.example', settings());
    expect(off).toBeGreaterThan(3_600_000 - 5000);
    expect(off).toBeLessThanOrEqual(3_600_000);
  });
  it('a not-yet-valid certificate is accepted (the clock may be behind)', async () => {
    const notes: string[] = [];
    await expect(offsetThrough(serve(certs.future!, now), 'pool.example', { ...settings(), log: (l) => notes.push(l) })).resolves.toBeTypeOf('number');
    expect(notes.join()).toMatch(/not-yet-valid/);
  });
  it('a not-yet-valid certificate through an intermediate the server sends is accepted', async () => {
    await expect(offsetThrough(serve(certs.futureViaIntermediate!, now), 'pool.example', settings())).resolves.toBeTypeOf('number');
  });
  it.each([
    ['expired', 'expired', /expired|CERT_HAS_EXPIRED/],
    ['for another host', 'otherHost', /not for pool\.example|ALTNAME/],
    ['not yet valid and for another host', 'futureOtherHost', /not for pool\.example/],
    ['not yet valid from an untrusted CA', 'futureUntrusted', /no trusted issuer|UNABLE|self/i],
    ['not yet valid without its intermediate', 'futureNoIntermediate', /no trusted issuer|UNABLE/],
  ])('a certificate %s is refused', async (_, key, msg) => {
    await expect(offsetThrough(serve(certs[key]!, now), 'pool.example', settings())).rejects.toThrow(msg);
  });
  it('wildcards cover one label only', async () => {
    await expect(offsetThrough(serve(certs.wildcard!, now), 'a.pool.example', settings())).resolves.toBeTypeOf('number');
    await expect(offsetThrough(serve(certs.wildcard!, now), 'b.a.pool.example', settings())).rejects.toThrow(/not for|ALTNAME/);
  });
});

describe('verifyNotYetValid', () => {
  it('checks validity at notBefore + 1 s, and expiry at now', () => {
    const leaf = new X509Certificate(certs.future!.certPem);
    const anchors = parsePemBundle(ca.certPem);
    expect(verifyNotYetValid([leaf], anchors, 'pool.example', now).ok).toBe(true);
    // a clock far in the future: the same certificate has expired by then
    expect(verifyNotYetValid([leaf], anchors, 'pool.example', now + 400 * DAYS)).toMatchObject({ ok: false, reason: expect.stringMatching(/expired/) });
    expect(verifyNotYetValid([leaf], [], 'pool.example', now).ok).toBe(false);
    expect(verifyNotYetValid([], anchors, 'pool.example', now).ok).toBe(false);
  });
});

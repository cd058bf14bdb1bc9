// The certificate rule, checked through real TLS handshakes (OpenSSL on both
// sides) over an in-memory stream: valid, not yet valid (accepted), expired,
// wrong host and untrusted (refused), as htpdate's fetcher sees them; and the
// crafted chains the not-yet-valid fallback once let through (a sub-CA for
// e-mail only vouching for www.torproject.org), each beside its control.
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
let pathLenRoot: TestCa;
const now = Date.now();
const certs: Record<string, Issued & { chain?: string }> = {};
const future = { notBefore: now + 2 * DAYS, notAfter: now + 90 * DAYS };
const current = { notBefore: now - DAYS, notAfter: now + 30 * DAYS };

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
  // crafted chains: each sub-CA is a real CA of the trusted root, limited in one way
  const sub = (name: string, ext: Record<string, string | null>, leaf: typeof future, leafExt?: Record<string, string | null>) => {
    const i = ca.intermediate(name, ext);
    return { ...i.issue({ dns: ['www.torproject.org'], ...leaf, ...(leafExt ? { ext: leafExt } : {}) }), chain: i.certPem };
  };
  certs.emailSubFuture = sub('e-mail only sub-CA', { extendedKeyUsage: 'emailProtection' }, future);
  certs.emailSubCurrent = sub('e-mail only sub-CA (current leaf)', { extendedKeyUsage: 'emailProtection' }, current);
  certs.tlsSubFuture = sub('TLS sub-CA', { extendedKeyUsage: 'serverAuth' }, future);
  certs.noSignSubFuture = sub('sub-CA without keyCertSign', { keyUsage: 'critical,digitalSignature' }, future);
  certs.notCaSubFuture = sub('sub-CA that is no CA', { basicConstraints: 'critical,CA:FALSE', keyUsage: 'critical,keyCertSign' }, future);
  certs.constrainedSubFuture = sub('name-constrained sub-CA', { nameConstraints: 'critical,permitted;DNS:.example' }, future);
  certs.leafCrlOnlyFuture = ca.issue({ dns: ['www.torproject.org'], ...future, ext: { keyUsage: 'critical,cRLSign' } });
  certs.leafEmailFuture = ca.issue({ dns: ['www.torproject.org'], ...future, ext: { extendedKeyUsage: 'emailProtection' } });
  pathLenRoot = makeTestCa('root with path length 0', { basicConstraints: 'critical,CA:TRUE,pathlen:0' });
  const below = pathLenRoot.intermediate('CA below a path length of 0');
  certs.pathLenFuture = { ...below.issue({ dns: ['www.torproject.org'], ...future }), chain: below.certPem };
  certs.pathLenDirectFuture = pathLenRoot.issue({ dns: ['www.torproject.org'], ...future });
}, 60_000);
afterAll(() => {
  ca?.remove();
  other?.remove();
  pathLenRoot?.remove();
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

function settings(root: TestCa = ca): FetchSettings {
  return { socks: { address: '127.0.0.1', port: 9062 }, anchors: parsePemBundle(root.certPem), caPem: root.certPem, timeoutMs: 5000 };
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
  it('attack: a host whose Date is past the release’s ceiling (or before its floor) is a failed host, not an answer', async () => {
    const bounds = { floorMs: now - 365 * DAYS, ceilingMs: now + 365 * DAYS };
    await expect(offsetThrough(serve(certs.valid!, Date.UTC(9999, 11, 31, 23, 59, 59)), 'pool.example', { ...settings(), bounds })).rejects.toThrow(
      /after the latest time this release accepts/,
    );
    await expect(offsetThrough(serve(certs.valid!, now - 400 * DAYS), 'pool.example', { ...settings(), bounds })).rejects.toThrow(/before this release/);
    await expect(offsetThrough(serve(certs.valid!, now + 364 * DAYS), 'pool.example', { ...settings(), bounds })).resolves.toBeTypeOf('number');
  });
  it('wildcards cover one label only', async () => {
    await expect(offsetThrough(serve(certs.wildcard!, now), 'a.pool.example', settings())).resolves.toBeTypeOf('number');
    await expect(offsetThrough(serve(certs.wildcard!, now), 'b.a.pool.example', settings())).rejects.toThrow(/not for|ALTNAME/);
  });
});

describe('attack: a not-yet-valid certificate from a CA not allowed to vouch for TLS servers', () => {
  const TORPROJECT = 'www.torproject.org';
  it('anti-test: the crafted e-mail-only chain is really refused by OpenSSL when the leaf is current (the fallback was the only way in)', async () => {
    await expect(offsetThrough(serve(certs.emailSubCurrent!, now), TORPROJECT, settings())).rejects.toThrow(/INVALID_PURPOSE|unsuitable/i);
  });
  it('control: the same chain shape with a TLS sub-CA is accepted (the refusals below are about usage, not chain building)', async () => {
    await expect(offsetThrough(serve(certs.tlsSubFuture!, now), TORPROJECT, settings())).resolves.toBeTypeOf('number');
    await expect(offsetThrough(serve(certs.pathLenDirectFuture!, now), TORPROJECT, settings(pathLenRoot))).resolves.toBeTypeOf('number');
  });
  it.each([
    ['a sub-CA for e-mail only (extended key usage)', 'emailSubFuture', /may not vouch for TLS servers \(extended key usage\)/],
    // OpenSSL's own CA test (which the issuer search uses) already rules these two out
    ['a sub-CA without keyCertSign', 'noSignSubFuture', /no trusted issuer|may not sign certificates/],
    ['a "sub-CA" that is no CA', 'notCaSubFuture', /no trusted issuer|not a CA/],
    ['a leaf whose key may only sign CRLs', 'leafCrlOnlyFuture', /may not be used for TLS \(key usage\)/],
    ['a leaf for e-mail only', 'leafEmailFuture', /not for TLS servers \(extended key usage\)/],
  ])('refused: %s', async (_, key, msg) => {
    await expect(offsetThrough(serve(certs[key]!, now), TORPROJECT, settings())).rejects.toThrow(msg);
  });
  it('refused: a CA below a root with path length 0', async () => {
    await expect(offsetThrough(serve(certs.pathLenFuture!, now), TORPROJECT, settings(pathLenRoot))).rejects.toThrow(/path length 0 exceeded/);
  });
  it('refused by the fallback itself: a sub-CA with name constraints it does not evaluate (OpenSSL stops such a chain first)', () => {
    const pem = certs.constrainedSubFuture!;
    const chain = [new X509Certificate(pem.certPem), new X509Certificate(pem.chain!)];
    expect(verifyNotYetValid(chain, parsePemBundle(ca.certPem), TORPROJECT, now)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/unsupported critical extension 2\.5\.29\.30/),
    });
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

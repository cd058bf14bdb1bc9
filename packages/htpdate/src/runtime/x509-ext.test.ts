import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAYS, makeTestCa, type TestCa } from '../test/certs.js';
import { OID, certExtensions, extensionsOf, oidString } from './x509-ext.js';

let ca: TestCa;
let leaf: X509Certificate;
let sub: X509Certificate;
beforeAll(() => {
  ca = makeTestCa('x509-ext root', { basicConstraints: 'critical,CA:TRUE,pathlen:3' });
  const now = Date.now();
  leaf = new X509Certificate(
    ca.issue({ dns: ['a.example'], notBefore: now, notAfter: now + DAYS, ext: { keyUsage: 'critical,digitalSignature,keyAgreement' } }).certPem,
  );
  sub = new X509Certificate(ca.intermediate('x509-ext sub', { extendedKeyUsage: 'emailProtection,serverAuth', keyUsage: 'keyCertSign' }).certPem);
}, 30_000);
afterAll(() => ca?.remove());

describe('X.509 extensions read from the DER', () => {
  it('basic constraints, key usage bits, extended key usages and criticality, as openssl wrote them', () => {
    const root = certExtensions(new X509Certificate(ca.certPem));
    expect(root.basic).toEqual({ ca: true, pathLen: 3 });
    expect([...root.keyUsage!].sort()).toEqual(['cRLSign', 'keyCertSign']);
    expect(root.extKeyUsage).toBeUndefined();
    expect(root.all.find((e) => e.oid === OID.basicConstraints)?.critical).toBe(true);

    const l = certExtensions(leaf);
    expect(l.basic).toEqual({ ca: false });
    expect([...l.keyUsage!].sort()).toEqual(['digitalSignature', 'keyAgreement']);
    expect(l.extKeyUsage).toEqual([OID.serverAuth]);
    expect(l.all.find((e) => e.oid === OID.subjectAltName)?.critical).toBe(false);

    const s = certExtensions(sub);
    expect(s.extKeyUsage).toEqual(['1.3.6.1.5.5.7.3.4', OID.serverAuth]);
    expect([...s.keyUsage!]).toEqual(['keyCertSign']);
    expect(s.all.find((e) => e.oid === OID.keyUsage)?.critical).toBe(false);
  });
  it('OIDs decode with multi-byte arcs', () => {
    expect(oidString(Buffer.from('2b06010505070301', 'hex'))).toBe(OID.serverAuth);
    expect(oidString(Buffer.from('551d2500', 'hex'))).toBe(OID.anyExtendedKeyUsage);
    expect(() => oidString(Buffer.from('2b86', 'hex'))).toThrow(/truncated/);
  });
  it('malformed DER throws instead of reading past its container', () => {
    const der = Buffer.from(leaf.raw);
    expect(() => extensionsOf(der.subarray(0, der.length - 10))).toThrow(/DER/);
    const bad = Buffer.from(der);
    bad[1] = 0x85; // a five-byte length
    expect(() => extensionsOf(bad)).toThrow(/bad DER length/);
  });
});

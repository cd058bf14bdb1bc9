// The X.509 v3 extensions the not-yet-valid fallback must check itself
// (docs/threat-model.md#htpdate). Node's X509Certificate tells whether a
// certificate is a CA and lists its extended key usages, but not its key
// usage bits, its path length or which extensions are critical; this reads
// them from the DER. Any malformed structure throws: the caller refuses the
// chain.
import type { X509Certificate } from 'node:crypto';

export const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  nameConstraints: '2.5.29.30',
  policyConstraints: '2.5.29.36',
  inhibitAnyPolicy: '2.5.29.54',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  anyExtendedKeyUsage: '2.5.29.37.0',
} as const;

/** RFC 5280 4.2.1.3 bit numbers. */
export const KEY_USAGE = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
} as const;
export type KeyUsage = keyof typeof KEY_USAGE;

export interface Extension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Buffer;
}

export interface CertExtensions {
  readonly all: readonly Extension[];
  /** basicConstraints; undefined when absent (then the certificate is not a CA). */
  readonly basic?: { readonly ca: boolean; readonly pathLen?: number };
  /** keyUsage bits; undefined when absent (no restriction). */
  readonly keyUsage?: ReadonlySet<KeyUsage>;
  /** extKeyUsage OIDs; undefined when absent (no restriction). */
  readonly extKeyUsage?: readonly string[];
}

interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

function tlv(buf: Buffer, at: number, limit = buf.length): Tlv {
  if (at + 2 > limit) throw new Error('truncated DER');
  const tag = buf[at]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte DER tag');
  let len = buf[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new Error('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  const end = start + len;
  if (end > limit) throw new Error('DER length past its container');
  return { tag, start, end };
}

function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const c = tlv(buf, at, parent.end);
    out.push(c);
    at = c.end;
  }
  return out;
}

const SEQUENCE = 0x30;
const expect = (t: Tlv | undefined, tag: number, what: string): Tlv => {
  if (!t || t.tag !== tag) throw new Error(`${what}: expected tag 0x${tag.toString(16)}`);
  return t;
};

export function oidString(bytes: Buffer): string {
  if (bytes.length === 0) throw new Error('empty OID');
  const parts: number[] = [];
  let v = 0;
  for (const b of bytes) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  if (bytes[bytes.length - 1]! & 0x80) throw new Error('truncated OID');
  const first = parts.shift()!;
  const a = first < 80 ? Math.floor(first / 40) : 2;
  return [a, first - a * 40, ...parts].join('.');
}

function integer(buf: Buffer, t: Tlv): number {
  const bytes = buf.subarray(t.start, t.end);
  if (bytes.length === 0 || bytes.length > 4 || bytes[0]! & 0x80) throw new Error('INTEGER out of range');
  return bytes.reduce((n, b) => n * 256 + b, 0);
}

/** The extensions of a certificate (an empty list for a v1 certificate). */
export function extensionsOf(der: Buffer): Extension[] {
  const cert = expect(tlv(der, 0), SEQUENCE, 'Certificate');
  const tbs = expect(children(der, cert)[0], SEQUENCE, 'TBSCertificate');
  // [3] EXPLICIT Extensions: the last field of the TBSCertificate when present
  const ext = children(der, tbs).find((c) => c.tag === 0xa3);
  if (!ext) return [];
  const list = expect(children(der, ext)[0], SEQUENCE, 'Extensions');
  return children(der, list).map((e) => {
    const [id, second, third] = children(der, expect(e, SEQUENCE, 'Extension'));
    const oid = oidString(der.subarray(expect(id, 0x06, 'extnID').start, id!.end));
    const critical = second?.tag === 0x01 ? der[second.start] !== 0 : false;
    const value = expect(second?.tag === 0x01 ? third : second, 0x04, 'extnValue');
    return { oid, critical, value: der.subarray(value.start, value.end) };
  });
}

function basicConstraints(v: Buffer): { ca: boolean; pathLen?: number } {
  const seq = expect(tlv(v, 0), SEQUENCE, 'BasicConstraints');
  let ca = false;
  let pathLen: number | undefined;
  for (const c of children(v, seq)) {
    if (c.tag === 0x01) ca = v[c.start] !== 0;
    else if (c.tag === 0x02) pathLen = integer(v, c);
    else throw new Error('BasicConstraints: unexpected field');
  }
  return pathLen === undefined ? { ca } : { ca, pathLen };
}

function keyUsage(v: Buffer): Set<KeyUsage> {
  const bits = expect(tlv(v, 0), 0x03, 'KeyUsage');
  const bytes = v.subarray(bits.start + 1, bits.end);
  const out = new Set<KeyUsage>();
  for (const [name, bit] of Object.entries(KEY_USAGE) as [KeyUsage, number][]) {
    const byte = bytes[bit >> 3];
    if (byte !== undefined && byte & (0x80 >> (bit & 7))) out.add(name);
  }
  return out;
}

function extKeyUsage(v: Buffer): string[] {
  const seq = expect(tlv(v, 0), SEQUENCE, 'ExtKeyUsage');
  return children(v, seq).map((c) => oidString(v.subarray(expect(c, 0x06, 'KeyPurposeId').start, c.end)));
}

export function certExtensions(cert: X509Certificate): CertExtensions {
  const all = extensionsOf(cert.raw);
  const one = (oid: string): Extension | undefined => {
    const found = all.filter((e) => e.oid === oid);
    if (found.length > 1) throw new Error(`extension ${oid} appears ${found.length} times`);
    return found[0];
  };
  const bc = one(OID.basicConstraints);
  const ku = one(OID.keyUsage);
  const eku = one(OID.extKeyUsage);
  return {
    all,
    ...(bc ? { basic: basicConstraints(bc.value) } : {}),
    ...(ku ? { keyUsage: keyUsage(ku.value) } : {}),
    ...(eku ? { extKeyUsage: extKeyUsage(eku.value) } : {}),
  };
}

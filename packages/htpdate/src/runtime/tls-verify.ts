// Certificate rule for htpdate (Tails' https-get-expired, docs/threat-model.md#htpdate):
// the clock may be far in the past when htpdate runs, so a certificate that is
// "not yet valid" must still be usable, or a wrong clock could never be fixed.
// Everything else stays strict: an expired certificate is refused (it may be
// a stolen key's), the chain must end at a trusted anchor, and the host name
// is always checked.
//
// OpenSSL verifies at the current time. When its only complaint is
// CERT_NOT_YET_VALID, the chain is verified again here at the time Tails
// uses: the leaf's notBefore + 1 s. OpenSSL reports only its last error, and
// time is checked last, so "not yet valid" can hide an untrusted chain; this
// second verification therefore rebuilds the whole path from the anchors and
// never trusts OpenSSL's verdict on the rest: what each certificate may be
// used for is checked here on every certificate of the path, as OpenSSL's
// "sslserver" purpose would (a sub-CA limited to e-mail must not vouch for a
// web server, a CA with a path length of 0 must not have a CA below it), and
// a critical extension this code does not understand refuses the chain
// (RFC 5280 4.2).
import { X509Certificate } from 'node:crypto';
import { OID, certExtensions, type CertExtensions } from './x509-ext.js';

const MAX_DEPTH = 8;
/** Extensions this rule reads (or that restrict nothing): a critical one of any other kind refuses the chain. */
const UNDERSTOOD = new Set<string>([OID.basicConstraints, OID.keyUsage, OID.extKeyUsage, OID.subjectAltName, OID.subjectKeyId, OID.authorityKeyId]);
/** Extensions that narrow what a CA may sign and that this rule does not evaluate: refused even when marked non-critical. */
const NARROWING = new Set<string>([OID.nameConstraints, OID.policyConstraints, OID.inhibitAnyPolicy]);

export type Verification = { readonly ok: true; readonly note: string } | { readonly ok: false; readonly reason: string };

export function hostMatches(leaf: X509Certificate, host: string): boolean {
  return leaf.checkHost(host, { subject: 'default', wildcards: true, partialWildcards: false, multiLabelWildcards: false }) !== undefined;
}

/** Split a PEM bundle (ca-certificates.crt or a test CA) into certificates. */
export function parsePemBundle(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

const ms = (s: string): number => new Date(s).getTime();

function validAt(c: X509Certificate, t: number): boolean {
  return ms(c.validFrom) <= t && t <= ms(c.validTo);
}

const name = (c: X509Certificate): string => c.subject.replace(/\n/g, ', ');

/**
 * Why `c`, at position `i` of the path (0 = the leaf, then its issuers up to
 * the anchor), may not play its part in a TLS server's chain, or undefined.
 */
export function usageProblem(c: X509Certificate, i: number): string | undefined {
  let x: CertExtensions;
  try {
    x = certExtensions(c);
  } catch (e) {
    return `unreadable extensions (${(e as Error).message})`;
  }
  const unknown = x.all.find((e) => NARROWING.has(e.oid) || (e.critical && !UNDERSTOOD.has(e.oid)));
  if (unknown) return `unsupported ${unknown.critical ? 'critical ' : ''}extension ${unknown.oid}`;
  if (i === 0) {
    if (x.extKeyUsage && !x.extKeyUsage.includes(OID.serverAuth)) return 'not for TLS servers (extended key usage)';
    const ku = x.keyUsage;
    if (ku && !(['digitalSignature', 'keyEncipherment', 'keyAgreement'] as const).some((k) => ku.has(k))) return 'its key may not be used for TLS (key usage)';
    return undefined;
  }
  if (!x.basic?.ca) return 'not a CA (basic constraints)';
  if (x.keyUsage && !x.keyUsage.has('keyCertSign')) return 'may not sign certificates (key usage)';
  if (x.extKeyUsage && !x.extKeyUsage.some((o) => o === OID.serverAuth || o === OID.anyExtendedKeyUsage))
    return 'may not vouch for TLS servers (extended key usage)';
  // the CAs between this one and the leaf
  if (x.basic.pathLen !== undefined && i - 1 > x.basic.pathLen) return `path length ${x.basic.pathLen} exceeded (${i - 1} CAs below it)`;
  return undefined;
}

/**
 * Verify `presented` (leaf first, then what the server sent) for `host`
 * against `anchors`, accepting a chain that is valid at the leaf's notBefore
 * + 1 s when that is later than now. Used only when OpenSSL said
 * CERT_NOT_YET_VALID; a chain OpenSSL accepted is only host-checked.
 */
export function verifyNotYetValid(presented: readonly X509Certificate[], anchors: readonly X509Certificate[], host: string, nowMs: number): Verification {
  const leaf = presented[0];
  if (!leaf) return { ok: false, reason: 'no certificate' };
  if (!hostMatches(leaf, host)) return { ok: false, reason: `certificate is not for ${host}` };
  const at = Math.max(nowMs, ms(leaf.validFrom) + 1000);
  const anchorDer = new Set(anchors.map((a) => a.raw.toString('base64')));
  const pool = [...presented.slice(1), ...anchors];
  let cur = leaf;
  const path = [leaf];
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    if (anchorDer.has(cur.raw.toString('base64'))) break;
    const issuer = pool.find((c) => c !== cur && c.ca && cur.checkIssued(c) && cur.verify(c.publicKey));
    if (!issuer) return { ok: false, reason: `no trusted issuer for ${name(cur)}` };
    path.push(issuer);
    cur = issuer;
  }
  if (!anchorDer.has(cur.raw.toString('base64'))) return { ok: false, reason: 'chain too long or does not end at a trusted anchor' };
  for (const [i, c] of path.entries()) {
    if (ms(c.validTo) < nowMs) return { ok: false, reason: `certificate expired on ${c.validTo} (${name(c)})` };
    if (!validAt(c, at)) return { ok: false, reason: `certificate not valid at ${new Date(at).toISOString()} (${name(c)})` };
    const bad = usageProblem(c, i);
    if (bad) return { ok: false, reason: `certificate ${bad} (${name(c)})` };
  }
  return { ok: true, note: `accepted a not-yet-valid certificate (valid from ${leaf.validFrom}): the local clock is probably behind` };
}

/** The decision for one TLS connection, given what OpenSSL/Node reported. */
export function judgeCertificate(
  authorized: boolean,
  authorizationError: string | undefined,
  presented: readonly X509Certificate[],
  anchors: readonly X509Certificate[],
  host: string,
  nowMs: number,
): Verification {
  const leaf = presented[0];
  if (!leaf) return { ok: false, reason: 'no certificate' };
  if (authorized) {
    // Node checks the name when the chain verified, but checking again costs nothing.
    return hostMatches(leaf, host) ? { ok: true, note: 'certificate valid' } : { ok: false, reason: `certificate is not for ${host}` };
  }
  if (authorizationError === 'CERT_NOT_YET_VALID') return verifyNotYetValid(presented, anchors, host, nowMs);
  return { ok: false, reason: `certificate rejected: ${authorizationError ?? 'unknown error'}` };
}

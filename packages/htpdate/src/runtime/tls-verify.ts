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
// never trusts OpenSSL's verdict on the rest.
import { X509Certificate } from 'node:crypto';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const MAX_DEPTH = 8;

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
  const eku = leaf.keyUsage;
  if (eku !== undefined && eku.length > 0 && !eku.includes(SERVER_AUTH))
    return { ok: false, reason: 'certificate is not for TLS servers (extended key usage)' };
  const at = Math.max(nowMs, ms(leaf.validFrom) + 1000);
  const anchorDer = new Set(anchors.map((a) => a.raw.toString('base64')));
  const pool = [...presented.slice(1), ...anchors];
  let cur = leaf;
  const path = [leaf];
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    if (anchorDer.has(cur.raw.toString('base64'))) break;
    const issuer = pool.find((c) => c !== cur && c.ca && cur.checkIssued(c) && cur.verify(c.publicKey));
    if (!issuer) return { ok: false, reason: `no trusted issuer for ${cur.subject.replace(/\n/g, ', ')}` };
    path.push(issuer);
    cur = issuer;
  }
  if (!anchorDer.has(cur.raw.toString('base64'))) return { ok: false, reason: 'chain too long or does not end at a trusted anchor' };
  for (const c of path) {
    if (ms(c.validTo) < nowMs) return { ok: false, reason: `certificate expired on ${c.validTo} (${c.subject.replace(/\n/g, ', ')})` };
    if (!validAt(c, at)) return { ok: false, reason: `certificate not valid at ${new Date(at).toISOString()} (${c.subject.replace(/\n/g, ', ')})` };
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

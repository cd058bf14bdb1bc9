// htpdate through Tor (docs/threat-model.md#htpdate): three pools
// of HTTPS hosts run by parties unlikely to collude (privacy organisations,
// neutral sites, and the first pool's adversaries), one random host at a time
// per pool until one answers or the pool's failure ratio is exceeded. The
// clock moves by the median of the pools' offsets, so one lying pool cannot
// set it, and only when that median is at least the threshold.
import { randomInt, X509Certificate } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type DetailedPeerCertificate, type TLSSocket } from 'node:tls';
import { headerValues, headRequest, parseResponseHead } from './http.js';
import { socks5Connect } from './socks5.js';
import { parseHttpDate } from './timefmt.js';
import { judgeCertificate } from './tls-verify.js';

export interface HostFailure {
  readonly host: string;
  readonly error: string;
}

export type PoolResult =
  | { readonly ok: true; readonly host: string; readonly offsetMs: number; readonly failures: readonly HostFailure[] }
  | { readonly ok: false; readonly failures: readonly HostFailure[] };

/** Fisher–Yates with a CSPRNG: which host answers for a pool must not be predictable. */
export function shuffled<T>(items: readonly T[], rand: (n: number) => number = randomInt): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rand(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/**
 * One pool: random hosts one after another until one gives an offset. The
 * pool fails as soon as failures / pool size exceeds the allowed ratio
 * (Tails: --allowed_per_pool_failure_ratio 0.34), or when every host failed.
 */
export async function queryPool(
  hosts: readonly string[],
  allowedFailureRatio: number,
  offsetOf: (host: string) => Promise<number>,
  rand?: (n: number) => number,
): Promise<PoolResult> {
  const failures: HostFailure[] = [];
  for (const host of shuffled(hosts, rand)) {
    try {
      return { ok: true, host, offsetMs: await offsetOf(host), failures };
    } catch (e) {
      failures.push({ host, error: (e as Error).message });
      if (failures.length / hosts.length > allowedFailureRatio) return { ok: false, failures };
    }
  }
  return { ok: false, failures };
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('median of nothing');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export type Decision =
  | { readonly kind: 'pool-failed'; readonly pool: number; readonly failures: readonly HostFailure[] }
  | { readonly kind: 'no-change'; readonly medianMs: number }
  | { readonly kind: 'change'; readonly medianMs: number };

/** Any pool without an answer aborts (Tails: "one pool could not be reached"); else the median against the threshold. */
export function decide(results: readonly PoolResult[], minOffsetMs: number): Decision {
  const failed = results.findIndex((r) => !r.ok);
  if (failed >= 0) return { kind: 'pool-failed', pool: failed + 1, failures: results[failed]!.failures };
  const m = median(results.map((r) => (r as Extract<PoolResult, { ok: true }>).offsetMs));
  return Math.abs(m) < minOffsetMs ? { kind: 'no-change', medianMs: m } : { kind: 'change', medianMs: m };
}

export interface FetchSettings {
  readonly socks: { readonly address: string; readonly port: number };
  readonly anchors: readonly X509Certificate[];
  /** PEM of the anchors, given to OpenSSL as its only trust store. */
  readonly caPem: string;
  readonly timeoutMs: number;
  /** The release's floor and ceiling (epoch ms): a host whose Date falls outside is a failed host, not an answer. */
  readonly bounds?: { readonly floorMs: number; readonly ceilingMs: number };
  readonly now?: () => number;
  readonly log?: (line: string) => void;
}

function presentedChain(sock: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  let c: DetailedPeerCertificate | undefined = sock.getPeerCertificate(true);
  const seen = new Set<string>();
  while (c?.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    out.push(new X509Certificate(c.raw));
    c = c.issuerCertificate;
  }
  return out;
}

/**
 * HEAD https://host/ through the SOCKS port; the offset is the Date header
 * minus the local time when the header arrived (Tails' htpdate). Redirects
 * are not followed: a 3xx carries a Date like any other answer.
 */
export function dateOffset(host: string, s: FetchSettings): Promise<number> {
  return new Promise((resolve, reject) => {
    const raw = netConnect({ host: s.socks.address, port: s.socks.port, family: 4 });
    const timer = setTimeout(() => {
      raw.destroy();
      reject(new Error(`no answer within ${s.timeoutMs / 1000} s`));
    }, s.timeoutMs);
    const done = (f: () => void): void => {
      clearTimeout(timer);
      raw.destroy();
      f();
    };
    raw.once('error', (e) => done(() => reject(new Error(`SOCKS port ${s.socks.address}:${s.socks.port}: ${(e as NodeJS.ErrnoException).code ?? e.message}`))));
    raw.once('connect', () =>
      offsetThrough(raw, host, s).then(
        (v) => done(() => resolve(v)),
        (e: Error) => done(() => reject(e)),
      ),
    );
  });
}

/** SOCKS5 CONNECT host:443 over `raw`, TLS with the certificate rule, HEAD, Date. The caller owns `raw` and the timeout. */
export async function offsetThrough(raw: Socket, host: string, s: FetchSettings): Promise<number> {
  const now = s.now ?? Date.now;
  await socks5Connect(raw, host, 443);
  const tls = tlsConnect({
    socket: raw,
    servername: host,
    ca: s.caPem,
    // verified below (judgeCertificate): OpenSSL cannot verify at another time than now
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    ALPNProtocols: ['http/1.1'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      tls.once('secureConnect', resolve);
      tls.once('error', (e) => reject(new Error(`TLS: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
    });
    const v = judgeCertificate(tls.authorized, tls.authorizationError?.toString(), presentedChain(tls), s.anchors, host, now());
    if (!v.ok) throw new Error(v.reason);
    if (v.note !== 'certificate valid') s.log?.(`${host}: ${v.note}`);
    return await new Promise<number>((resolve, reject) => {
      let buf: Buffer = Buffer.alloc(0);
      tls.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        let head: ReturnType<typeof parseResponseHead>;
        try {
          head = parseResponseHead(buf);
        } catch (e) {
          return reject(e as Error);
        }
        if (!head) return;
        const at = now();
        const dates = headerValues(head, 'date');
        const t = dates.length === 1 ? parseHttpDate(dates[0]!) : undefined;
        if (t === undefined)
          return reject(new Error(dates.length === 0 ? 'no Date header' : `bad Date header ${JSON.stringify(dates.join(', ').slice(0, 64))}`));
        if (s.bounds && (t < s.bounds.floorMs || t > s.bounds.ceilingMs))
          return reject(
            new Error(
              `Date ${JSON.stringify(dates[0]!.slice(0, 64))} is ${t < s.bounds.floorMs ? 'before this release' : 'after the latest time this release accepts'}`,
            ),
          );
        resolve(t - at);
      });
      tls.once('end', () => reject(new Error('connection closed before the response header')));
      tls.once('error', (e) => reject(e));
      tls.write(headRequest(host));
    });
  } finally {
    tls.destroy();
  }
}

// The pre-Tor time check (docs/threat-model.md#pretor-time): one plain
// HTTP request that is indistinguishable from NetworkManager's connectivity
// check, made as the clearnet user. The answer decides between "online" (the
// expected body or NM's status header), "captive portal" and failure, and an
// online answer's Date header gives the time. It never sets the clock: it
// prints the time, and root decides (pretor-time sync → set-clock).
import type { Duplex } from 'node:stream';
import { ToolFailure } from './exit-codes.js';
import { ChunkedDecoder, connectivityRequest, headerValues, parseResponseHead, type PlainHttpUrl, type ResponseHead } from './http.js';
import { formatUtcTimestamp, parseHttpDate } from './timefmt.js';

export interface PreTorSettings {
  readonly url: PlainHttpUrl;
  readonly expectedBody: string;
  readonly timeoutMs: number;
  /** Epoch ms; a Date before it is refused (release.sourceDateEpoch: the image cannot predate its own release). */
  readonly releaseFloorMs: number;
  /** Epoch ms; a Date after it is refused (time.maxYearsAfterRelease: a far-future clock stops tor for good). */
  readonly releaseCeilingMs: number;
}

export type Verdict = { readonly kind: 'online'; readonly head: ResponseHead } | { readonly kind: 'captive-portal'; readonly reason: string };

/**
 * Reads a response as it arrives and decides as early as NetworkManager
 * does: on its status header, or as soon as the body matches or diverges
 * from the expected text. push()/end() throw for anything that is not HTTP.
 */
export class ConnectivityJudge {
  private buf: Buffer = Buffer.alloc(0);
  private head: ResponseHead | undefined;
  private body: Buffer = Buffer.alloc(0);
  private chunked: ChunkedDecoder | undefined;
  private contentLength: number | undefined;
  private readonly expected: Buffer;

  constructor(expectedBody: string) {
    this.expected = Buffer.from(expectedBody, 'latin1');
  }

  push(chunk: Buffer): Verdict | undefined {
    if (!this.head) {
      this.buf = Buffer.concat([this.buf, chunk]);
      const head = parseResponseHead(this.buf);
      if (!head) return undefined;
      this.head = head;
      const early = this.judgeHead(head);
      if (early) return early;
      return this.feedBody(head.rest);
    }
    return this.feedBody(chunk);
  }

  end(): Verdict {
    if (!this.head) throw new Error('connection closed before a complete response header');
    return this.judgeBody(true)!;
  }

  private judgeHead(head: ResponseHead): Verdict | undefined {
    // Portals answer the probe with a redirect to their login page.
    if (head.status >= 300 && head.status < 400) {
      const loc = headerValues(head, 'location')[0];
      return { kind: 'captive-portal', reason: `HTTP ${head.status} redirect${loc ? ` to ${loc.slice(0, 100)}` : ''}` };
    }
    // NetworkManager accepts its status header instead of the body.
    if (headerValues(head, 'x-networkmanager-status').some((v) => v.toLowerCase() === 'online')) return { kind: 'online', head };
    const te = headerValues(head, 'transfer-encoding').join(',').toLowerCase();
    if (te !== '') {
      if (te.trim() !== 'chunked') throw new Error(`unsupported Transfer-Encoding ${te}`);
      this.chunked = new ChunkedDecoder();
    } else {
      const cl = headerValues(head, 'content-length');
      if (cl.length > 0) {
        if (!cl.every((v) => v === cl[0]) || !/^\d{1,12}$/.test(cl[0]!)) throw new Error('bad Content-Length');
        this.contentLength = Number(cl[0]);
      }
    }
    return undefined;
  }

  private feedBody(data: Buffer): Verdict | undefined {
    const more = this.chunked ? this.chunked.push(data) : Buffer.concat([this.body, data]);
    this.body = this.contentLength === undefined ? more : more.subarray(0, this.contentLength);
    const complete = (this.chunked?.done ?? false) || (this.contentLength !== undefined && this.body.length >= this.contentLength);
    return this.judgeBody(complete);
  }

  private judgeBody(complete: boolean): Verdict | undefined {
    const head = this.head!;
    const n = Math.min(this.body.length, this.expected.length);
    if (!this.body.subarray(0, n).equals(this.expected.subarray(0, n))) {
      return { kind: 'captive-portal', reason: `HTTP ${head.status}, body does not start with ${JSON.stringify(this.expected.toString('latin1'))}` };
    }
    if (this.body.length >= this.expected.length) return { kind: 'online', head };
    if (complete) return { kind: 'captive-portal', reason: `HTTP ${head.status}, body is ${this.body.length} bytes, shorter than the expected text` };
    return undefined;
  }
}

/** The time an online answer gives, or the failure Tails would report for its Date header. */
export function timeOf(head: ResponseHead, bounds: { releaseFloorMs: number; releaseCeilingMs: number }): { readonly ms: number; readonly timestamp: string } {
  const { releaseFloorMs, releaseCeilingMs } = bounds;
  const dates = headerValues(head, 'date');
  if (dates.length === 0) throw new ToolFailure('missing-date', 'the answer has no Date header');
  if (dates.length > 1) throw new ToolFailure('malformed-date', `the answer has ${dates.length} Date headers`);
  const ms = parseHttpDate(dates[0]!);
  if (ms === undefined) throw new ToolFailure('malformed-date', `Date header ${JSON.stringify(dates[0]!.slice(0, 64))} is not an IMF-fixdate`);
  if (ms < releaseFloorMs)
    throw new ToolFailure('date-in-past', `Date ${formatUtcTimestamp(ms)} is before this release (${formatUtcTimestamp(releaseFloorMs)})`);
  if (ms > releaseCeilingMs)
    throw new ToolFailure(
      'date-in-future',
      `Date ${formatUtcTimestamp(ms)} is after the latest time this release accepts (${formatUtcTimestamp(releaseCeilingMs)})`,
    );
  return { ms, timestamp: formatUtcTimestamp(ms) };
}

export interface PreTorIo {
  /** IPv4 address of a host name (NetworkManager's check with IPv4 forces A-only resolution). */
  lookup4(host: string): Promise<string>;
  /** A TCP connection to address:port; writes before 'connect' are queued. */
  connect(address: string, port: number): Duplex;
}

export interface PreTorResult {
  readonly ms: number;
  readonly timestamp: string;
  readonly address: string;
}

/** Run the check once. Resolves with the time, or rejects with a ToolFailure naming the outcome. */
export function preTorCheck(s: PreTorSettings, io: PreTorIo): Promise<PreTorResult> {
  const request = connectivityRequest(s.url);
  return new Promise((resolve, reject) => {
    let sock: Duplex | undefined;
    let settled = false;
    const finish = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock?.destroy();
      f();
    };
    const fail = (outcome: ToolFailure['outcome'], message: string): void => finish(() => reject(new ToolFailure(outcome, message)));
    const timer = setTimeout(() => fail('timeout', `no complete answer from ${s.url.host} within ${s.timeoutMs / 1000} s`), s.timeoutMs);

    io.lookup4(s.url.host).then(
      (address) => {
        if (settled) return;
        const judge = new ConnectivityJudge(s.expectedBody);
        const decide = (v: Verdict | undefined): void => {
          if (!v) return;
          finish(() => {
            if (v.kind === 'captive-portal') reject(new ToolFailure('captive-portal', v.reason));
            else {
              try {
                resolve({ ...timeOf(v.head, s), address });
              } catch (e) {
                reject(e);
              }
            }
          });
        };
        const guarded = (f: () => Verdict | undefined): void => {
          try {
            decide(f());
          } catch (e) {
            fail('http-failure', `${address}:${s.url.port}: ${(e as Error).message}`);
          }
        };
        sock = io.connect(address, s.url.port);
        sock.on('data', (chunk: Buffer) => guarded(() => judge.push(chunk)));
        sock.on('end', () => guarded(() => judge.end()));
        sock.on('error', (e: NodeJS.ErrnoException) => fail('http-failure', `${address}:${s.url.port}: ${e.code ?? e.message}`));
        sock.write(request);
      },
      (e: NodeJS.ErrnoException) => fail('http-failure', `cannot resolve ${s.url.host}: ${e.code ?? e.message}`),
    );
  });
}

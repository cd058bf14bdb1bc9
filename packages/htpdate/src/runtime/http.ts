// The HTTP the time tools speak, written by hand over a raw socket: Node's
// http client adds and orders headers itself, and the pre-Tor request must be
// byte-for-byte NetworkManager's (fixtures/nm-connectivity-request.bin).

export type Header = readonly [name: string, value: string];

export interface ResponseHead {
  readonly status: number;
  readonly headers: readonly Header[];
  /** Bytes after the header block that arrived with it (the start of the body). */
  readonly rest: Buffer;
}

/** The header block is small for every server we talk to; a larger one is not a time source. */
export const MAX_HEAD_BYTES = 16 * 1024;

const URL_RE = /^http:\/\/([a-z0-9.-]+)(?::(\d{1,5}))?(\/[\x21-\x7e]*)$/;

export interface PlainHttpUrl {
  readonly host: string;
  readonly port: number;
  readonly path: string;
}

/** Parse the policy's plain-http URL without normalising it (WHATWG URL would re-encode the path). */
export function parsePlainHttpUrl(url: string): PlainHttpUrl | undefined {
  const m = URL_RE.exec(url);
  if (!m) return undefined;
  const port = m[2] === undefined ? 80 : Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!, port, path: m[3]! };
}

/**
 * The request NetworkManager 1.42 (libcurl 7.88) sends for its connectivity
 * check, as recorded from Debian's NetworkManager: curl's own request line,
 * Host (with :port only when not 80, curl's rule), Accept, then NM's one extra
 * header `Connection: close`; no User-Agent (NM sets none).
 */
export function connectivityRequest(url: PlainHttpUrl): Buffer {
  const host = url.port === 80 ? url.host : `${url.host}:${url.port}`;
  return Buffer.from(`GET ${url.path} HTTP/1.1\r\nHost: ${host}\r\nAccept: */*\r\nConnection: close\r\n\r\n`, 'latin1');
}

/** HEAD for htpdate: only the headers matter, and no body means nothing to parse (Tails' https-get-expired). */
export function headRequest(host: string): Buffer {
  return Buffer.from(`HEAD / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, 'latin1');
}

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: [\t\x20-\x7e\x80-\xff]*)?$/;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[\t ]*([\t\x20-\x7e\x80-\xff]*?)[\t ]*$/;

/**
 * Parse a response head from the bytes received so far.
 * Returns undefined while the header block is incomplete; throws (with a
 * one-line reason) on anything that is not HTTP/1.x.
 */
export function parseResponseHead(buf: Buffer): ResponseHead | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) {
    if (buf.length > MAX_HEAD_BYTES) throw new Error(`header block larger than ${MAX_HEAD_BYTES} bytes`);
    // Fail early on garbage instead of waiting for the timeout.
    if (!'HTTP/'.startsWith(buf.subarray(0, 5).toString('latin1'))) throw new Error('response does not start with HTTP/');
    return undefined;
  }
  if (end > MAX_HEAD_BYTES) throw new Error(`header block larger than ${MAX_HEAD_BYTES} bytes`);
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = STATUS_LINE.exec(lines[0]!);
  if (!status) throw new Error(`bad status line ${JSON.stringify(lines[0]!.slice(0, 80))}`);
  const headers: Header[] = [];
  for (const line of lines.slice(1)) {
    const h = HEADER_LINE.exec(line);
    // obs-fold and bare CR/LF are refused (RFC 9112 §5.2 allows rejecting them)
    if (!h) throw new Error(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
    headers.push([h[1]!.toLowerCase(), h[2]!]);
  }
  return { status: Number(status[1]), headers, rest: buf.subarray(end + 4) };
}

export function headerValues(head: { readonly headers: readonly Header[] }, name: string): string[] {
  const n = name.toLowerCase();
  return head.headers.filter(([k]) => k === n).map(([, v]) => v);
}

/**
 * Incremental decoder for a chunked body, enough to read its first bytes.
 * push() returns the decoded bytes so far; throws on a malformed chunk header.
 */
export class ChunkedDecoder {
  private pending: Buffer = Buffer.alloc(0);
  private remaining = 0; // bytes left in the current chunk
  private needCrlf = false;
  done = false;
  private decoded: Buffer[] = [];

  push(data: Buffer): Buffer {
    this.pending = Buffer.concat([this.pending, data]);
    for (;;) {
      if (this.done) break;
      if (this.needCrlf) {
        if (this.pending.length < 2) break;
        if (this.pending[0] !== 0x0d || this.pending[1] !== 0x0a) throw new Error('chunk not followed by CRLF');
        this.pending = this.pending.subarray(2);
        this.needCrlf = false;
      }
      if (this.remaining > 0) {
        const take = this.pending.subarray(0, this.remaining);
        if (take.length === 0) break;
        this.decoded.push(take);
        this.remaining -= take.length;
        this.pending = this.pending.subarray(take.length);
        if (this.remaining === 0) this.needCrlf = true;
        continue;
      }
      const eol = this.pending.indexOf('\r\n');
      if (eol < 0) {
        if (this.pending.length > 1024) throw new Error('chunk size line too long');
        break;
      }
      const m = /^([0-9a-fA-F]{1,8})(;[\t\x20-\x7e]*)?$/.exec(this.pending.subarray(0, eol).toString('latin1'));
      if (!m) throw new Error('bad chunk size line');
      this.remaining = parseInt(m[1]!, 16);
      this.pending = this.pending.subarray(eol + 2);
      if (this.remaining === 0) this.done = true;
    }
    return Buffer.concat(this.decoded);
  }
}

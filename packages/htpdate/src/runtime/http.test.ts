import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ChunkedDecoder, connectivityRequest, headerValues, headRequest, parsePlainHttpUrl, parseResponseHead } from './http.js';

const fixture = readFileSync(new URL('../../fixtures/nm-connectivity-request.bin', import.meta.url));
const source = readFileSync(new URL('../../fixtures/nm-connectivity-request.bin.source', import.meta.url), 'utf8');

describe('the NetworkManager-identical request', () => {
  it('is byte for byte the request recorded from Debian NetworkManager', () => {
    const url = /^url (\S+)$/m.exec(source)![1]!;
    expect(source).toMatch(/^network-manager 1\.42\./m);
    expect(connectivityRequest(parsePlainHttpUrl(url)!).equals(fixture)).toBe(true);
  });
  it('carries no User-Agent and asks the server to close', () => {
    const text = fixture.toString('latin1');
    expect(text).not.toMatch(/user-agent/i);
    expect(text).toContain('\r\nConnection: close\r\n');
  });
  it('adds the port to Host only when it is not 80 (curl)', () => {
    expect(connectivityRequest(parsePlainHttpUrl('http://a.example:8080/x?y=1')!).toString()).toBe(
      'GET /x?y=1 HTTP/1.1\r\nHost: a.example:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n',
    );
    expect(connectivityRequest(parsePlainHttpUrl('http://a.example:80/')!).toString()).toContain('\r\nHost: a.example\r\n');
  });
  it('parses only plain http URLs, without normalising them', () => {
    expect(parsePlainHttpUrl('https://a.example/')).toBeUndefined();
    expect(parsePlainHttpUrl('http://a.example')).toBeUndefined();
    expect(parsePlainHttpUrl('http://a.example:0/')).toBeUndefined();
    expect(parsePlainHttpUrl('http://a.example/ x')).toBeUndefined();
    expect(parsePlainHttpUrl('http://a.example/%7e')).toEqual({ host: 'a.example', port: 80, path: '/%7e' });
  });
  it('HEAD request for htpdate', () => {
    expect(headRequest('www.example.org').toString()).toBe('HEAD / HTTP/1.1\r\nHost: www.example.org\r\nConnection: close\r\n\r\n');
  });
});

describe('parseResponseHead', () => {
  it('waits for the end of the header block', () => {
    expect(parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nDate: x\r\n'))).toBeUndefined();
  });
  it('splits status, headers (lower-cased names) and the start of the body', () => {
    const h = parseResponseHead(Buffer.from('HTTP/1.1 302 Found\r\nLocation: http://portal/\r\nDate:  Sun, 06 Nov 1994 08:49:37 GMT \r\n\r\nOK'))!;
    expect(h.status).toBe(302);
    expect(headerValues(h, 'LOCATION')).toEqual(['http://portal/']);
    expect(headerValues(h, 'date')).toEqual(['Sun, 06 Nov 1994 08:49:37 GMT']);
    expect(h.rest.toString()).toBe('OK');
  });
  it.each([
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n'],
    ['garbage before the head ends', 'hello'],
    ['bad status line', 'HTTP/1.1 20 OK\r\n\r\n'],
    ['HTTP/2 text', 'HTTP/2 200\r\n\r\n'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n'],
    ['header without colon', 'HTTP/1.1 200 OK\r\nDate\r\n\r\n'],
  ])('throws on %s', (_, raw) => expect(() => parseResponseHead(Buffer.from(raw))).toThrow());
  it('throws on an endless header block', () => {
    expect(() => parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\n' + 'X: y\r\n'.repeat(4000)))).toThrow(/larger/);
  });
});

describe('ChunkedDecoder', () => {
  it('decodes across arbitrary splits', () => {
    const raw = '2;ext=1\r\nOK\r\n3\r\n!!!\r\n0\r\n\r\n';
    for (let cut = 0; cut < raw.length; cut++) {
      const d = new ChunkedDecoder();
      d.push(Buffer.from(raw.slice(0, cut)));
      expect(d.push(Buffer.from(raw.slice(cut))).toString()).toBe('OK!!!');
      expect(d.done).toBe(true);
    }
  });
  it('throws on a bad size line or a missing CRLF', () => {
    expect(() => new ChunkedDecoder().push(Buffer.from('zz\r\n'))).toThrow();
    expect(() => new ChunkedDecoder().push(Buffer.from('2\r\nOKxx'))).toThrow();
  });
});

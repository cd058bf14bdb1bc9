import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { duplexPair } from '../test/duplex-pair.js';
import { connectRequest, socks5Connect } from './socks5.js';

/** A scripted SOCKS5 server: answers the greeting, records the CONNECT, replies with `reply`. */
function server(srv: Duplex, opts: { method?: number; reply?: number; after?: string }) {
  const seen: Buffer[] = [];
  let stage = 0;
  srv.on('data', (d: Buffer) => {
    seen.push(d);
    if (stage === 0) {
      srv.write(Buffer.from([5, opts.method ?? 0]));
      stage = 1;
    } else if (stage === 1) {
      // reply with a domain-type bound address, the longest form to parse
      const bnd = Buffer.from('relay.example');
      srv.write(Buffer.concat([Buffer.from([5, opts.reply ?? 0, 0, 3, bnd.length]), bnd, Buffer.from([0x1f, 0x90])]));
      if (opts.after) srv.write(opts.after);
      stage = 2;
    }
  });
  return seen;
}

describe('socks5Connect', () => {
  it('asks for no authentication and sends the host name (tor resolves it at the exit)', async () => {
    const [client, srv] = duplexPair();
    const seen = server(srv, { after: 'TLS-BYTES' });
    await socks5Connect(client as unknown as Socket, 'www.example.org', 443);
    expect(seen[0]).toEqual(Buffer.from([5, 1, 0]));
    expect(seen[1]).toEqual(connectRequest('www.example.org', 443));
    expect(seen[1]!.subarray(0, 5)).toEqual(Buffer.from([5, 1, 0, 3, 15]));
    // nothing after the reply was consumed: the TLS layer gets every byte
    const rest = await new Promise<string>((r) => client.once('readable', () => r(String(client.read()))));
    expect(rest).toBe('TLS-BYTES');
  });
  it('reports the SOCKS error of a refused CONNECT', async () => {
    const [client, srv] = duplexPair();
    server(srv, { reply: 5 });
    await expect(socks5Connect(client as unknown as Socket, 'a.example', 443)).rejects.toThrow(/connection refused/);
  });
  it('fails when the server wants authentication', async () => {
    const [client, srv] = duplexPair();
    server(srv, { method: 0xff });
    await expect(socks5Connect(client as unknown as Socket, 'a.example', 443)).rejects.toThrow(/no authentication/);
  });
  it('fails when the server hangs up mid-handshake', async () => {
    const [client, srv] = duplexPair();
    srv.once('data', () => srv.end());
    await expect(socks5Connect(client as unknown as Socket, 'a.example', 443)).rejects.toThrow(/closed/);
  });
  it('refuses a host name SOCKS5 cannot carry', () => {
    expect(() => connectRequest('a'.repeat(256), 443)).toThrow();
  });
});

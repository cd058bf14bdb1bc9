// A SOCKS5 CONNECT (RFC 1928) with the destination as a host name (ATYP 3):
// tor resolves it at the exit, so htpdate needs no DNS of its own and the
// firewall can keep the htp user to its one SocksPort (Tails resolved locally
// through the DNSPort; this removes that path).
import type { Socket } from 'node:net';

const REPLIES: Record<number, string> = {
  1: 'general SOCKS server failure',
  2: 'connection not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
};

/** Read exactly n bytes from a paused socket (never more, so the TLS layer gets every byte after the handshake). */
export function readExactly(sock: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const b = sock.read(n) as Buffer | null;
      if (b !== null) {
        cleanup();
        resolve(b);
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error('SOCKS server closed the connection'));
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const cleanup = (): void => {
      sock.off('readable', attempt);
      sock.off('end', onEnd);
      sock.off('error', onError);
    };
    sock.on('readable', attempt);
    sock.on('end', onEnd);
    sock.on('error', onError);
    attempt();
  });
}

export function connectRequest(host: string, port: number): Buffer {
  const name = Buffer.from(host, 'ascii');
  if (name.length < 1 || name.length > 255) throw new Error(`host name ${host} cannot be sent over SOCKS5`);
  return Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]);
}

/** Negotiate "no authentication" and CONNECT to host:port; resolves when the tunnel is open. */
export async function socks5Connect(sock: Socket, host: string, port: number): Promise<void> {
  sock.write(Buffer.from([5, 1, 0]));
  const method = await readExactly(sock, 2);
  if (method[0] !== 5 || method[1] !== 0) throw new Error(`SOCKS server refused "no authentication" (${method.toString('hex')})`);
  sock.write(connectRequest(host, port));
  const head = await readExactly(sock, 4);
  if (head[0] !== 5) throw new Error('not a SOCKS5 reply');
  if (head[1] !== 0) throw new Error(`SOCKS: ${REPLIES[head[1]!] ?? `reply ${head[1]}`}`);
  const atyp = head[3];
  const addrLen = atyp === 1 ? 4 : atyp === 4 ? 16 : atyp === 3 ? (await readExactly(sock, 1))[0]! : -1;
  if (addrLen < 0) throw new Error(`SOCKS: bad address type ${atyp}`);
  await readExactly(sock, addrLen + 2);
}

// A tiny SOCKS5 server standing in for tor's SocksPort in the lab: no
// authentication, CONNECT only, host names resolved from a map (as tor's exit
// would resolve them). Run it as the tor-daemon user so the firewall treats its
// outgoing connections like tor's. Connections are appended to <dir>/socks.jsonl.
//   node socks5-server.mjs SPEC.json
// SPEC: { dir, listen: { address, port }, names: { name: ip } }
import { appendFileSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const log = (o) => appendFileSync(`${spec.dir}/socks.jsonl`, JSON.stringify(o) + '\n');

function readN(sock, n) {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const b = sock.read(n);
      if (b !== null) {
        sock.off('readable', attempt);
        resolve(b);
      }
    };
    sock.on('readable', attempt);
    sock.once('end', () => reject(new Error('eof')));
    attempt();
  });
}

const server = createServer(async (client) => {
  client.on('error', () => {});
  try {
    const [ver, n] = await readN(client, 2);
    await readN(client, n);
    if (ver !== 5) return client.destroy();
    client.write(Buffer.from([5, 0]));
    const [, cmd, , atyp] = await readN(client, 4);
    let host;
    if (atyp === 3) host = (await readN(client, (await readN(client, 1))[0])).toString('latin1');
    else if (atyp === 1) host = [...(await readN(client, 4))].join('.');
    else return client.end(Buffer.from([5, 8, 0, 1, 0, 0, 0, 0, 0, 0]));
    const port = (await readN(client, 2)).readUInt16BE(0);
    const ip = atyp === 1 ? host : spec.names[host];
    log({ host, port, atyp, ip: ip ?? null });
    if (cmd !== 1 || ip === undefined) return client.end(Buffer.from([5, cmd !== 1 ? 7 : 4, 0, 1, 0, 0, 0, 0, 0, 0]));
    const upstream = connect({ host: ip, port });
    upstream.on('error', () => client.end(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0])));
    upstream.on('connect', () => {
      client.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
      client.pipe(upstream).pipe(client);
      upstream.on('error', () => client.destroy());
    });
  } catch {
    client.destroy();
  }
});
server.listen(spec.listen.port, spec.listen.address, () => process.stdout.write('ready\n'));
setTimeout(() => process.exit(0), 600_000).unref();

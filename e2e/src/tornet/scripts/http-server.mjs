// HTTP servers on "Internet" hosts of the lab (documentation addresses), for
// the exit relays to reach. Every request is printed as one JSON line with the
// peer address, so a test can tell which relay (or which leaking host) asked.
//   node http-server.mjs '[{"name":"a","addr":"198.51.100.80","port":80}]'
import { createServer } from 'node:http';

const specs = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let pending = specs.length;
for (const s of specs) {
  const srv = createServer((req, res) => {
    out({ ev: 'request', server: s.name, addr: s.addr, port: s.port, peer: req.socket.remoteAddress, path: req.url, host: req.headers.host ?? '' });
    const body = `tornet ${s.name} ${req.url}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  });
  srv.on('error', (e) => {
    out({ ev: 'error', server: s.name, error: String(e) });
    process.exit(1);
  });
  srv.listen(s.port, s.addr, () => {
    if (--pending === 0) out({ ev: 'ready' });
  });
}
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

// Lab "Internet" for htpdate, run inside the lab's inet namespace: one HTTPS
// server per pool host, each with its own certificate and a Date header at a
// chosen offset from the real time. Hits are appended to <dir>/hits.jsonl.
//   node pool-servers.mjs SPEC.json
// SPEC: { dir, hosts: [{ name, address, certFile, keyFile, offsetMs }] }
import { appendFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:tls';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const httpDate = (ms) => new Date(Math.floor(ms / 1000) * 1000).toUTCString();
let pending = spec.hosts.length;
for (const h of spec.hosts) {
  const server = createServer({ cert: readFileSync(h.certFile), key: readFileSync(h.keyFile) }, (sock) => {
    let buf = '';
    sock.on('error', () => {});
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
      buf += d;
      if (!buf.includes('\r\n\r\n')) return;
      appendFileSync(`${spec.dir}/hits.jsonl`, JSON.stringify({ name: h.name, servername: sock.servername, request: buf }) + '\n');
      sock.end(`HTTP/1.1 200 OK\r\nDate: ${httpDate(Date.now() + h.offsetMs)}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    });
  });
  server.on('tlsClientError', () => {});
  server.listen(443, h.address, () => {
    if (--pending === 0) process.stdout.write('ready\n');
  });
}
setTimeout(() => process.exit(0), 600_000).unref();

// Lab "Internet" for the pre-Tor check, run inside the lab's inet namespace:
// a DNS server (A records from a map, NXDOMAIN otherwise) and one HTTP server
// per scenario address. Every request's raw bytes are appended to
// <dir>/requests.jsonl so the test can compare them with NetworkManager's.
//   node pretor-servers.mjs SPEC.json
// SPEC: { dir, floorMs, portal, dns: { address, names: { name: ip } }, http: [{ address, port, mode }] }
import { createSocket } from 'node:dgram';
import { appendFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const log = (o) => appendFileSync(`${spec.dir}/requests.jsonl`, JSON.stringify(o) + '\n');
const httpDate = (ms) => new Date(Math.floor(ms / 1000) * 1000).toUTCString();

// Fedora's hotspot.txt answers "OK" with these headers (NetworkManager accepts the body).
const RESPONSES = {
  online: () => `HTTP/1.1 200 OK\r\nDate: ${httpDate(Date.now())}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK`,
  redirect: () =>
    `HTTP/1.1 302 Found\r\nDate: ${httpDate(Date.now())}\r\nLocation: http://${spec.portal}/login?continue=1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
  'portal-body': () =>
    `HTTP/1.1 200 OK\r\nDate: ${httpDate(Date.now())}\r\nContent-Type: text/html\r\nContent-Length: 40\r\nConnection: close\r\n\r\n<html><body>Please log in</body></html>\n`,
  'no-date': () => 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK',
  'bad-date': () => `HTTP/1.1 200 OK\r\nDate: ${new Date().toISOString()}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK`,
  past: () => `HTTP/1.1 200 OK\r\nDate: ${httpDate(spec.floorMs - 30 * 86400_000)}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK`,
  // the far-future attack: a clock tor could never bootstrap with
  future: () => 'HTTP/1.1 200 OK\r\nDate: Fri, 31 Dec 9999 23:59:59 GMT\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK',
  silent: null,
};

for (const h of spec.http) {
  const server = createServer((sock) => {
    let buf = Buffer.alloc(0);
    let answered = false;
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (answered || buf.indexOf('\r\n\r\n') < 0) return;
      answered = true;
      log({ address: h.address, mode: h.mode, remote: sock.remoteAddress, request: buf.toString('base64') });
      const make = RESPONSES[h.mode];
      if (make) sock.end(make());
      // silent: keep the connection open and say nothing
    });
  });
  server.listen(h.port, h.address);
}

const names = spec.dns.names;
const dns = createSocket('udp4');
dns.on('message', (q, rinfo) => {
  if (q.length < 17) return;
  // question name
  const labels = [];
  let i = 12;
  while (q[i] !== 0 && i < q.length) {
    labels.push(q.subarray(i + 1, i + 1 + q[i]).toString('latin1'));
    i += q[i] + 1;
  }
  const qEnd = i + 5;
  const name = labels.join('.').toLowerCase();
  const qtype = q.readUInt16BE(i + 1);
  log({ dns: name, qtype, remote: rinfo.address });
  const ip = names[name];
  const header = Buffer.alloc(12);
  q.copy(header, 0, 0, 2); // id
  header.writeUInt16BE(ip === undefined ? 0x8183 : 0x8180, 2); // response, RD+RA, NXDOMAIN or NOERROR
  header.writeUInt16BE(1, 4);
  const answer = ip !== undefined && qtype === 1;
  header.writeUInt16BE(answer ? 1 : 0, 6);
  const parts = [header, q.subarray(12, qEnd)];
  if (answer) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(1, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(4, 10);
    Buffer.from(ip.split('.').map(Number)).copy(rr, 12);
    parts.push(rr);
  }
  dns.send(Buffer.concat(parts), rinfo.port, rinfo.address);
});
dns.bind(53, spec.dns.address, () => process.stdout.write('ready\n'));
setTimeout(() => process.exit(0), 600_000).unref();

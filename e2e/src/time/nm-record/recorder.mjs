// Listens on ADDR:PORT, writes the first request's raw bytes (up to the end of
// its header block) to OUT, answers like Fedora's hotspot.txt endpoint and exits.
// Run inside the recording namespace only (record.sh).

import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';

const [addr, port, out] = process.argv.slice(2);
const server = createServer((sock) => {
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    writeFileSync(out, buf.subarray(0, end + 4));
    const body = 'OK';
    sock.end(
      'HTTP/1.1 200 OK\r\n' +
        `Date: ${new Date().toUTCString()}\r\n` +
        'X-NetworkManager-Status: online\r\n' +
        `Content-Length: ${body.length}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
    server.close();
  });
});
server.listen(Number(port), addr, () => process.stdout.write(`listening ${addr}:${port}\n`));
setTimeout(() => process.exit(3), 120_000).unref();

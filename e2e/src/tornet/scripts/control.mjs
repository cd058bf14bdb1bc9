// A tor ControlPort client for the lab: authenticates with the cookie, then
// copies stdin lines to the port and the port's lines to stdout. Runs inside
// the sut namespace as root (the only ControlPort client of the policy).
//   node control.mjs 127.0.0.1 9052 /path/to/control.authcookie

import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

const [host, port, cookie] = process.argv.slice(2);
const sock = connect({ host, port: Number(port) });
sock.on('error', (e) => {
  process.stdout.write(`ERROR ${e.code ?? e}\n`);
  process.exit(1);
});
sock.on('connect', () => {
  sock.write(`AUTHENTICATE ${readFileSync(cookie).toString('hex')}\r\n`);
  createInterface({ input: process.stdin }).on('line', (l) => sock.write(l + '\r\n'));
  process.stdin.on('end', () => sock.end());
});
sock.pipe(process.stdout);
sock.on('close', () => process.exit(0));

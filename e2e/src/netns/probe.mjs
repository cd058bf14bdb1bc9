#!/usr/bin/env node
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
// Lab prober: runs a batch of probes from wherever it is started (a namespace,
// a uid) and prints one JSON array of results. Every probe is bounded in time.
//   [{ "id": "tok", "proto": "tcp"|"udp"|"http"|"socks-http"|"dns"|"ifaces"|"hostname",
//      "host": "198.51.100.10", "port": 80, "via": { "host": "127.0.0.1", "port": 9050 } }]
// outcome: connected (tcp/http/socks-http got an answer), sent (udp left the
// socket; only the listener can say whether it arrived), resolved, or the
// error code (ECONNREFUSED, ENETUNREACH, EPERM, ETIMEDOUT …).
import { connect, isIPv4, isIPv6 } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';

const TIMEOUT = Number(process.env.PROBE_TIMEOUT_MS ?? 1500);
const probes = JSON.parse(process.argv[2] ?? '[]');

function withTimeout(p, ms = TIMEOUT) {
  return Promise.race([p, new Promise((resolve) => setTimeout(() => resolve({ outcome: 'ETIMEDOUT' }), ms))]);
}

/** Open a TCP connection; resolves with the socket or an error code. */
function open(host, port) {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => resolve({ s }));
    s.once('error', (e) => resolve({ code: e.code ?? e.message }));
    setTimeout(() => {
      s.destroy();
      resolve({ code: 'ETIMEDOUT' });
    }, TIMEOUT);
  });
}

function readAll(s) {
  return new Promise((resolve) => {
    let buf = '';
    s.on('data', (d) => (buf += d));
    s.on('end', () => resolve(buf));
    s.on('close', () => resolve(buf));
    s.on('error', () => resolve(buf));
    setTimeout(() => {
      s.destroy();
      resolve(buf);
    }, TIMEOUT);
  });
}

function once(s) {
  return new Promise((resolve) => {
    s.once('data', (d) => resolve(d));
    s.once('close', () => resolve(undefined));
    s.once('error', () => resolve(undefined));
  });
}

async function tcp(p) {
  const r = await open(p.host, p.port);
  if (!r.s) return { outcome: r.code };
  r.s.write(`${p.id}\n`);
  return { outcome: 'connected', body: (await readAll(r.s)).trim() };
}

async function http(p) {
  const r = await open(p.host, p.port);
  if (!r.s) return { outcome: r.code };
  r.s.write(`GET /${p.id} HTTP/1.0\r\nHost: ${p.host}\r\n\r\n`);
  return { outcome: 'connected', body: (await readAll(r.s)).split('\r\n\r\n').slice(1).join('').trim() };
}

async function socksHttp(p) {
  const r = await open(p.via.host, p.via.port);
  if (!r.s) return { outcome: r.code };
  const s = r.s;
  s.write(Buffer.from([5, 1, 0]));
  const hello = await once(s);
  if (hello?.[0] !== 5 || hello[1] !== 0) return { outcome: 'ESOCKS', detail: 'no SOCKS5 greeting' };
  const addr = isIPv4(p.host) ? Buffer.from([1, ...p.host.split('.').map(Number)]) : Buffer.concat([Buffer.from([3, p.host.length]), Buffer.from(p.host)]);
  const port = Buffer.alloc(2);
  port.writeUInt16BE(p.port);
  s.write(Buffer.concat([Buffer.from([5, 1, 0]), addr, port]));
  const rep = await once(s);
  if (rep?.[1] !== 0) return { outcome: 'ESOCKS', detail: `CONNECT refused (${rep?.[1]})` };
  s.write(`GET /${p.id} HTTP/1.0\r\nHost: ${p.host}\r\n\r\n`);
  return { outcome: 'connected', body: (await readAll(s)).split('\r\n\r\n').slice(1).join('').trim() };
}

function udp(p) {
  return new Promise((resolve) => {
    const sock = createSocket(isIPv6(p.host) ? 'udp6' : 'udp4');
    sock.on('error', (e) => {
      sock.close();
      resolve({ outcome: e.code ?? e.message });
    });
    sock.send(`${p.id}`, p.port, p.host, (e) => {
      // A reject (ICMP unreachable) shows up as an error on the next socket operation.
      setTimeout(() => {
        try {
          sock.close();
        } catch {}
        resolve({ outcome: e ? (e.code ?? e.message) : 'sent' });
      }, 200);
    });
  });
}

// c-ares reads /etc/resolv.conf like the libc resolver, but can be bounded in
// time (a getaddrinfo in flight would hold the process at exit).
async function dns(p) {
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  try {
    const r = await resolver.resolve4(p.host);
    return { outcome: 'resolved', body: r.join(' ') };
  } catch (e) {
    return { outcome: e.code ?? e.message };
  }
}

function ifaces() {
  const all = Object.entries(networkInterfaces()).flatMap(([name, addrs]) => (addrs ?? []).map((a) => `${name} ${a.cidr}`));
  return { outcome: 'listed', body: all.sort().join(',') };
}

const run = {
  tcp,
  http,
  'socks-http': socksHttp,
  udp,
  dns,
  ifaces: async () => ifaces(),
  hostname: async () => ({ outcome: 'listed', body: hostname() }),
};

const results = await Promise.all(
  probes.map(async (p) => {
    const f = run[p.proto];
    if (!f) return { id: p.id, outcome: 'EBADPROBE' };
    const r = await withTimeout(f(p), TIMEOUT + 1000);
    return { id: p.id, ...r };
  }),
);
process.stdout.write(JSON.stringify(results) + '\n');
process.exit(0);

// One HTTP GET through a SOCKS5 proxy (RFC 1928/1929), or straight to the host
// when no proxy is given (the leak probe), run as the uid under test (setpriv)
// so the firewall sees that uid. Prints one JSON line:
//   {ok, stage, socksReply?, status?, body?, error?}
// stage says how far it got: connect (the proxy refused or was unreachable),
// socks (tor refused the stream), http, done.
//   node socks-get.mjs '{"proxy":"127.0.0.1","proxyPort":9050,"host":"198.51.100.80","port":80,"path":"/x","user":"u","pass":"p","timeoutMs":20000}'
import { connect, isIPv4 } from 'node:net';

const a = JSON.parse(process.argv[2]);
const print = (o) => {
  process.stdout.write(JSON.stringify(o) + '\n');
  process.exit(0);
};
const timer = setTimeout(() => print({ ok: false, stage, error: 'timeout' }), a.timeoutMs ?? 20000);
let stage = 'connect';
let buf = Buffer.alloc(0);
let want = null;
const direct = a.proxy === undefined;
const sock = direct ? connect({ host: a.host, port: a.port }) : connect({ host: a.proxy, port: a.proxyPort });
sock.on('error', (e) => {
  clearTimeout(timer);
  print({ ok: false, stage, error: e.code ?? String(e) });
});
function need(n, fn) {
  want = { n, fn };
  pump();
}
function pump() {
  while (want && buf.length >= want.n) {
    const { n, fn } = want;
    want = null;
    const chunk = buf.subarray(0, n);
    buf = buf.subarray(n);
    fn(chunk);
  }
}
sock.on('data', (d) => {
  if (stage === 'http') {
    buf = Buffer.concat([buf, d]);
    return;
  }
  buf = Buffer.concat([buf, d]);
  pump();
});
sock.on('end', () => {
  if (stage !== 'http') return;
  clearTimeout(timer);
  const text = buf.toString('latin1');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
  const body = text.split('\r\n\r\n').slice(1).join('\r\n\r\n');
  print({ ok: status === 200, stage: 'done', status, body });
});
sock.on('connect', () => {
  if (direct) {
    stage = 'http';
    sock.write(`GET ${a.path} HTTP/1.0\r\nHost: ${a.host}\r\nUser-Agent: leakless-tornet\r\n\r\n`);
    return;
  }
  stage = 'socks';
  const auth = a.user !== undefined;
  sock.write(Buffer.from([5, 1, auth ? 2 : 0]));
  need(2, (r) => {
    if (r[0] !== 5 || r[1] !== (auth ? 2 : 0)) return print({ ok: false, stage, error: `method ${r[1]}` });
    if (auth) {
      const u = Buffer.from(a.user);
      const p = Buffer.from(a.pass ?? 'x');
      sock.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
      need(2, (s) => (s[1] === 0 ? request() : print({ ok: false, stage, error: 'auth refused' })));
    } else request();
  });
});
function request() {
  const port = Buffer.from([a.port >> 8, a.port & 255]);
  const dst = isIPv4(a.host)
    ? Buffer.concat([Buffer.from([1]), Buffer.from(a.host.split('.').map(Number))])
    : Buffer.concat([Buffer.from([3, Buffer.byteLength(a.host)]), Buffer.from(a.host)]);
  sock.write(Buffer.concat([Buffer.from([5, 1, 0]), dst, port]));
  need(4, (h) => {
    if (h[1] !== 0) return print({ ok: false, stage, socksReply: h[1], error: `socks reply ${h[1]}` });
    const rest = h[3] === 1 ? 6 : h[3] === 4 ? 18 : null;
    const go = (n) =>
      need(n, () => {
        stage = 'http';
        sock.write(`GET ${a.path} HTTP/1.0\r\nHost: ${a.host}\r\nUser-Agent: leakless-tornet\r\n\r\n`);
        pump();
      });
    if (rest !== null) go(rest);
    else need(1, (l) => go(l[0] + 2));
  });
}

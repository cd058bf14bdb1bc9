// A read-only static file server for a saved apt repository, run inside the
// rebuild's network namespace (loopback only): apt in the image chroot
// (debos' systemd-nspawn shares the namespace) fetches the recorded .debs
// from it as it would from a mirror. Prints "listening <port>" when ready.
//   node repo-server.js DIR PORT
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, normalize } from 'node:path';

const [dir, port] = process.argv.slice(2);
if (!dir || !port) {
  process.stderr.write('usage: repo-server DIR PORT\n');
  process.exit(2);
}
const server = createServer((req, res) => {
  const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!));
  const file = join(dir, path);
  const st = path.includes('..')
    ? undefined
    : (() => {
        try {
          return statSync(file);
        } catch {
          return undefined;
        }
      })();
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405).end();
    return;
  }
  if (!st?.isFile()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'content-length': st.size, 'last-modified': st.mtime.toUTCString() });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
});
server.listen(Number(port), '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));

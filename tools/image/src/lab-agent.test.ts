import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { needRoot, needTool, skipUnless } from '@leakless/testing';
import { lateScript, parseCommand, parseLateLines, parseSenderLine, SENDER_SH, type SenderSpec } from './lab-agent.js';

const desktop = { uid: 1000, gid: 1000 };
const tcp: SenderSpec = { label: 'desktop user → Internet (TCP)', as: desktop, proto: 'tcp', host: '198.51.100.10', port: 8080, token: 'lk01-x-dt' };

describe('the lab agent’s commands', () => {
  it('accepts each operation with checked values', () => {
    const ok = [
      { op: 'status' },
      {
        op: 'http',
        as: desktop,
        via: { kind: 'socks', address: '127.0.0.1', port: 9050 },
        host: 'www.tornet.test',
        port: 80,
        path: '/x?y=1',
        timeoutMs: 30_000,
      },
      { op: 'http', as: desktop, via: { kind: 'netns', namespace: 'tbb', port: 9050 }, host: '203.0.113.80', port: 80, path: '/', timeoutMs: 30_000 },
      { op: 'lookup', as: desktop, name: 'www.tornet.test' },
      { op: 'senders-start', window: 'restart', senders: [tcp], attempts: 10, gapMs: 100 },
      { op: 'senders-stop', window: 'restart' },
      { op: 'kill-tor' },
      { op: 'restart-firewall' },
      { op: 'shutdown', senders: [tcp] },
    ];
    for (const [i, c] of ok.entries())
      expect(parseCommand(JSON.stringify({ id: i, ...c })), JSON.stringify(c)).toMatchObject({ ok: true, cmd: { id: i, op: c.op } });
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['an unknown operation (no command lines)', { op: 'exec', argv: ['sh'] }, /unknown operation/],
    ['an unknown field', { op: 'status', argv: 'x' }, /unknown field argv/],
    [
      'root as the sender',
      { op: 'senders-start', window: 'w', senders: [{ ...tcp, as: { uid: 0, gid: 0 } }], attempts: 1, gapMs: 100 },
      /senders\[0\]\.as\.uid/,
    ],
    [
      'a host name where an address must be',
      { op: 'senders-start', window: 'w', senders: [{ ...tcp, host: 'x;reboot' }], attempts: 1, gapMs: 100 },
      /senders\[0\]\.host/,
    ],
    ['shell in a token', { op: 'shutdown', senders: [{ ...tcp, token: "x';reboot'" }] }, /senders\[0\]\.token/],
    ['a path with a space', { op: 'http', as: desktop, via: { kind: 'direct' }, host: 'a.b', port: 80, path: '/ HTTP/1.0\r\n', timeoutMs: 100 }, /^path/],
    ['a host name with a slash', { op: 'lookup', as: desktop, name: 'a/b' }, /^name/],
    [
      'port 0',
      { op: 'http', as: desktop, via: { kind: 'socks', address: '127.0.0.1', port: 0 }, host: 'a.b', port: 80, path: '/', timeoutMs: 100 },
      /via\.port/,
    ],
    ['no senders', { op: 'shutdown', senders: [] }, /1 to 8 senders/],
  ];
  for (const [what, c, why] of bad) {
    it(`refuses ${what}`, () => {
      const p = parseCommand(JSON.stringify({ id: 7, ...c }));
      expect(p.ok).toBe(false);
      if (!p.ok) {
        expect(p.error).toMatch(why);
        expect(p.id).toBe(7);
      }
    });
  }
  it('refuses what is not JSON', () => expect(parseCommand('status')).toEqual({ ok: false, error: 'not JSON' }));
});

const bashSkip = skipUnless('the sender script', needTool('bash', ['--version']), needTool('timeout', ['--version']));
describe.skipIf(bashSkip)('the sender (bash, as run by the agent)', () => {
  const send = (proto: string, port: number, n = 3) =>
    parseSenderLine('t', execFileSync('bash', ['-c', SENDER_SH, 'sender', proto, '127.0.0.1', String(port), 'tok-1', String(n), '0.05'], { encoding: 'utf8' }));

  it('counts a refused TCP connection as refused and an accepted one as sent', async () => {
    const srv = createServer((s) => s.end());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    expect(send('tcp', port)).toEqual({ label: 't', token: 'tok-1', attempts: 3, sent: 3, refused: 0 });
    srv.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(send('tcp', port)).toEqual({ label: 't', token: 'tok-1', attempts: 3, sent: 0, refused: 3 });
  });

  it('counts a UDP datagram that left the socket as sent', () => {
    expect(send('udp', 9, 2)).toMatchObject({ attempts: 2, sent: 2 });
  });

  it('reports what it did when stopped early', () => {
    const r = spawnSync('bash', ['-c', `bash -c "$1" sender udp 127.0.0.1 9 tok-2 1000 0.05 & p=$!; sleep 0.5; kill -TERM $p; wait $p`, 'x', SENDER_SH], {
      encoding: 'utf8',
    });
    const s = parseSenderLine('t', r.stdout.trim());
    expect(s?.attempts).toBeGreaterThan(2);
    expect(s?.attempts).toBeLessThan(1000);
  });
});

const lateSkip = skipUnless(
  'the late probe in a throwaway network namespace',
  needRoot('it makes a network and mount namespace'),
  needTool('nft', ['--version']),
  needTool('unshare', ['--version']),
);
describe.skipIf(lateSkip)('the late probe (shutdown)', () => {
  const probe = (rules: string) => {
    const script = lateScript('final', [{ ...tcp, host: '127.0.0.1', as: { uid: 65534, gid: 65534 } }]);
    // own network namespace (nothing of this machine's rules or addresses), /dev/console bound to /dev/null
    const r = spawnSync(
      'unshare',
      [
        '-n',
        '-m',
        '--propagation',
        'private',
        'bash',
        '-c',
        'mount --bind /dev/null /dev/console && ip link set lo up && printf "%s" "$2" | nft -f - && bash -c "$1"',
        'x',
        script,
        rules,
      ],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    return parseLateLines(r.stdout);
  };

  it('prints one line: the stage, the ruleset hash (counters ignored), and each sender’s counts', () => {
    const table = (n: number) =>
      `table inet leakless {\n chain output {\n  type filter hook output priority 0; policy accept;\n  counter packets ${n} bytes ${n} reject with tcp reset\n }\n}\n`;
    const [a] = probe(table(0));
    const [b] = probe(table(5));
    expect(a).toMatchObject({ stage: 'final', addrs: 'none', senders: [{ token: 'lk01-x-dt', attempts: 5, sent: 0, refused: 5 }] });
    expect(a!.table).toMatch(/^[0-9a-f]{64}$/);
    expect(b!.table).toBe(a!.table);
    expect(probe('')[0]!.table).toBe('absent');
  }, 60_000);
});

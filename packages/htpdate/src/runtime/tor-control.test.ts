import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { duplexPair } from '../test/duplex-pair.js';
import { ControlConnection, waitForBootstrap } from './tor-control.js';

const COOKIE = Buffer.alloc(32, 0xab);

/** A scripted tor ControlPort: cookie auth, then bootstrap progress from `steps`. */
function fakeTor(srv: Duplex, steps: number[], opts: { methods?: string } = {}) {
  const commands: string[] = [];
  let buf = '';
  let authed = false;
  srv.setEncoding('latin1');
  srv.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      commands.push(line);
      if (line === 'PROTOCOLINFO 1')
        srv.write(
          `250-PROTOCOLINFO 1\r\n250-AUTH METHODS=${opts.methods ?? 'COOKIE,SAFECOOKIE'} COOKIEFILE="/run/tor/control.authcookie"\r\n250-VERSION Tor="0.4.8.16"\r\n250 OK\r\n`,
        );
      else if (line === `AUTHENTICATE ${COOKIE.toString('hex')}` || (line === 'AUTHENTICATE' && opts.methods === 'NULL')) {
        authed = true;
        srv.write('250 OK\r\n');
      } else if (line.startsWith('AUTHENTICATE')) srv.write('515 Authentication failed\r\n');
      else if (line === 'GETINFO status/bootstrap-phase' && authed) {
        const p = steps.length > 1 ? steps.shift()! : steps[0]!;
        srv.write(`250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=${p} TAG=x SUMMARY="x"\r\n250 OK\r\n`);
      } else srv.write('514 Authentication required.\r\n');
    }
  });
  return commands;
}

const readCookie = async (p: string): Promise<Buffer> => {
  expect(p).toBe('/run/tor/control.authcookie');
  return COOKIE;
};

describe('waitForBootstrap', () => {
  it('authenticates with the cookie tor names and polls until 100 %', async () => {
    const [client, srv] = duplexPair();
    const commands = fakeTor(srv, [5, 50, 100]);
    await waitForBootstrap(
      { address: '127.0.0.1', port: 9052 },
      { deadlineMs: Date.now() + 5000, pollMs: 5, readCookie, open: async () => ControlConnection.over(client) },
    );
    expect(commands.slice(0, 2)).toEqual(['PROTOCOLINFO 1', `AUTHENTICATE ${COOKIE.toString('hex')}`]);
    expect(commands.filter((c) => c.startsWith('GETINFO'))).toHaveLength(3);
  });
  it('uses NULL authentication when tor offers it', async () => {
    const [client, srv] = duplexPair();
    const commands = fakeTor(srv, [100], { methods: 'NULL' });
    await waitForBootstrap(
      { address: '127.0.0.1', port: 9052 },
      { deadlineMs: Date.now() + 5000, pollMs: 5, open: async () => ControlConnection.over(client) },
    );
    expect(commands).toContain('AUTHENTICATE');
  });
  it('gives up at the deadline when tor stays below 100 %', async () => {
    const opens: number[] = [];
    await expect(
      waitForBootstrap(
        { address: '127.0.0.1', port: 9052 },
        {
          deadlineMs: Date.now() + 200,
          pollMs: 10,
          readCookie,
          open: async () => {
            opens.push(1);
            const [client, srv] = duplexPair();
            fakeTor(srv, [45]);
            return ControlConnection.over(client);
          },
        },
      ),
    ).rejects.toThrow(/45 %/);
  });
  it('retries when the control port is not there yet (tor restarting)', async () => {
    let n = 0;
    await waitForBootstrap(
      { address: '127.0.0.1', port: 9052 },
      {
        deadlineMs: Date.now() + 5000,
        pollMs: 5,
        readCookie,
        open: async () => {
          if (++n < 3) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
          const [client, srv] = duplexPair();
          fakeTor(srv, [100]);
          return ControlConnection.over(client);
        },
      },
    );
    expect(n).toBe(3);
  });
  it('fails when only password authentication is offered', async () => {
    await expect(
      waitForBootstrap(
        { address: '127.0.0.1', port: 9052 },
        {
          deadlineMs: Date.now() + 100,
          pollMs: 10,
          open: async () => {
            const [client, srv] = duplexPair();
            fakeTor(srv, [100], { methods: 'HASHEDPASSWORD' });
            return ControlConnection.over(client);
          },
        },
      ),
    ).rejects.toThrow(/no usable control-port authentication/);
  });
});

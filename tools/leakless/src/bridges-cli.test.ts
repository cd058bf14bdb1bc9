// `leakless emit` with tor.bridges: a bridge line, a transport or a plugin the
// suite cannot provide is refused at the CLI the way every bad policy is
// (docs/design.md#bad-input): exit 2, one line naming the field, nothing
// written. A good bridge policy emits the Bridge and plugin lines.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPolicyInput } from '@leakless/policy/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { main } from './main.js';
import { capture } from './test/io.js';

const CERT = 'AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tng5+71/AMKERgfJi00O0JJUFdeZQ';
const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const OBFS4 = `obfs4 198.51.100.40:443 ${FP} cert=${CERT} iat-mode=0`;
const SNOWFLAKE = `snowflake 192.0.2.3:80 ${FP} url=https://broker.example/ front=cdn.example ice=stun:stun.example:3478`;

type Input = ReturnType<typeof defaultPolicyInput>;

/** The default profile with bridges (a plugin needs the loopback allowlist). */
function withBridges(bridges: Record<string, unknown>, more: (p: Input) => void = () => undefined): string {
  const p = defaultPolicyInput();
  p.tor.bridges = bridges;
  p.loopback.mode = 'allowlist';
  more(p);
  return stringify(p);
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lk-cli-bridges-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const emit = (config: string, io = capture().io) => main(['emit', '--config', config, '--out', join(dir, 't'), '--tar', join(dir, 't.tar')], io);

describe('leakless emit with tor.bridges', () => {
  it('a good obfs4 policy: UseBridges, the plugin and the Bridge line in the emitted torrc', async () => {
    writeFileSync(join(dir, 'ok.yaml'), withBridges({ transport: 'obfs4', lines: [OBFS4] }));
    expect(await emit(join(dir, 'ok.yaml'))).toBe(0);
    const torrc = readFileSync(join(dir, 't', 'etc', 'tor', 'torrc'), 'utf8');
    expect(torrc).toMatch(/^UseBridges 1$/m);
    expect(torrc).toMatch(/^ClientTransportPlugin obfs4 exec \/usr\/bin\/obfs4proxy$/m);
    expect(torrc).toContain(`Bridge ${OBFS4}`);
  });

  const cases: { name: string; text: () => string; path: string; message: RegExp }[] = [
    {
      name: 'a bad bridge line (no fingerprint)',
      text: () => withBridges({ transport: 'obfs4', lines: [`obfs4 198.51.100.40:443 cert=${CERT} iat-mode=0`] }),
      path: 'tor.bridges.lines[0]',
      message: /is not a fingerprint/,
    },
    {
      name: 'an argument the suite’s plugin does not parse',
      text: () => withBridges({ transport: 'obfs4', lines: [`${OBFS4} seed=1`] }),
      path: 'tor.bridges.lines[0]',
      message: /obfs4proxy 0\.0\.14 does not know "seed="/,
    },
    {
      name: 'an unknown transport',
      text: () => withBridges({ transport: 'meek', lines: [OBFS4] }),
      path: 'tor.bridges.transport',
      message: /must be one of/,
    },
    {
      name: 'a transport without its package in the suite',
      text: () => withBridges({ transport: 'obfs4', lines: [OBFS4] }, (p) => (p.image.suite = 'buster')),
      path: 'tor.bridges.transport',
      message: /no Debian package for its plugin is known in suite buster/,
    },
    {
      name: 'snowflake with tor.reachablePorts',
      text: () => withBridges({ transport: 'snowflake', lines: [SNOWFLAKE], udpPorts: 'any' }, (p) => (p.tor.reachablePorts = [443])),
      path: 'tor.reachablePorts',
      message: /must be absent with snowflake/,
    },
  ];

  it.each(cases)('refuses $name: exit 2, the field named on one line, nothing written', async ({ text, path, message }) => {
    writeFileSync(join(dir, 'bad.yaml'), text());
    const c = capture();
    expect(await emit(join(dir, 'bad.yaml'), c.io)).toBe(2);
    expect(c.out).toEqual([]);
    for (const line of c.err) expect(line).not.toMatch(/\n/);
    const hit = c.err.find((l) => l.includes(`${path}: `));
    expect(hit, c.err.join(' | ')).toBeDefined();
    expect(hit).toMatch(message);
    expect(existsSync(join(dir, 't'))).toBe(false);
    expect(existsSync(join(dir, 't.tar'))).toBe(false);
    expect(readdirSync(dir)).toEqual(['bad.yaml']);
  });
});

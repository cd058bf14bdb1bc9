import { afterAll, describe, expect, it } from 'vitest';
import { makeTestCa } from '../../../packages/htpdate/src/test/certs.js';
import { needTool, skipUnless } from '@leakless/testing';
import {
  encodeTestSettings,
  fwCfgArgs,
  parseTestSettings,
  SELFTEST_NETWORK_VAR,
  selftestFiles,
  TEST_SETTINGS_FW_CFG,
  TEST_SETTINGS_MAX_BYTES,
  TEST_SETTINGS_PATHS,
  torrcDropIn,
  type TestSettings,
} from './test-channel.js';

const skip = skipUnless('the test-settings parser with a real CA', needTool('openssl', ['version']));
const FP = 'A'.repeat(40);
const V3 = 'B'.repeat(40);
const AUTH = `DirAuthority auth1 orport=9001 no-v2 v3ident=${V3} 198.51.100.21:9030 ${FP}`;
const AUTH2 = `DirAuthority auth2 orport=9001 no-v2 v3ident=${V3} 203.0.113.22:9030 ${'C'.repeat(40)}`;

describe.skipIf(skip)('the test-settings channel (fw_cfg)', () => {
  const ca = skip ? undefined : makeTestCa('channel test CA');
  afterAll(() => ca?.remove());
  const leaf = () => ca!.issue({ dns: ['x.example'], notBefore: Date.now() - 1000, notAfter: Date.now() + 86_400_000 }).certPem;
  const doc = (o: Record<string, unknown>) =>
    JSON.stringify({ format: 'leakless-test-settings', version: 1, torrc: ['TestingTorNetwork 1', AUTH], agent: true, ...o });

  it('accepts exactly a private network’s authorities, one CA and the agent switch; the drop-in carries the lines', () => {
    const p = parseTestSettings(doc({ ca: ca!.certPem, torrc: ['TestingTorNetwork 1', AUTH, AUTH2] }));
    expect(p).toMatchObject({ ok: true, settings: { agent: true, torrc: ['TestingTorNetwork 1', AUTH, AUTH2] } });
    if (!p.ok) return;
    expect(p.settings.ca).toBe(ca!.certPem.endsWith('\n') ? ca!.certPem : `${ca!.certPem}\n`);
    const dropIn = torrcDropIn(p.settings);
    expect(dropIn.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual(['TestingTorNetwork 1', AUTH, AUTH2]);
    // tor's spaced fingerprint form is tor's too
    expect(parseTestSettings(doc({ torrc: ['TestingTorNetwork 1', AUTH.replace(FP, 'AAAA '.repeat(10).trim())] })).ok).toBe(true);
  });

  const refused: [string, string | Buffer, RegExp][] = [
    ['empty', '', /^empty$/],
    ['oversized', 'x'.repeat(TEST_SETTINGS_MAX_BYTES + 1), /more than/],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), /not UTF-8/],
    ['not JSON', '{torrc:', /not JSON/],
    ['an array', '[]', /not a JSON object/],
    ['an unknown field', doc({ socks: '0.0.0.0:9050' }), /unknown field "socks"/],
    ['another format', doc({ format: 'x' }), /^format/],
    ['another version', doc({ version: 2 }), /^version/],
    ['a SocksPort for everyone', doc({ torrc: ['TestingTorNetwork 1', AUTH, 'SocksPort 0.0.0.0:9050'] }), /^torrc\[2\]/],
    ['a line smuggled after a newline', doc({ torrc: [`TestingTorNetwork 1\nSocksPort 0.0.0.0:9050`, AUTH] }), /^torrc\[0\]/],
    ['a bridge authority', doc({ torrc: ['TestingTorNetwork 1', AUTH.replace(' no-v2', ' bridge')] }), /^torrc\[1\]/],
    ['an IPv6 authority address', doc({ torrc: ['TestingTorNetwork 1', AUTH.replace('198.51.100.21:9030', '[2001:db8::1]:9030')] }), /^torrc\[1\]/],
    ['a port beyond 65535', doc({ torrc: ['TestingTorNetwork 1', AUTH.replace('9030', '70000')] }), /^torrc\[1\]/],
    ['no TestingTorNetwork', doc({ torrc: [AUTH] }), /TestingTorNetwork 1" is missing/],
    ['no authority', doc({ torrc: ['TestingTorNetwork 1'] }), /0 DirAuthority lines/],
    ['a line twice', doc({ torrc: ['TestingTorNetwork 1', AUTH, AUTH] }), /appears twice/],
    ['agent not a boolean', doc({ agent: 'yes' }), /^agent/],
    ['destinations that are not an object', doc({ destinations: ['internet=1.2.3.4'] }), /^destinations: expected an object/],
    ['a destination name with a space', doc({ destinations: { 'in ternet': '198.51.100.10' } }), /is not a destination name/],
    ['a destination by host name', doc({ destinations: { internet: 'example.org:80' } }), /^destinations\.internet/],
    ['a destination port beyond 65535', doc({ destinations: { internet: '198.51.100.10:65536' } }), /^destinations\.internet/],
    ['a destination smuggling an option', doc({ destinations: { internet: '198.51.100.10 --module x' } }), /^destinations\.internet/],
    ['seventeen destinations', doc({ destinations: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`d${i}`, '198.51.100.10'])) }), /17 entries/],
    ['a CA that is not PEM', doc({ ca: 'MIIB...' }), /exactly one PEM certificate/],
    ['two certificates', doc({ ca: `${'-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'.repeat(2)}` }), /exactly one PEM/],
    ['a PEM that is no certificate', doc({ ca: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }), /not a certificate/],
  ];
  for (const [what, raw, why] of refused) {
    it(`refuses ${what}, as a whole, with a reason`, () => {
      const p = parseTestSettings(raw);
      expect(p.ok).toBe(false);
      if (!p.ok) expect(p.reason).toMatch(why);
    });
  }

  it('gives the self-test its probe destinations (and only then lets the probes run)', () => {
    const p = parseTestSettings(doc({ destinations: { internet: '198.51.100.10:8081', 'lan-resolver': '192.168.78.53' } }));
    expect(p).toMatchObject({ ok: true });
    if (!p.ok) return;
    expect(selftestFiles(p.settings)).toEqual({
      destinations: 'internet=198.51.100.10:8081\nlan-resolver=192.168.78.53\n',
      env: `${SELFTEST_NETWORK_VAR}=--destinations ${TEST_SETTINGS_PATHS.selftestDestinations}\n`,
    });
    const without = parseTestSettings(doc({}));
    expect(without.ok && selftestFiles(without.settings)).toBeUndefined();
  });

  it('refuses a leaf certificate as the CA (CA:FALSE)', () => {
    const p = parseTestSettings(doc({ ca: leaf() }));
    expect(p).toMatchObject({ ok: false });
    if (!p.ok) expect(p.reason).toMatch(/not a CA/);
  });

  it('encode writes only what the image accepts, and refuses what it would refuse', () => {
    const s: TestSettings = { torrc: ['TestingTorNetwork 1', AUTH], ca: ca!.certPem, agent: false };
    const back = parseTestSettings(encodeTestSettings(s));
    expect(back).toMatchObject({ ok: true, settings: { torrc: s.torrc, agent: false } });
    expect(() => encodeTestSettings({ ...s, torrc: [...s.torrc, 'ExitNodes {us}'] })).toThrow(/would be refused by the image: torrc\[2\]/);
  });

  it('QEMU gets one fw_cfg file under opt/, and a path QEMU would split is refused', () => {
    expect(fwCfgArgs('/tmp/s.json')).toEqual(['-fw_cfg', `name=${TEST_SETTINGS_FW_CFG},file=/tmp/s.json`]);
    expect(TEST_SETTINGS_FW_CFG.startsWith('opt/')).toBe(true);
    expect(() => fwCfgArgs('/tmp/a,b.json')).toThrow(/comma/);
  });
});

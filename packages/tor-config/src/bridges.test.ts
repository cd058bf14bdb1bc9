import { buildTree, type GeneratedFile, hostToolRunner, memoryTree, type Policy, type StaticContext, type TransportPlugin } from '@leakless/policy';
import { policyWith } from '@leakless/policy/testing';
import { needTool, skipUnless } from '@leakless/testing';
import { describe, expect, it } from 'vitest';
import { emit, parseDump, TORRC, effectiveConfigProblems } from './index.js';
import { execPermission, ownProfiles, pluginProblems } from './plugin.js';

const CERT = 'AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tng5+71/AMKERgfJi00O0JJUFdeZQ';
const FP = '0123456789ABCDEF0123456789ABCDEF01234567';
const OBFS4 = `obfs4 198.51.100.40:443 ${FP} cert=${CERT} iat-mode=0`;
const SNOWFLAKE = `snowflake 192.0.2.3:80 ${FP} fingerprint=${FP} url=https://broker.example/ front=cdn.example ice=stun:stun.example:3478`;

const bridged = (bridges: Record<string, unknown>, blocklist = false): Policy =>
  policyWith((d) => {
    d.tor.bridges = bridges;
    if (!blocklist) d.loopback.mode = 'allowlist';
  });
const obfs4 = bridged({ transport: 'obfs4', lines: [OBFS4] });
const snowflake = bridged({ transport: 'snowflake', lines: [SNOWFLAKE], udpPorts: 'any' });
const vanilla = bridged({ transport: 'vanilla', lines: [`198.51.100.41:9001 ${FP}`] }, true);

const torrcOf = (p: Policy) => emit(p).files.find((f) => f.path === TORRC)!.content;
const directives = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('%'));

function ctxFor(p: Policy, files: readonly GeneratedFile[] = emit(p).files): StaticContext {
  return { tree: memoryTree(buildTree([{ ...emit(p), files }])), policy: p, run: hostToolRunner };
}

describe('tor-config with bridges', () => {
  it('obfs4: UseBridges, the plugin by its Debian path, the line, the sandbox off, the package', () => {
    const d = directives(torrcOf(obfs4));
    expect(d).toEqual(expect.arrayContaining(['UseBridges 1', 'ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy', `Bridge ${OBFS4}`, 'Sandbox 0']));
    expect(d).not.toContain('Sandbox 1');
    expect(emit(obfs4).packages).toContain('obfs4proxy');
  });

  it('snowflake: snowflake-client, the sandbox off, the package', () => {
    const d = directives(torrcOf(snowflake));
    expect(d).toEqual(expect.arrayContaining(['ClientTransportPlugin snowflake exec /usr/bin/snowflake-client', `Bridge ${SNOWFLAKE}`, 'Sandbox 0']));
    expect(emit(snowflake).packages).toContain('snowflake-client');
  });

  it('vanilla: no plugin, so the sandbox stays on; without bridges nothing changes', () => {
    const d = directives(torrcOf(vanilla));
    expect(d).toEqual(expect.arrayContaining(['UseBridges 1', `Bridge 198.51.100.41:9001 ${FP}`, 'Sandbox 1']));
    expect(d.some((l) => l.startsWith('ClientTransportPlugin'))).toBe(false);
    const none = directives(torrcOf(policyWith()));
    expect(none.filter((l) => /^(UseBridges|Bridge|ClientTransportPlugin)\b/.test(l))).toEqual([]);
    expect(none).toContain('Sandbox 1');
    expect(emit(vanilla).packages).toEqual(emit(policyWith()).packages);
  });

  it('the effective-config comparison sees a missing, foreign or extra bridge and a plugin left behind', () => {
    const base = ['UseBridges 1', 'ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy', `Bridge ${OBFS4}`, 'Sandbox 0'];
    const bridgeProblems = (lines: string[]) =>
      effectiveConfigProblems(parseDump(lines.join('\n')), obfs4).filter((p) => /^(UseBridges|Bridge|ClientTransportPlugin|Sandbox):/.test(p));
    expect(bridgeProblems(base)).toEqual([]);
    expect(bridgeProblems(base.filter((l) => !l.startsWith('Bridge')))).toEqual([expect.stringMatching(/^Bridge: tor has \[unset\]/)]);
    expect(bridgeProblems([...base, `Bridge 203.0.113.9:443 ${FP}`])).toEqual([expect.stringMatching(/^Bridge: tor has .*203\.0\.113\.9/)]);
    expect(bridgeProblems([...base.slice(0, 3), 'Sandbox 1'])).toEqual([expect.stringMatching(/^Sandbox: tor has \[1\], the policy says \[0\]/)]);
    const plain = policyWith();
    expect(
      effectiveConfigProblems(parseDump(['UseBridges 0', 'ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy', 'Sandbox 1'].join('\n')), plain).filter((p) =>
        p.startsWith('ClientTransportPlugin'),
      ),
    ).toEqual([expect.stringMatching(/^ClientTransportPlugin: tor has \[obfs4 exec/)]);
  });
});

// Debian's abstraction as shipped by bookworm's tor package (the part that matters).
const ABSTRACTION = '  network tcp,\n  /usr/bin/obfsproxy PUx,\n  /usr/bin/obfs4proxy Pix,\n\n  /usr/bin/snowflake-client Pix,\n';
const plugin = (exec: string) => ({ exec }) as TransportPlugin;

describe('the plugin under tor@default (AppArmor abstraction, NoNewPrivileges)', () => {
  it('reads the permission tor has on each plugin', () => {
    expect(execPermission(ABSTRACTION, '/usr/bin/obfs4proxy')).toBe('Pix');
    expect(execPermission(ABSTRACTION, '/usr/bin/snowflake-client')).toBe('Pix');
    expect(execPermission(ABSTRACTION, '/usr/bin/lyrebird')).toBeUndefined();
  });

  it('refuses a plugin tor may not run, one that leaves tor’s profile, one with a profile of its own', () => {
    expect(pluginProblems(ABSTRACTION, [], plugin('/usr/bin/obfs4proxy'))).toEqual([]);
    expect(pluginProblems(ABSTRACTION, [], plugin('/usr/bin/lyrebird'))).toEqual([expect.stringMatching(/does not let tor execute \/usr\/bin\/lyrebird/)]);
    expect(pluginProblems(ABSTRACTION, [], plugin('/usr/bin/obfsproxy'))).toEqual([expect.stringMatching(/PUx leaves tor's profile/)]);
    // lyrebird's own profile is why Tails sets NoNewPrivileges=no.
    const own = ownProfiles(
      [{ path: '/etc/apparmor.d/usr.bin.obfs4proxy', content: '#include <tunables/global>\n/usr/bin/obfs4proxy {\n}\n' }],
      '/usr/bin/obfs4proxy',
    );
    expect(own).toEqual(['/etc/apparmor.d/usr.bin.obfs4proxy']);
    expect(pluginProblems(ABSTRACTION, own, plugin('/usr/bin/obfs4proxy'))).toEqual([expect.stringMatching(/a profile of its own: under NoNewPrivileges=yes/)]);
    expect(ownProfiles([{ path: '/etc/apparmor.d/system_tor', content: 'profile system_tor flags=(attach_disconnected) {\n' }], '/usr/bin/obfs4proxy')).toEqual(
      [],
    );
    expect(pluginProblems(undefined, [], plugin('/usr/bin/obfs4proxy'))).toEqual([expect.stringMatching(/abstractions\/tor missing/)]);
  });
});

const noTor = needTool('tor', ['--version'], 'tools/leakless/install-deps.sh test installs tor');
const skipTor = skipUnless('tor-config bridge checks with the real tor', noTor);

describe.skipIf(skipTor)('tor-config bridges with the real tor and Debian’s tor package', () => {
  it.each([
    ['obfs4', obfs4],
    ['snowflake', snowflake],
    ['vanilla', vanilla],
  ])('%s: every static assertion passes (tor --verify-config, effective config, the plugin under Debian’s unit)', async (_, p) => {
    const e = emit(p);
    const ctx = ctxFor(p);
    for (const a of e.staticAssertions) expect(await a.check(ctx), a.id).toMatchObject({ ok: true });
    expect(e.staticAssertions.some((a) => a.id === 'tor.transport-plugin')).toBe(p.torBridges?.plugin !== undefined);
  });

  it('anti-test: tor itself refuses the plugin inside its sandbox', async () => {
    const files = emit(obfs4).files.map((f) => (f.path === TORRC ? { ...f, content: f.content.replace('\nSandbox 0\n', '\nSandbox 1\n') } : f));
    const verify = emit(obfs4).staticAssertions.find((a) => a.id === 'tor.verify-config')!;
    expect(await verify.check(ctxFor(obfs4, files))).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/Invalid client transport line|verify-config failed/),
    });
  });
});

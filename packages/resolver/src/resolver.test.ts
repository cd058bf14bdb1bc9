import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import {
  CLEARNET_RESOLVER_DROPIN,
  UNITS,
  buildTree,
  hostToolRunner,
  memoryTree,
  unitDropInPath,
  type GeneratedFile,
  type Policy,
  type StaticContext,
} from '@leakless/policy';
import { defaultPolicy, policyWith } from '@leakless/policy/testing';
import { needRoot, skipUnless } from '@leakless/testing';
import { emit, NM_CONF_D, NM_CONNECTIONS, NM_DISPATCHER, RESOLV_CONF, nmConfigFiles, parseIni } from './index.js';

const policy = defaultPolicy();
const out = emit(policy);

function ctxFor(files: readonly GeneratedFile[], p: Policy = policy): StaticContext {
  return { tree: memoryTree(buildTree([{ ...out, files }])), policy: p, run: hostToolRunner };
}
const file = (path: string) => out.files.find((f) => f.path === path)!;
const edit = (files: readonly GeneratedFile[], path: string, fn: (f: GeneratedFile) => GeneratedFile) => files.map((f) => (f.path === path ? fn(f) : f));
const extra = (path: string, content: string, mode = 0o644): GeneratedFile => ({ path, content, mode, clause: 'test' });
async function check(id: string, files: readonly GeneratedFile[]) {
  return out.staticAssertions.find((a) => a.id === id)!.check(ctxFor(files));
}

const PRIVACY = `${NM_CONF_D}/50-leakless-privacy.conf`;
const WIRED = `${NM_CONNECTIONS}/leakless-wired.nmconnection`;

describe('resolver emit', () => {
  it('writes resolv.conf, the clearnet file, NetworkManager config, the dispatcher and the pre-Tor unit drop-in', () => {
    expect(out.files.map((f) => [f.path, f.mode.toString(8)])).toEqual([
      [RESOLV_CONF, '644'],
      ['/etc/resolv-over-clearnet.conf', '644'],
      [`${NM_CONF_D}/50-leakless-dns.conf`, '644'],
      [PRIVACY, '644'],
      [WIRED, '600'],
      [NM_DISPATCHER, '755'],
      [unitDropInPath(UNITS.preTorTime, CLEARNET_RESOLVER_DROPIN), '644'],
    ]);
    for (const f of out.files) expect(f.content, f.path).toMatch(/leakless: generated from the policy \(.+\); do not edit/);
    expect(out.packages).toEqual(['network-manager']);
  });

  it('resolv.conf names the DNSPort address only, from the policy', () => {
    const lines = (t: string) => t.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines(file(RESOLV_CONF).content)).toEqual(['nameserver 127.0.0.1']);
    const p = policyWith((d) => (d.tor.dnsPort.address = '127.0.0.2'));
    expect(lines(emit(p).files.find((f) => f.path === RESOLV_CONF)!.content)).toEqual(['nameserver 127.0.0.2']);
  });

  it('NetworkManager: dns=none, check off, random Wi-Fi and wired MACs, IPv6 privacy, a wired profile without the host name', () => {
    const ini = parseIni(file(`${NM_CONF_D}/50-leakless-dns.conf`).content).ini;
    expect(ini.get('main')?.get('dns')).toBe('none');
    const priv = parseIni(file(PRIVACY).content).ini;
    expect(priv.get('connectivity')?.get('enabled')).toBe('false');
    expect(priv.get('device')?.get('wifi.scan-rand-mac-address')).toBe('yes');
    expect(priv.get('connection')?.get('wifi.cloned-mac-address')).toBe('random');
    expect(priv.get('connection')?.get('ethernet.cloned-mac-address')).toBe('random');
    expect(priv.get('connection')?.get('ipv6.ip6-privacy')).toBe('2');
    const wired = parseIni(file(WIRED).content);
    expect(wired.errors).toEqual([]);
    expect(wired.ini.get('ipv4')?.get('dhcp-send-hostname')).toBe('false');
    expect(wired.ini.get('connection')?.get('uuid')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(emit(policy).files.find((f) => f.path === WIRED)!.content).toBe(file(WIRED).content);
  });

  it('drop-ins: the pre-Tor check unit here, tor’s in tor-config; none when the pre-Tor check is off', () => {
    expect(file(unitDropInPath(UNITS.preTorTime, CLEARNET_RESOLVER_DROPIN)).content).toContain(
      '\nBindReadOnlyPaths=/etc/resolv-over-clearnet.conf:/etc/resolv.conf\n',
    );
    const off = policyWith((d) => (d.time.preTorCheck.enabled = false));
    expect(off.clearnetResolver.units).toEqual(['tor@default.service']);
    expect(out.files.some((f) => f.path.includes('/systemd/'))).toBe(true);
    expect(emit(off).files.some((f) => f.path.includes('/systemd/'))).toBe(false);
  });

  it('runtime: resolv.conf and NetworkManager files unchanged; an ordinary user’s .onion lookup comes back from the automap range', () => {
    const ids = out.runtimeAssertions.map((a) => a.id);
    expect(ids).toContain('resolver.unchanged.resolv.conf');
    const lookups = out.runtimeAssertions.filter((a) => a.check.kind === 'resolves-within');
    expect(lookups.map((a) => a.id)).toEqual(['resolver.lookup-via-dnsport.amnesia', 'resolver.lookup-via-dnsport.htp']);
    for (const a of lookups) expect(a.check).toMatchObject({ range: policy.automapRange, name: expect.stringMatching(/^[a-z2-7]{56}\.onion$/) });
  });

  it('passes its static assertions on its own output', async () => {
    const ctx = ctxFor(out.files);
    for (const a of out.staticAssertions) expect(await a.check(ctx), a.id).toMatchObject({ ok: true });
  });

  it('anti-tests: each static assertion catches its planted fault', async () => {
    const cases: [string, string, readonly GeneratedFile[]][] = [
      ['resolver.resolv-conf', 'a second nameserver', edit(out.files, RESOLV_CONF, (f) => ({ ...f, content: f.content + 'nameserver 192.168.1.1\n' }))],
      ['resolver.resolv-conf', 'a search domain', edit(out.files, RESOLV_CONF, (f) => ({ ...f, content: f.content + 'search lan\n' }))],
      ['resolver.networkmanager', 'a later conf.d file turns dns back on', [...out.files, extra(`${NM_CONF_D}/90-local.conf`, '[main]\ndns=default\n')]],
      // NetworkManager reads /usr/lib's conf.d first, then /run's, NetworkManager.conf, /etc's: whatever their names
      [
        'resolver.networkmanager',
        'an /etc conf.d file that sorts before ours',
        [...out.files, extra('/etc/NetworkManager/conf.d/10-local.conf', '[main]\ndns=default\n')],
      ],
      ['resolver.networkmanager', 'a /run conf.d file', [...out.files, extra('/run/NetworkManager/conf.d/10-run.conf', '[main]\nrc-manager=symlink\n')]],
      ['resolver.networkmanager', 'NetworkManager.conf', [...out.files, extra('/etc/NetworkManager/NetworkManager.conf', '[main]\ndns=default\n')]],
      ['resolver.networkmanager', 'an empty /etc file with our name', [...out.files, extra('/etc/NetworkManager/conf.d/50-leakless-privacy.conf', '')]],
      [
        'resolver.networkmanager',
        'a later /usr/lib conf.d file re-enables the check',
        [...out.files, extra('/usr/lib/NetworkManager/conf.d/60-check.conf', '[connectivity]\nenabled=true\n')],
      ],
      [
        'resolver.networkmanager',
        'Wi-Fi MAC preserved',
        edit(out.files, PRIVACY, (f) => ({ ...f, content: f.content.replace('wifi.cloned-mac-address=random', 'wifi.cloned-mac-address=preserve') })),
      ],
      [
        'resolver.networkmanager',
        'wired MAC preserved (the NIC’s own, as before this setting)',
        edit(out.files, PRIVACY, (f) => ({ ...f, content: f.content.replace('ethernet.cloned-mac-address=random', 'ethernet.cloned-mac-address=preserve') })),
      ],
      [
        'resolver.networkmanager',
        'no wired MAC setting',
        edit(out.files, PRIVACY, (f) => ({ ...f, content: f.content.replace(/^ethernet\.cloned-mac-address=.*$/m, '') })),
      ],
      ['resolver.hostname-unsent', 'the image’s host name is amnesia', [...out.files, extra('/etc/hostname', 'amnesia\n')]],
      ['resolver.hostname-unsent', 'a host name that only starts like localhost', [...out.files, extra('/etc/hostname', 'localhost-bench\n')]],
      ['resolver.dhcp-no-hostname', 'profile readable by others', edit(out.files, WIRED, (f) => ({ ...f, mode: 0o644 }))],
      [
        'resolver.dhcp-no-hostname',
        'profile sends the host name',
        edit(out.files, WIRED, (f) => ({ ...f, content: f.content.replace('dhcp-send-hostname=false', 'dhcp-send-hostname=true') })),
      ],
      [
        'resolver.dhcp-no-hostname',
        'a second profile with defaults',
        [...out.files, extra(`${NM_CONNECTIONS}/wifi.nmconnection`, '[connection]\ntype=wifi\n[ipv4]\nmethod=auto\n', 0o600)],
      ],
      [
        'resolver.dhcp-no-hostname',
        'an /etc profile with defaults',
        [...out.files, extra('/etc/NetworkManager/system-connections/wired.nmconnection', '[connection]\ntype=ethernet\n[ipv4]\nmethod=auto\n', 0o600)],
      ],
      ['resolver.dispatcher', 'not executable', edit(out.files, NM_DISPATCHER, (f) => ({ ...f, mode: 0o644 }))],
      [
        'resolver.dispatcher',
        'an /etc script of the same name replaces it',
        [...out.files, extra('/etc/NetworkManager/dispatcher.d/00-leakless-resolv-over-clearnet', '#!/bin/sh\n', 0o755)],
      ],
      [
        'resolver.dispatcher',
        'recreates the file',
        edit(out.files, NM_DISPATCHER, (f) => ({ ...f, content: f.content.replace(': > "$f"', 'rm -f "$f"; : > "$f"') })),
      ],
      ['resolver.dispatcher', 'shell syntax error', edit(out.files, NM_DISPATCHER, (f) => ({ ...f, content: f.content.replace('done', 'done; fi') }))],
    ];
    for (const [id, name, files] of cases) expect((await check(id, files)).ok, `${id}: ${name}`).toBe(false);
  });

  it('the host name NetworkManager would send: none, for localhost and names below it (the image’s /etc/hostname, or image.hostname)', async () => {
    expect(await check('resolver.hostname-unsent', out.files)).toMatchObject({ ok: true, detail: expect.stringMatching(/image\.hostname is "localhost"/) });
    for (const name of ['localhost', 'localhost.localdomain', 'bench.localhost', 'LOCALHOST.'])
      expect((await check('resolver.hostname-unsent', [...out.files, extra('/etc/hostname', `${name}\n`)])).ok, name).toBe(true);
  });

  it('reads NetworkManager’s files in its own order, and Debian’s NetworkManager.conf undoes nothing', async () => {
    const debian = extra('/etc/NetworkManager/NetworkManager.conf', '[main]\nplugins=ifupdown,keyfile\n\n[ifupdown]\nmanaged=false\n');
    const early = extra('/etc/NetworkManager/conf.d/10-local.conf', '[logging]\nlevel=INFO\n');
    const tree = ctxFor([...out.files, debian, early]).tree;
    expect(nmConfigFiles(tree)).toEqual([
      `${NM_CONF_D}/50-leakless-dns.conf`,
      PRIVACY,
      '/etc/NetworkManager/NetworkManager.conf',
      '/etc/NetworkManager/conf.d/10-local.conf',
    ]);
    expect((await check('resolver.networkmanager', [...out.files, debian, early])).ok).toBe(true);
  });
});

// The dispatcher run for real: in a private mount namespace with a tmpfs over
// /etc (the host's /etc is never written), a unit's read-only bind of the
// clearnet file over /etc/resolv.conf, then NetworkManager-like events.
const noRoot = skipUnless('the resolver dispatcher test', needRoot('a private mount namespace with a tmpfs over /etc'));

describe.skipIf(noRoot)('the NetworkManager dispatcher script', () => {
  const cr = policy.clearnetResolver.file;
  async function run(script: string, events: { iface: string; action: string; ns?: string }[]) {
    const dir = mkdtempSync(join(tmpdir(), 'lk-resolver-'));
    try {
      writeFileSync(join(dir, 'dispatcher'), script, { mode: 0o755 });
      // One shell in a private mount namespace: tmpfs /etc, the emitted placeholder,
      // a bind like the units' (over a second path), then each event; prints the
      // file, the bind's view and the inode after each event.
      const steps = events
        .map(
          (e) =>
            `IP4_NAMESERVERS='${e.ns ?? ''}' sh "$D/dispatcher" '${e.iface}' '${e.action}'; echo "--- $(stat -c %i ${cr})"; cat ${cr}; echo "=== bind"; cat /etc/resolv.conf`,
        )
        .join('\n');
      const sh = `set -e; D=$1; mount -t tmpfs tmpfs /etc; printf '# placeholder\\n' > ${cr}; : > /etc/resolv.conf; mount --bind -o ro ${cr} /etc/resolv.conf; echo "inode $(stat -c %i ${cr})"\n${steps}`;
      const r = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', sh, 'sh', dir], { reject: false });
      if (r.exitCode !== 0) throw new Error(r.stderr);
      return r.stdout;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const script = file(NM_DISPATCHER).content;

  it('saves DHCP IPv4 servers only, truncating in place so the units’ binds see the change', async () => {
    const outText = await run(script, [
      { iface: 'eth0', action: 'up', ns: '192.168.1.1 10.0.0.53 fe80::1 1.2.3.4;reboot *' },
      { iface: 'lo', action: 'up', ns: '9.9.9.9' },
      // NetworkManager's actions without a device: an empty interface, no servers
      { iface: '', action: 'hostname' },
      { iface: '', action: 'connectivity-change' },
      { iface: '', action: 'dns-change' },
      { iface: 'eth0', action: 'down' },
    ]);
    const inode = /^inode (\d+)$/m.exec(outText)![1];
    const parts = outText.split('--- ').slice(1);
    expect(parts).toHaveLength(6);
    for (const p of parts) expect(p.startsWith(`${inode}\n`), 'same inode after every event').toBe(true);
    const [up, lo, hostname, connectivity, dns, down] = parts.map((p) => p.split('\n').slice(1).join('\n'));
    expect(up).toBe('nameserver 192.168.1.1\nnameserver 10.0.0.53\n=== bind\nnameserver 192.168.1.1\nnameserver 10.0.0.53\n');
    expect(lo, 'lo events change nothing').toBe(up);
    expect([hostname, connectivity, dns], 'actions without a device keep the saved servers').toEqual([up, up, up]);
    expect(down!.trimEnd(), 'down: the stale LAN resolver is gone').toBe('=== bind');
  });

  it('anti-test: a script that replaces the file leaves the units with a stale resolver', async () => {
    const replacing = script.replace(': > "$f"', 'rm -f "$f"; : > "$f"');
    const outText = await run(replacing, [
      { iface: 'eth0', action: 'up', ns: '192.168.1.1' },
      { iface: 'eth0', action: 'up', ns: '192.168.7.7' },
    ]);
    const last = outText.split('--- ').pop()!;
    expect(last).toContain('nameserver 192.168.7.7\n=== bind\n');
    expect(last.split('=== bind\n')[1]).not.toContain('192.168.7.7');
  });
});

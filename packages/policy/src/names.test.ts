import { describe, expect, it } from 'vitest';
import {
  CLEARNET_RESOLVER_DROPIN,
  ETC_KEPT,
  PATHS,
  UNITS,
  hostnameIsSent,
  layoutProblem,
  layoutProblems,
  unitDropInDirs,
  unitDropInPath,
  unitOfPath,
} from './names.js';
import { defaultPolicy, policyWith } from './testing.js';

describe('shared names', () => {
  it('name a unit by the file of a tree that configures it, and nothing else', () => {
    expect(unitOfPath('/etc/systemd/system/leakless-firewall.service')).toEqual({ unit: UNITS.firewall, dropIn: false });
    expect(unitOfPath(unitDropInPath(UNITS.tor, CLEARNET_RESOLVER_DROPIN))).toEqual({ unit: UNITS.tor, dropIn: true });
    expect(unitOfPath('/usr/lib/systemd/system/tor@.service.d/x.conf')).toEqual({ unit: 'tor@.service', dropIn: true });
    expect(unitOfPath('/lib/systemd/system/NetworkManager.service')).toEqual({ unit: UNITS.networkManager, dropIn: false });
    for (const other of [
      '/etc/systemd/system/multi-user.target.wants/tor.service',
      '/etc/systemd/system/tor@default.service.d/README',
      '/etc/systemd/system.conf',
      '/etc/leakless/firewall.nft',
      '/etc/systemd/system/notes.txt',
    ])
      expect(unitOfPath(other), other).toBeUndefined();
  });

  it('are what the policy views use: the tor unit, the pre-Tor unit (with consent only), the clearnet resolver and its drop-ins', () => {
    const p = defaultPolicy();
    expect(p.torUnit).toBe(UNITS.tor);
    expect(p.preTorCheckUnit).toBe(UNITS.preTorTime);
    expect(p.clearnetResolver).toEqual({
      file: PATHS.clearnetResolvConf,
      units: [UNITS.tor, UNITS.preTorTime],
      dropIns: [
        { unit: UNITS.tor, path: `/usr/lib/systemd/system/tor@default.service.d/${CLEARNET_RESOLVER_DROPIN}` },
        { unit: UNITS.preTorTime, path: `/usr/lib/systemd/system/leakless-pretor-time.service.d/${CLEARNET_RESOLVER_DROPIN}` },
      ],
      bind: 'BindReadOnlyPaths=/etc/resolv-over-clearnet.conf:/etc/resolv.conf',
    });
    const off = policyWith((d) => (d.time.preTorCheck.enabled = false));
    expect(off.preTorCheckUnit).toBeUndefined();
    expect(off.clearnetResolver.dropIns.map((d) => d.unit)).toEqual([UNITS.tor]);
  });

  it('find a unit’s drop-ins in every directory systemd reads, the template’s too', () => {
    expect(unitDropInDirs('tor@default.service')).toEqual([
      '/etc/systemd/system/tor@default.service.d',
      '/etc/systemd/system/tor@.service.d',
      '/run/systemd/system/tor@default.service.d',
      '/run/systemd/system/tor@.service.d',
      '/usr/local/lib/systemd/system/tor@default.service.d',
      '/usr/local/lib/systemd/system/tor@.service.d',
      '/usr/lib/systemd/system/tor@default.service.d',
      '/usr/lib/systemd/system/tor@.service.d',
      '/lib/systemd/system/tor@default.service.d',
      '/lib/systemd/system/tor@.service.d',
    ]);
    expect(unitDropInDirs(UNITS.firewall)).toHaveLength(5);
  });
});

describe('the Debian layout', () => {
  it('puts every shared path in a package location: vendor files under /usr, nothing under /usr/local, no unit in /etc', () => {
    expect(unitDropInPath(UNITS.networkManager, 'x.conf')).toBe('/usr/lib/systemd/system/NetworkManager.service.d/x.conf');
    for (const [key, p] of Object.entries(PATHS)) {
      if (key === 'node' || key === 'sbin' || key === 'adminUnits') continue; // Debian's nodejs; directories, not files leakless ships
      const file =
        key === 'selftest' || key === 'netnsExec' || key === 'resolvConf' || key === 'clearnetResolvConf' || key === 'runtimeAssertions' ? p : `${p}/x`;
      expect(layoutProblem(file), `${key}: ${file}`).toBeUndefined();
    }
  });

  it('accepts /etc only for what a program reads nowhere else, each with its reason', () => {
    expect(ETC_KEPT.every((k) => k.path.startsWith('/etc/') && k.why.length > 20)).toBe(true);
    expect(layoutProblems(['/etc/tor/torrc', '/etc/tor/torrc.d/50-local.conf', '/etc/netns/tbb/resolv.conf', '/etc/apt/apt.conf.d/50leakless-tor'])).toEqual(
      [],
    );
  });

  it.each([
    ['/usr/local/sbin/leakless-netns-exec', /under \/usr\/local/],
    ['/usr/local/lib/leakless/htpdate', /file-in-usr-local/],
    ['/etc/systemd/system/leakless-firewall.service', /administrator's unit directory/],
    ['/etc/systemd/system/NetworkManager.service.d/50-leakless-firewall.conf', /ship units and drop-ins in \/usr\/lib\/systemd\/system/],
    ['/etc/systemd/system/nftables.service', /administrator's unit directory/],
    ['/etc/leakless/firewall.nft', /under \/etc/],
    ['/etc/sysctl.d/zz-leakless-pmtud.conf', /under \/etc/],
    ['/etc/NetworkManager/conf.d/50-leakless-dns.conf', /under \/etc/],
    ['/etc/tor/torrc.bak', /under \/etc/],
    ['/usr/bin/node-leakless', /not a location/],
    ['/usr/sbin/netns-setup', /not a location/],
    ['/opt/leakless/x', /not a location/],
    ['/usr/lib/leakless-other/x', /not a location/],
  ])('anti-test: %s is refused', (path, why) => {
    expect(layoutProblem(path)).toMatch(why);
    expect(layoutProblems(['/usr/lib/leakless/ok', path])).toHaveLength(1);
  });
});

describe('the host names NetworkManager never sends in DHCP', () => {
  it.each(['localhost', 'LOCALHOST.', 'localhost.localdomain', 'localhost6', 'bench.localhost', 'a.b.localhost4.localdomain4'])('%s is never sent', (name) => {
    expect(hostnameIsSent(name)).toBe(false);
  });
  it.each(['amnesia', 'localhost-bench', 'xlocalhost', 'localhost.example', 'localdomain'])('anti-test: %s would be sent', (name) => {
    expect(hostnameIsSent(name)).toBe(true);
  });
});

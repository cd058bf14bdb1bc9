import { describe, expect, it } from 'vitest';
import { CLEARNET_RESOLVER_DROPIN, PATHS, UNITS, unitDropInPath, unitOfPath } from './names.js';
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
        { unit: UNITS.tor, path: `/etc/systemd/system/tor@default.service.d/${CLEARNET_RESOLVER_DROPIN}` },
        { unit: UNITS.preTorTime, path: `/etc/systemd/system/leakless-pretor-time.service.d/${CLEARNET_RESOLVER_DROPIN}` },
      ],
      bind: 'BindReadOnlyPaths=/etc/resolv-over-clearnet.conf:/etc/resolv.conf',
    });
    const off = policyWith((d) => (d.time.preTorCheck.enabled = false));
    expect(off.preTorCheckUnit).toBeUndefined();
    expect(off.clearnetResolver.dropIns.map((d) => d.unit)).toEqual([UNITS.tor]);
  });
});

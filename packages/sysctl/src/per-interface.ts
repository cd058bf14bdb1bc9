// Per-interface sysctls (docs/threat-model.md#hostile-local-programs-tests).
// The sysctl assertions read `all` and `default`; but for some keys the
// kernel decides by each interface's own value, and an interface that existed
// before systemd-sysctl ran, or that NetworkManager (or a program with the
// right to) reconfigured, keeps its own. disable_ipv6 is the one that brings
// a path around the firewall's design back (an IPv6 address, EUI-64 from the
// MAC): writing `all` reaches every interface there is, `default` every later
// one, and a later per-interface write undoes it for that one. So every
// interface is read, not only all and default.
import type { RuntimeAssertion } from '@leakless/policy';
import type { SysctlFile } from './settings.js';

/** Keys where the interface's own value is what the kernel uses (not combined with all). */
const PER_INTERFACE_KEYS: readonly { readonly family: 'ipv4' | 'ipv6'; readonly key: string }[] = [{ family: 'ipv6', key: 'disable_ipv6' }];

export function perInterfaceAssertions(files: readonly SysctlFile[]): RuntimeAssertion[] {
  const settings = files.flatMap((f) => f.settings);
  return PER_INTERFACE_KEYS.flatMap(({ family, key }) => {
    const all = settings.find((s) => s.key === `net.${family}.conf.all.${key}`);
    if (!all) return [];
    // interfaces the policy names on their own (lo keeps ::1)
    const named = settings
      .map((s) => ({ s, m: new RegExp(`^net\\.${family}\\.conf\\.([^.]+)\\.${key}$`).exec(s.key) }))
      .filter((x) => x.m && x.m[1] !== 'all' && x.m[1] !== 'default');
    const except = Object.fromEntries(named.map((x) => [x.m![1]!, x.s.value]));
    return [
      {
        id: `sysctl.each-interface.${family}.${key}`,
        statement: `net.${family}.conf.<every interface>.${key} = ${all.value}${named.length ? `, ${named.map((x) => `${x.m![1]} = ${x.s.value}`).join(', ')}` : ''}`,
        check: { kind: 'sysctl-interfaces', family, key, expected: all.value, ...(named.length ? { except } : {}) },
        scope: 'netns',
      },
    ];
  });
}

// NetworkManager's configuration as data: each key with the section it goes
// in, its value and the leak it closes. Templates only print this, the static
// assertions read the rendered files back and compare them with it.
import { createHash } from 'node:crypto';
import { PATHS, type Policy } from '@leakless/policy';

export const RESOLV_CONF = PATHS.resolvConf;
/**
 * NetworkManager 1.42's vendor directories (Debian's network-manager ships
 * them): conf.d is read first, before NetworkManager.conf and
 * /etc/NetworkManager/conf.d, so the static checks prove that nothing read
 * later (and no /etc file of the same name, which replaces ours) undoes a key.
 */
export const NM_CONF_D = PATHS.nmConfD;
export const NM_CONNECTIONS = PATHS.nmConnections;
export const NM_DISPATCHER = `${PATHS.nmDispatcherD}/00-leakless-resolv-over-clearnet`;
/** Where an administrator's files live: read after ours (conf.d) or instead of ours (same name). */
export const NM_ETC = '/etc/NetworkManager';
/**
 * A v3-onion-shaped name no one serves: tor's DNSPort answers it from the
 * automap range without any network (AutomapHostsOnResolve), and no other
 * resolver would, so the answer proves which resolver answered.
 */
export const PROBE_ONION = `${'leakless'.repeat(7).slice(0, 55)}d.onion`;

export interface IniKey {
  readonly key: string;
  readonly value: string;
  readonly why: string;
}
export interface IniSection {
  readonly section: string;
  readonly keys: readonly IniKey[];
}
export interface IniFile {
  readonly path: string;
  readonly title: string;
  readonly clause: string;
  readonly mode: number;
  readonly sections: readonly IniSection[];
}

const k = (key: string, value: string, why: string): IniKey => ({ key, value, why });

/** A stable UUID (RFC 4122 v4 layout) from a seed, so the keyfile is deterministic. */
export function stableUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  const v = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${v}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function nmFiles(policy: Policy): IniFile[] {
  const ipv6Off = !policy.document.ipv6.enabled;
  return [
    {
      path: `${NM_CONF_D}/50-leakless-dns.conf`,
      title: 'NetworkManager never touches /etc/resolv.conf',
      clause: 'tor.dnsPort (Tails conf.d/dns.conf)',
      mode: 0o644,
      sections: [
        {
          section: 'main',
          keys: [
            k('dns', 'none', `DHCP-supplied DNS servers must never reach /etc/resolv.conf: it points at ${policy.dnsPort.address} (the DNSPort) only`),
            k('rc-manager', 'unmanaged', 'belt and braces: even a later dns= setting leaves resolv.conf alone'),
            k('dhcp', 'internal', 'the built-in DHCP client (Tails conf.d/dhcp.conf): no dhclient scripts that could rewrite resolv.conf'),
          ],
        },
      ],
    },
    {
      path: `${NM_CONF_D}/50-leakless-privacy.conf`,
      title: 'What NetworkManager tells the local network',
      clause: 'docs/threat-model.md#nm-privacy (Tails NetworkManager settings)',
      mode: 0o644,
      sections: [
        {
          section: 'main',
          keys: [
            k('hostname-mode', 'none', 'never take a hostname from DHCP or a reverse DNS lookup (the lookup itself is a DNS query)'),
            k(
              'no-auto-default',
              '*',
              `no "Wired connection 1" with NetworkManager's defaults: ${NM_CONNECTIONS}/leakless-wired.nmconnection is the wired profile`,
            ),
          ],
        },
        {
          section: 'connectivity',
          keys: [k('enabled', 'false', "NetworkManager's own connectivity check would be a clearnet HTTP request; the pre-Tor time check is the only one")],
        },
        {
          section: 'device',
          keys: [k('wifi.scan-rand-mac-address', 'yes', 'probe requests while scanning carry a random MAC, not the hardware one')],
        },
        {
          section: 'connection',
          keys: [
            k('wifi.cloned-mac-address', 'random', 'a new random MAC for every Wi-Fi connection: access points cannot recognise the machine'),
            k(
              'ethernet.cloned-mac-address',
              'random',
              'a new random MAC for every wired connection too, in every profile that does not set its own (ours, and any made after boot): the LAN and its DHCP server cannot recognise the machine',
            ),
            k('ipv6.ip6-privacy', '2', 'if IPv6 is ever enabled: RFC 8981 temporary addresses, no EUI-64 MAC in the address (Tails #20478)'),
          ],
        },
      ],
    },
    {
      path: `${NM_CONNECTIONS}/leakless-wired.nmconnection`,
      title:
        'The wired profile (NetworkManager 1.42 cannot default dhcp-send-hostname globally; a profile made later sends no host name because the image’s is one it never sends)',
      clause: 'docs/threat-model.md#dhcp-hostname',
      // NetworkManager ignores keyfiles readable by others.
      mode: 0o600,
      sections: [
        {
          section: 'connection',
          keys: [
            k('id', 'leakless-wired', 'any Ethernet device'),
            k('uuid', stableUuid(`${policy.name}/leakless-wired`), 'stable, so the built image is reproducible'),
            k('type', 'ethernet', 'not bound to an interface name or MAC: matches every wired NIC'),
            k('autoconnect', 'true', 'connect like the default profile would'),
            k('multi-connect', '3', 'one profile for every wired NIC at once'),
          ],
        },
        {
          section: 'ipv4',
          keys: [k('method', 'auto', 'DHCP'), k('dhcp-send-hostname', 'false', 'the DHCP request carries no host name')],
        },
        {
          section: 'ipv6',
          keys: [
            k('method', ipv6Off ? 'disabled' : 'auto', ipv6Off ? 'ipv6.enabled is false' : 'ipv6.enabled'),
            k('ip6-privacy', '2', 'RFC 8981 temporary addresses'),
          ],
        },
      ],
    },
  ];
}

/** The drop-ins binding the clearnet resolver file that this module writes (tor's is tor-config's). */
export function bindDropIns(policy: Policy): { readonly unit: string; readonly path: string }[] {
  return policy.clearnetResolver.dropIns.filter((d) => d.unit !== policy.torUnit);
}

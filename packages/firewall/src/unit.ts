// The systemd side of fail-closed loading, and a small parser so the static
// checks read the unit the way systemd does (an empty assignment resets a list).
import { loadTemplate } from '@leakless/policy';

export const UNIT_NAME = 'leakless-firewall.service';
export const RULESET_PATH = '/etc/leakless/firewall.nft';
export const LOCKDOWN_PATH = '/etc/leakless/firewall-lockdown.nft';
export const NFT = '/usr/sbin/nft';
/** Network services that must not start without the firewall (those Debian ships that order after network-pre.target). */
export const NETWORK_SERVICES = ['NetworkManager.service', 'networking.service', 'systemd-networkd.service'] as const;
/**
 * Debian's own nftables.service runs `flush ruleset` on start (/etc/nftables.conf)
 * and on stop: enabling it by accident would remove this table. An empty unit
 * file masks it.
 */
export const MASKED_UNITS = ['nftables.service'] as const;

export const UNIT_CLAUSE = 'SPEC 2.2: fail closed before network-pre.target';

export const renderUnit = loadTemplate<{ clause: string; nft: string; rulesetPath: string; lockdownPath: string }>(import.meta.url, 'leakless-firewall.service.ejs', [
  'clause',
  'nft',
  'rulesetPath',
  'lockdownPath',
]);
export const renderRequires = loadTemplate<{ clause: string; service: string; unit: string }>(import.meta.url, 'requires-firewall.conf.ejs', ['clause', 'service', 'unit']);

export function dropInPath(service: string): string {
  return `/etc/systemd/system/${service}.d/50-leakless-firewall.conf`;
}

/** section → key → values in order, with systemd's "empty assignment resets" rule applied. */
export type UnitFile = ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;

export function parseUnit(text: string): UnitFile {
  const out = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[([^\]]+)\]$/.exec(line);
    if (sec) {
      section = out.get(sec[1]!) ?? new Map();
      out.set(sec[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq < 0) throw new Error(`unit: cannot parse line ${JSON.stringify(line)}`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (value === '') section.set(key, []);
    else section.set(key, [...(section.get(key) ?? []), value]);
  }
  return out;
}

export function unitValues(u: UnitFile, section: string, key: string): readonly string[] {
  return (u.get(section)?.get(key) ?? []).flatMap((v) => (key.startsWith('Exec') ? [v] : v.split(/\s+/)));
}

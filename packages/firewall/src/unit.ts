// The systemd side of fail-closed loading: the unit that loads the lockdown
// and then the ruleset before network-pre.target, and the drop-ins that make
// the network services Require it. Unit names and directories come from the
// policy layer (one spelling for every module that orders against them).
import { PATHS, UNITS, loadTemplate, unitDropInPath } from '@leakless/policy';

export const UNIT_NAME = UNITS.firewall;
export const UNIT_PATH = `${PATHS.units}/${UNIT_NAME}`;
export const RULESET_PATH = `${PATHS.lib}/firewall.nft`;
export const LOCKDOWN_PATH = `${PATHS.lib}/firewall-lockdown.nft`;
/** Network services that must not start without the firewall (those Debian ships that order after network-pre.target). */
export const NETWORK_SERVICES = [UNITS.networkManager, 'networking.service', 'systemd-networkd.service'] as const;
/**
 * Debian's own nftables.service runs `flush ruleset` on start (/etc/nftables.conf)
 * and on stop: enabling or starting it by accident would remove this table.
 * Masked (Emission.maskedUnits), so nothing can start it. With `systemctl
 * mask`, not deb-systemd-helper's: nftables' postinst runs
 * `deb-systemd-helper unmask`, which removes a mask only when
 * deb-systemd-helper made it.
 */
export const MASKED_UNITS = ['nftables.service'] as const;

export const UNIT_CLAUSE = 'docs/threat-model.md#network-pre: fail closed before network-pre.target';

export const renderUnit = loadTemplate<{
  clause: string;
  nft: string;
  modprobe: string;
  modules: string;
  rulesetPath: string;
  lockdownPath: string;
  target: string;
}>(import.meta.url, 'leakless-firewall.service.ejs', ['clause', 'nft', 'modprobe', 'modules', 'rulesetPath', 'lockdownPath', 'target']);
export const renderRequires = loadTemplate<{ clause: string; service: string; unit: string }>(import.meta.url, 'requires-firewall.conf.ejs', [
  'clause',
  'service',
  'unit',
]);

export function dropInPath(service: string): string {
  return unitDropInPath(service, '50-leakless-firewall.conf');
}

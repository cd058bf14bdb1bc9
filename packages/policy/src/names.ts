// Names that more than one part of the image writes, orders against or
// checks: systemd units, the directories leakless installs into, and the
// system files several modules touch. Spelled here once, so two modules can
// never disagree about a unit they both name (a firewall unit the netns unit
// Requires= under another name would leave the namespaces without their
// host-side rules). No imports: the in-image self-test bundle uses it too.

/** systemd units leakless ships, and the units and targets of Debian it orders them against. */
export const UNITS = {
  /** Loads the lockdown, then the policy ruleset, before network-pre.target (firewall module). */
  firewall: 'leakless-firewall.service',
  /** Creates the per-application namespaces after the firewall (netns module). */
  netns: 'leakless-netns.service',
  /** The consented clearnet time check before tor starts (htpdate module; only when time.preTorCheck.enabled). */
  preTorTime: 'leakless-pretor-time.service',
  /** htpdate through Tor after the bootstrap (htpdate module). */
  htpdate: 'leakless-htpdate.service',
  /** Debian's instance of tor that runs the system tor, `tor --defaults-torrc … -f /etc/tor/torrc`. */
  tor: 'tor@default.service',
  /** Debian's multi-instance wrapper that starts tor@default. */
  torWrapper: 'tor.service',
  networkManager: 'NetworkManager.service',
  networkPre: 'network-pre.target',
} as const;

/** Paths in the image. */
export const PATHS = {
  /** Configuration leakless generates (rulesets, time.conf). */
  etc: '/etc/leakless',
  /** Programs leakless installs that no user runs directly (setup scripts, the time tools). */
  lib: '/usr/local/lib/leakless',
  /** Data the image carries about itself (the runtime assertions). */
  share: '/usr/share/leakless',
  /** The system resolver: names only tor's DNSPort (resolver module). */
  resolvConf: '/etc/resolv.conf',
  /**
   * The DHCP-supplied DNS servers, never in /etc/resolv.conf (Tails'
   * resolv-over-clearnet): written by the resolver module, bound over
   * /etc/resolv.conf for the units the policy allows, linked into each
   * clearnet namespace.
   */
  clearnetResolvConf: '/etc/resolv-over-clearnet.conf',
  /** Units and drop-ins of the administrator: the highest-priority unit directory. */
  adminUnits: '/etc/systemd/system',
  /** Units that ship with packages. */
  packageUnits: '/usr/lib/systemd/system',
  /** Debian's nodejs, which runs the bundled single-file tools. */
  node: '/usr/bin/node',
  /** The in-image self-test and the runtime assertions it evaluates. */
  selftest: '/usr/local/bin/leakless-selftest',
  runtimeAssertions: '/usr/share/leakless/runtime-assertions.json',
} as const;

/** The drop-in that binds the clearnet resolver file over /etc/resolv.conf for one unit (tor-config for tor, resolver for the rest). */
export const CLEARNET_RESOLVER_DROPIN = '50-leakless-resolv-over-clearnet.conf';

/**
 * systemd's system unit directories that a built root filesystem can hold,
 * highest priority first (systemd.unit(5); /lib is Debian's pre-merged-/usr
 * spelling of /usr/lib).
 */
export const UNIT_SEARCH_PATH = [
  '/etc/systemd/system',
  '/run/systemd/system',
  '/usr/local/lib/systemd/system',
  '/usr/lib/systemd/system',
  '/lib/systemd/system',
] as const;

/** An administrator's drop-in for a unit: /etc/systemd/system/UNIT.d/FILE. */
export function unitDropInPath(unit: string, file: string): string {
  return `${PATHS.adminUnits}/${unit}.d/${file}`;
}

/** A unit file name: name.type (instances and templates included). */
const UNIT_NAME = /^[A-Za-z0-9:_.\\@-]+\.(service|socket|device|mount|automount|swap|target|path|timer|slice|scope)$/;

/**
 * Which unit a path in a tree configures: a unit file in one of the unit
 * directories, or a *.conf drop-in in its UNIT.d directory; undefined for
 * anything else (wants/ links, generators, other files).
 */
export function unitOfPath(path: string): { readonly unit: string; readonly dropIn: boolean } | undefined {
  const dir = UNIT_SEARCH_PATH.find((d) => path.startsWith(`${d}/`));
  if (!dir) return undefined;
  const parts = path.slice(dir.length + 1).split('/');
  if (parts.length === 1 && UNIT_NAME.test(parts[0]!)) return { unit: parts[0]!, dropIn: false };
  if (parts.length === 2 && parts[0]!.endsWith('.d') && parts[1]!.endsWith('.conf')) {
    const unit = parts[0]!.slice(0, -2);
    if (UNIT_NAME.test(unit)) return { unit, dropIn: true };
  }
  return undefined;
}

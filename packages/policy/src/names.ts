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

/**
 * Paths in the image: Debian package paths, the same for the ISO and the
 * packages (docs/design.md#layout). Vendor files live under /usr, read-only
 * and replaced by an upgrade; /etc is the administrator's, and leakless
 * writes there only where the program that reads a file looks nowhere else
 * (ETC_KEPT). Nothing under /usr/local (the local administrator's, lintian
 * file-in-usr-local) and no unit in /etc/systemd/system.
 */
export const PATHS = {
  /**
   * Programs no user runs directly (setup scripts, the time tools) and the
   * configuration leakless generates from the policy (rulesets, time.conf):
   * generated, never edited in place, so vendor files, not conffiles.
   */
  lib: '/usr/lib/leakless',
  /** Data the image carries about itself (the runtime assertions). */
  share: '/usr/share/leakless',
  /**
   * Commands an administrator runs, as root (sudo): the launcher enters a
   * namespace and the self-test lists the kernel's rulesets, neither works
   * without root, so /usr/sbin (FHS: system administration), in sudo's
   * secure_path and not in a normal user's PATH.
   */
  sbin: '/usr/sbin',
  /** systemd units leakless ships, and its vendor drop-ins for other packages' units (UNIT.d/). */
  units: '/usr/lib/systemd/system',
  /**
   * The administrator's unit directory. leakless ships no file here; only the
   * links systemctl makes when the image is built or a package is configured
   * (enable, mask) end up in it.
   */
  adminUnits: '/etc/systemd/system',
  /** systemd-sysctl reads /etc, /run, /usr/lib: one order by file name across all three. */
  sysctlD: '/usr/lib/sysctl.d',
  /** kmod's vendor directory (/lib/modprobe.d, the same directory on merged /usr). */
  modprobeD: '/usr/lib/modprobe.d',
  /** udev's vendor rules (/lib/udev/rules.d, the same directory on merged /usr). */
  udevRules: '/usr/lib/udev/rules.d',
  /** NetworkManager 1.42's vendor conf.d: read first, before NetworkManager.conf and /etc/NetworkManager/conf.d. */
  nmConfD: '/usr/lib/NetworkManager/conf.d',
  /** nm-dispatcher reads this and /etc/NetworkManager/dispatcher.d; a script of the same name in /etc replaces ours. */
  nmDispatcherD: '/usr/lib/NetworkManager/dispatcher.d',
  /** The keyfile plugin's read-only profiles (beside /etc and /run/NetworkManager/system-connections). */
  nmConnections: '/usr/lib/NetworkManager/system-connections',
  /** The system resolver: names only tor's DNSPort (resolver module). */
  resolvConf: '/etc/resolv.conf',
  /**
   * The DHCP-supplied DNS servers, never in /etc/resolv.conf (Tails'
   * resolv-over-clearnet): written by the resolver module, bound over
   * /etc/resolv.conf for the units the policy allows, linked into each
   * clearnet namespace.
   */
  clearnetResolvConf: '/etc/resolv-over-clearnet.conf',
  /** Debian's nodejs, which runs the bundled single-file tools. */
  node: '/usr/bin/node',
  /** The in-image self-test and the runtime assertions it evaluates. */
  selftest: '/usr/sbin/leakless-selftest',
  runtimeAssertions: '/usr/share/leakless/runtime-assertions.json',
  /** Runs an application inside a network namespace as the desktop user (netns module). */
  netnsExec: '/usr/sbin/leakless-netns-exec',
} as const;

/**
 * Where tor's control socket and cookie are at run time (tor-config writes
 * them into the torrc, htpdate reads them from time.conf). The socket is for
 * privileged local clients: it lives in the run directory Debian's
 * tor@default creates for the tor user (02755, only that user may write), so
 * no other program can listen there, tor running or not, and it admits the
 * tor group only. Clients read the cookie from here, never from the path a
 * server names (docs/threat-model.md#controlport).
 */
export const TOR_CONTROL = {
  socket: '/run/tor/control',
  cookie: '/run/tor/control.authcookie',
} as const;

/**
 * The files and directories (ending in /) leakless writes under /etc, each
 * because the program that reads it looks nowhere else. Everything else
 * leakless ships is a vendor file under /usr (VENDOR_LOCATIONS).
 */
export const ETC_KEPT: readonly { readonly path: string; readonly why: string }[] = [
  {
    path: '/etc/tor/torrc',
    why: "Debian's tor@default.service runs tor -f /etc/tor/torrc; the file belongs to the tor package, so the packages divert it (dpkg-divert) and the image replaces it",
  },
  { path: '/etc/tor/torrc.d/', why: 'the drop-in directory the base torrc includes last: the administrator’s own additions' },
  {
    path: '/etc/tor/torsocks.conf',
    why: 'torsocks reads only this file (or $TORSOCKS_CONF_FILE); it belongs to the torsocks package and is diverted like the torrc',
  },
  { path: PATHS.resolvConf, why: "the C library's resolver reads only /etc/resolv.conf" },
  {
    path: PATHS.clearnetResolvConf,
    why: 'state, not vendor data: the NetworkManager dispatcher rewrites it in place at run time (the bind mounts keep its inode); Tails’ path',
  },
  { path: '/etc/netns/', why: '`ip netns exec NAME` mounts /etc/netns/NAME/* over /etc; iproute2 looks nowhere else' },
  { path: '/etc/environment', why: 'pam_env reads the system-wide environment only from /etc/environment' },
  { path: '/etc/apt/sources.list', why: 'apt reads its sources only under /etc/apt' },
  { path: '/etc/apt/apt.conf.d/', why: 'apt reads its configuration only from /etc/apt/apt.conf.d' },
  { path: '/etc/hostname', why: 'systemd and hostname(1) read the static host name only from /etc/hostname (the image writes it)' },
  { path: '/etc/hosts', why: 'the C library reads static names only from /etc/hosts (the image writes it)' },
];

/** The vendor directories leakless ships files into (a file directly in one, or below). */
export const VENDOR_LOCATIONS: readonly string[] = [
  PATHS.lib,
  PATHS.share,
  PATHS.units,
  PATHS.sysctlD,
  PATHS.modprobeD,
  PATHS.udevRules,
  PATHS.nmConfD,
  PATHS.nmDispatcherD,
  PATHS.nmConnections,
];

/**
 * The host names NetworkManager never puts in a DHCP request: its "localhost"
 * names, or a name below one of them (nm_utils_is_localhost). 1.42 sends the
 * static host name (/etc/hostname) in the DHCP requests of every profile that
 * does not say dhcp-send-hostname=false, and has no global switch for that
 * (docs/threat-model.md#dhcp-hostname).
 */
export const UNSENT_HOSTNAMES = [
  'localhost',
  'localhost4',
  'localhost6',
  'localhost.localdomain',
  'localhost4.localdomain4',
  'localhost6.localdomain6',
] as const;

export function hostnameIsSent(name: string): boolean {
  const n = name.trim().toLowerCase().replace(/\.$/, '');
  return !UNSENT_HOSTNAMES.some((l) => n === l || n.endsWith(`.${l}`));
}

/** The commands leakless ships: /usr/sbin/leakless-* (PATHS.sbin) or, for one a normal user runs, /usr/bin/leakless-*. */
const COMMAND = /^\/usr\/s?bin\/leakless-[a-z0-9-]+$/;

/**
 * Why a path leakless ships is not in a Debian package location, or
 * undefined when it is: nothing under /usr/local (lintian file-in-usr-local),
 * no unit or drop-in in the administrator's /etc/systemd/system (lintian
 * systemd-service-in-odd-location), under /etc only ETC_KEPT, everything else
 * in a VENDOR_LOCATIONS directory or a leakless command.
 */
export function layoutProblem(path: string): string | undefined {
  const under = (dir: string) => path.startsWith(`${dir.replace(/\/$/, '')}/`);
  if (under('/usr/local')) return `${path}: under /usr/local, the local administrator's (lintian file-in-usr-local)`;
  if (under(PATHS.adminUnits)) return `${path}: in ${PATHS.adminUnits}, the administrator's unit directory; ship units and drop-ins in ${PATHS.units}`;
  if (under('/etc')) {
    const kept = ETC_KEPT.some((k) => (k.path.endsWith('/') ? path.startsWith(k.path) : path === k.path));
    return kept ? undefined : `${path}: under /etc, which leakless writes only where a program looks nowhere else (ETC_KEPT); ship it under /usr`;
  }
  if (COMMAND.test(path) || VENDOR_LOCATIONS.some(under)) return undefined;
  return `${path}: not a location leakless ships to (${VENDOR_LOCATIONS.join(', ')}, /usr/sbin/leakless-*, or ETC_KEPT under /etc)`;
}

/** Every layout problem of a list of shipped paths, in order. */
export function layoutProblems(paths: Iterable<string>): string[] {
  return [...paths].flatMap((p) => layoutProblem(p) ?? []);
}

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

/**
 * A vendor drop-in for a unit, whoever ships the unit:
 * /usr/lib/systemd/system/UNIT.d/FILE. An administrator's drop-in of the same
 * name in /etc/systemd/system/UNIT.d/ replaces it, one of another name adds
 * to it: checks read every directory (unitDropInDirs).
 */
export function unitDropInPath(unit: string, file: string): string {
  return `${PATHS.units}/${unit}.d/${file}`;
}

/** Every directory systemd reads drop-ins for a unit from, highest priority first (instances include their template's). */
export function unitDropInDirs(unit: string): string[] {
  const template = unit.replace(/@[^.]*\./, '@.');
  const names = template === unit ? [unit] : [unit, template];
  return UNIT_SEARCH_PATH.flatMap((d) => names.map((n) => `${d}/${n}.d`));
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

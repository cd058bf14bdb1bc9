// The kernel settings the image ships, as data: key, value, the file it goes
// in, whether it is per network namespace, and the threat it answers.
import type { Policy } from '@leakless/policy';

export interface SysctlSetting {
  readonly key: string;
  readonly value: string;
  readonly why: string;
}

export interface SysctlFile {
  /** File name under /usr/lib/sysctl.d/. */
  readonly name: string;
  readonly title: string;
  /** Policy clause (or a docs/ anchor) the file implements. */
  readonly clause: string;
  readonly settings: readonly SysctlSetting[];
}

/**
 * systemd-sysctl applies every sysctl.d file in lexical order of its name,
 * whatever its directory, and the last write wins; packaged files with letter
 * names (procps' protect-links.conf sets fs.protected_fifos = 1) sort after any
 * digit prefix. "zz-" makes the policy's values the last word.
 */
export const FILE_PREFIX = 'zz-leakless-';

const s = (key: string, value: string | number, why: string): SysctlSetting => ({ key, value: String(value), why });

/** Per-interface keys are set for `all` and `default` so interfaces created later (veths, USB NICs) inherit them. */
const allAndDefault = (family: 'ipv4' | 'ipv6', key: string, value: number, why: string): SysctlSetting[] => [
  s(`net.${family}.conf.all.${key}`, value, why),
  s(`net.${family}.conf.default.${key}`, value, why),
];

/** One sysctl.d file of the image: FILE_PREFIX + name + .conf. */
const file = (name: string, title: string, clause: string, settings: readonly SysctlSetting[]): SysctlFile => ({
  name: `${FILE_PREFIX}${name}.conf`,
  title,
  clause,
  settings,
});

export function sysctlFiles(policy: Policy): SysctlFile[] {
  const pmtud = file('pmtud', 'Packetization-layer path MTU discovery (RFC 4821)', 'docs/threat-model.md#pmtud (Tails pmtud.conf, #9268)', [
    s(
      'net.ipv4.tcp_mtu_probing',
      1,
      'The firewall drops ICMP "fragmentation needed", so classic PMTUD black-holes (it broke obfs4 in Tails); probe when a black hole is detected.',
    ),
  ]);
  const ipv6Off = file('ipv6', 'IPv6 off (the ip6 family of the firewall also drops everything: never sysctl alone)', 'ipv6.enabled', [
    s('net.ipv6.conf.all.disable_ipv6', 1, 'No IPv6 addresses, so no EUI-64 MAC leak and no IPv6 path around Tor.'),
    s('net.ipv6.conf.default.disable_ipv6', 1, 'Interfaces created later (USB NICs, veths) start without IPv6.'),
    s('net.ipv6.conf.lo.disable_ipv6', 0, 'Keep ::1 so local software that binds it does not fail oddly; the firewall still rejects IPv6.'),
    ...allAndDefault('ipv6', 'accept_ra', 0, 'A rogue router advertisement must not bring IPv6 back (Kicksecure).'),
  ]);
  const net = file(
    'net-hardening',
    'Network hardening (Kicksecure security-misc, the subset that keeps a desktop working)',
    'docs/threat-model.md#net-hardening (Kicksecure security-misc)',
    [
      s('net.ipv4.tcp_syncookies', 1, 'SYN flood protection.'),
      s('net.ipv4.tcp_rfc1337', 1, 'Drop RST in TIME-WAIT (TIME-WAIT assassination, RFC 1337).'),
      ...allAndDefault(
        'ipv4',
        'rp_filter',
        1,
        'Strict reverse-path filter: no spoofed sources, and no reply to probes over the wrong interface (CVE-2019-14899).',
      ),
      ...allAndDefault('ipv4', 'accept_redirects', 0, 'An ICMP redirect from the LAN must not reroute traffic (MITM).'),
      ...allAndDefault('ipv4', 'secure_redirects', 0, 'Not even redirects from listed gateways.'),
      ...allAndDefault('ipv6', 'accept_redirects', 0, 'Same for IPv6, should it ever come up.'),
      ...allAndDefault('ipv4', 'send_redirects', 0, 'This host is not a router; redirects would reveal its routes.'),
      ...allAndDefault('ipv4', 'shared_media', 0, 'No redirects across shared media.'),
      ...allAndDefault('ipv4', 'accept_source_route', 0, 'Source-routed packets could steer replies around the firewall design.'),
      ...allAndDefault('ipv6', 'accept_source_route', 0, 'Same for IPv6.'),
      ...allAndDefault('ipv4', 'arp_filter', 1, 'Answer ARP only on the interface that would route the reply (no cross-interface address disclosure).'),
      ...allAndDefault('ipv4', 'drop_gratuitous_arp', 1, 'Gratuitous ARP is an ARP-spoofing vector on hostile LANs.'),
      ...allAndDefault('ipv4', 'log_martians', 1, 'Log impossible source addresses (evidence of spoofing).'),
      s('net.ipv4.icmp_echo_ignore_all', 1, 'Do not answer pings: the host is not discoverable on the LAN.'),
      s('net.ipv4.icmp_ignore_bogus_error_responses', 1, 'Ignore bogus ICMP error responses (log noise, fingerprinting).'),
      s('net.ipv4.tcp_timestamps', 0, 'TCP timestamps expose the clock and uptime (clock fingerprinting, Whonix/Tails).'),
      s('net.ipv4.tcp_tw_reuse', 0, 'No TIME-WAIT socket reuse (Kicksecure).'),
    ],
  );
  const kernel = file('kernel-hardening', 'Kernel hardening (the Tails sysctl.d set)', 'docs/threat-model.md#kernel-hardening (the Tails sysctl.d set)', [
    s('net.core.bpf_jit_harden', 2, 'Constant blinding in the BPF JIT (JIT spraying).'),
    s('kernel.unprivileged_bpf_disabled', 1, 'No BPF for unprivileged users (kernel attack surface).'),
    s('kernel.sysrq', 0, 'SysRq could bypass the lock screen (Tails #20334).'),
    s('fs.protected_fifos', 2, 'No opening of other users’ FIFOs in sticky directories (spoofing).'),
    s('fs.protected_regular', 2, 'Same for regular files.'),
    s('kernel.kexec_load_disabled', 1, 'No replacing the running kernel.'),
    s('kernel.kptr_restrict', 2, 'Hide kernel pointers (KASLR bypass).'),
    s('vm.mmap_rnd_bits', 32, 'Maximum ASLR entropy for mmap.'),
    s('vm.mmap_rnd_compat_bits', 16, 'Same for 32-bit processes.'),
    s('kernel.yama.ptrace_scope', 2, 'Only root may ptrace: an exploited app cannot read another app’s memory.'),
    s('dev.tty.ldisc_autoload', 0, 'No autoloading of TTY line disciplines (n_hdlc CVE-2017-2636 class).'),
    s('vm.unprivileged_userfaultfd', 0, 'userfaultfd eases kernel exploitation (race widening).'),
    // Debian's kernel knob (bookworm's 6.1 has it, upstream kernels do not):
    // only unprivileged users lose user namespaces, root keeps them for
    // systemd's PrivateUsers=. user.max_user_namespaces is left alone: it
    // counts root's namespaces too, and 0 stops every unit with PrivateUsers=
    // (docs/threat-model.md#user-namespaces).
    s(
      'kernel.unprivileged_userns_clone',
      0,
      'No user namespaces for unprivileged users: inside its own one the desktop user is "root" for nf_tables and other namespaced code (CVE-2023-32233, CVE-2024-1086). Tor Browser’s sandbox keeps its seccomp filter without them.',
    ),
    s('fs.suid_dumpable', 0, 'No core dumps of processes that changed privileges: a crash of one must not leave its memory readable.'),
  ]);
  return [pmtud, ...(policy.document.ipv6.enabled ? [] : [ipv6Off]), net, kernel];
}

/**
 * Modules an unprivileged process could make the kernel autoload by opening a
 * socket: rare protocols with a history of kernel bugs, never needed on a
 * desktop (Tails uncommon-network-protocols.conf; Kicksecure's disable list).
 */
export const blockedNetworkModules: readonly { module: string; why: string }[] = [
  { module: 'dccp', why: 'DCCP (CVE-2017-6074)' },
  { module: 'sctp', why: 'SCTP' },
  { module: 'rds', why: 'RDS (CVE-2010-3904)' },
  { module: 'tipc', why: 'TIPC (CVE-2021-43267)' },
  { module: 'n-hdlc', why: 'HDLC line discipline (CVE-2017-2636)' },
  { module: 'ax25', why: 'amateur radio AX.25' },
  { module: 'netrom', why: 'amateur radio NET/ROM' },
  { module: 'rose', why: 'amateur radio ROSE' },
  { module: 'x25', why: 'X.25' },
  { module: 'decnet', why: 'DECnet' },
  { module: 'econet', why: 'Econet (CVE-2010-4258)' },
  { module: 'af_802154', why: 'IEEE 802.15.4' },
  { module: 'ipx', why: 'IPX' },
  { module: 'appletalk', why: 'AppleTalk' },
  { module: 'psnap', why: 'SNAP' },
  { module: 'p8022', why: 'IEEE 802.2' },
  { module: 'p8023', why: 'Novell raw 802.3' },
  { module: 'can', why: 'CAN bus' },
  { module: 'atm', why: 'ATM' },
];

/** Keys that exist per network namespace (applied and read back in a fresh netns by the tests). */
export function isPerNetns(key: string): boolean {
  return key.startsWith('net.ipv4.') || key.startsWith('net.ipv6.');
}

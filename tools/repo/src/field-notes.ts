// The hand-written half of docs/policy.md: for each policy field, what it
// means when the schema carries no .describe() text, and what each module
// (and the image builder and the lab) makes of it. The schema half (types,
// limits, enumerations, descriptions) and the default profile's values are
// read from @leakless/policy, so only this prose can go stale; a test fails
// when a schema field has no note here, or a note names a field that is gone.

export interface FieldNote {
  /** The field's meaning; only where the schema has no description of its own. */
  readonly meaning?: string;
  /** Consumer (module, image, lab, policy) → what it does with the field. */
  readonly uses?: Readonly<Record<string, string>>;
}

const LISTENER_CLIENTS = 'users (by name) allowed to connect';

export const FIELD_NOTES: Readonly<Record<string, FieldNote>> = {
  version: {
    meaning: 'The format of this document. Only 1 exists; a later format will be a new number, so an old leakless refuses a policy it cannot read.',
  },
  name: {
    meaning: 'The name of this policy (profile), in lower case.',
    uses: {
      firewall: 'named in the header of `/usr/lib/leakless/firewall.nft`',
      resolver: 'seeds the stable UUID of the wired NetworkManager profile, so two builds give the same keyfile',
      image: 'recorded in the manifest and in the self-test document the image carries',
    },
  },
  release: { meaning: 'What is being released: the version and the one timestamp every generated file carries.' },
  'release.version': {
    meaning: 'The release version, free text (shown in the boot menu, the manifest and the self-test report).',
    uses: { image: 'boot menu title, manifest, self-test document' },
  },
  'release.sourceDateEpoch': {
    meaning:
      'SOURCE_DATE_EPOCH (seconds since 1970): the mtime of every file in the tarball and the image, and the earliest time the system will ever accept as "now".',
    uses: {
      policy: 'the mtime of every entry of `dist/chroot-includes.tar`',
      htpdate:
        "`release-floor` in `/usr/lib/leakless/time.conf`: the pre-Tor check, htpdate and set-clock refuse any time before it (Tails' date-in-past); with `time.maxYearsAfterRelease`, `release-ceiling`",
      image: 'SOURCE_DATE_EPOCH of mmdebstrap, mksquashfs, the initramfs and xorriso: two builds give the same ISO',
    },
  },
  users: {
    meaning:
      'The principals: every user a rule, a listener or a tool names, with a fixed uid and gid. The image creates them with exactly these ids before any package could allocate one, so the firewall can use numbers from early boot (see [fixed uids](design.md#fixed-uids)).',
    uses: {
      firewall: 'each rule matches a numeric uid (`meta skuid`); a check proves every uid in a rule is one of these',
      image: 'created first in the base layer; the build checks `/etc/passwd` and `/etc/group` of the built root filesystem',
      lab: 'every user (plus one the policy does not name) is a principal of the probe matrix',
    },
  },
  'users[].name': {
    meaning: 'The Unix user name (Debian’s user name rules, at most 32 characters).',
    uses: { policy: 'every other field names users by this name; validation rejects a name no user has' },
  },
  'users[].uid': {
    meaning: 'The fixed numeric user id.',
    uses: { firewall: 'the `meta skuid` of every rule for this user', image: 'passed to useradd; a clash with an existing user fails the build' },
  },
  'users[].gid': {
    meaning: 'The fixed numeric id of the user’s primary group.',
    uses: { image: 'passed to groupadd/useradd', htpdate: 'the tor-daemon user’s gid lets the htpdate unit read tor’s control cookie' },
  },
  'users[].role': {
    uses: {
      firewall:
        '`tor-daemon`: new TCP and DNS out to anywhere; `clearnet`: TCP and DNS out; `desktop`: the loopback rules of `loopback`; everyone else (`netns` included) only what a listener’s `clients` or the LAN exception give',
      netns: '`netns`: the user a namespace’s applications run as (`netns.namespaces[].user`)',
      lab: 'the safety invariants know only these roles: nothing but the tor daemon and clearnet principals may reach a non-LAN address',
    },
  },
  tor: { meaning: 'The ports the system tor listens on, who may use each, and how tor itself may connect out.' },
  'tor.socksPorts': {
    meaning:
      'One SocksPort per purpose, so that streams of different purposes never share a circuit (Tails: system, apps, bulk download, browser). See [stream isolation](threat-model.md#stream-isolation).',
    uses: {
      'tor-config': 'one `SocksPort` line each in `/etc/tor/torrc`, with its isolation flags',
      firewall: 'one accept rule per client of each loopback SocksPort; the browser SocksPort is reached only from its namespace',
      crosscheck: 'tor’s own parse of the torrc must list exactly these, and the firewall must grant exactly their clients',
    },
  },
  'tor.socksPorts[].name': {
    uses: {
      'tor-config':
        'the comment above the torrc line; the first loopback SocksPort the desktop user may use goes to `/etc/environment` and torsocks, the one `_apt` may use to APT',
      htpdate: '`time.htpdate.socksPort` names one of these',
    },
  },
  'tor.socksPorts[].address': {
    uses: { 'tor-config': 'the listen address in torrc', firewall: 'the destination address of the client rules' },
  },
  'tor.socksPorts[].netns': {
    uses: {
      policy: 'the port listens on the host end of that namespace’s veth (the first address of its /30)',
      netns: 'inside the namespace, 127.0.0.1:PORT is translated to that address, the only way out of a tor-only namespace',
      firewall: 'input from the namespace’s veth is accepted on this port only',
    },
  },
  'tor.socksPorts[].port': {
    meaning: 'The TCP port.',
    uses: { 'tor-config': 'torrc', firewall: 'the client rules', netns: 'the DNAT inside the namespace' },
  },
  'tor.socksPorts[].isolation': {
    uses: {
      'tor-config': 'the flags on the torrc line; `[]` becomes `NoIsolateDestAddr NoIsolateDestPort NoIsolateClientProtocol` (Tails’ bulk download port)',
    },
  },
  'tor.socksPorts[].clients': {
    uses: {
      firewall: 'one `meta skuid` accept per client; the desktop user is refused on every loopback Tor port it is not a client of',
      crosscheck: 'the firewall’s grants, evaluated packet by packet, must equal this list',
    },
  },
  'tor.controlPort': {
    meaning: 'tor’s ControlPort. Whoever reaches it can reconfigure tor and learn where the user goes: keep its clients to root.',
    uses: {
      'tor-config':
        '`ControlPort` and `CookieAuthentication 1`; privileged local clients use tor’s unix control socket instead, which only tor can create (see [the ControlPort](threat-model.md#controlport))',
    },
  },
  'tor.controlPort.address': { meaning: 'Loopback address of the ControlPort.', uses: { 'tor-config': 'torrc', firewall: 'client rules' } },
  'tor.controlPort.port': {
    meaning: 'TCP port of the ControlPort.',
    uses: { 'tor-config': 'torrc', firewall: 'client rules, and the desktop user’s explicit refusal' },
  },
  'tor.controlPort.clients': { uses: { firewall: `${LISTENER_CLIENTS}; everyone else is refused` } },
  'tor.dnsPort': {
    meaning: 'tor’s DNSPort: the system resolver. `/etc/resolv.conf` names its address and the firewall redirects udp/53 there to this port.',
    uses: {
      'tor-config': '`DNSPort` in torrc',
      resolver: '`nameserver` in `/etc/resolv.conf`; the self-test resolves a .onion name as each client and expects an automap address back',
      firewall: 'the udp/53 redirect (`nat_output`) and the client rules',
      crosscheck: 'udp/53 to resolv.conf’s nameserver must land on the DNSPort, for its clients only',
    },
  },
  'tor.dnsPort.address': {
    meaning: 'Loopback address of the DNSPort.',
    uses: { resolver: 'the only nameserver of `/etc/resolv.conf`', firewall: 'redirect and client rules' },
  },
  'tor.dnsPort.port': {
    meaning: 'UDP port of the DNSPort (not 53: udp/53 is redirected to it).',
    uses: { 'tor-config': 'torrc', firewall: 'redirect target and client rules' },
  },
  'tor.dnsPort.clients': { uses: { firewall: `${LISTENER_CLIENTS}; a lookup by anyone else is refused before it reaches tor` } },
  'tor.transPort': {
    meaning:
      'tor’s TransPort, reached only through the automap range: a .onion name resolved by the DNSPort comes back as an automap address, and a connection to it is redirected here.',
    uses: { 'tor-config': '`TransPort` in torrc', firewall: 'the automap redirect and the client rules' },
  },
  'tor.transPort.address': { meaning: 'Loopback address of the TransPort.', uses: { 'tor-config': 'torrc', firewall: 'redirect target' } },
  'tor.transPort.port': { meaning: 'TCP port of the TransPort.', uses: { 'tor-config': 'torrc', firewall: 'redirect target and client rules' } },
  'tor.transPort.clients': { uses: { firewall: `${LISTENER_CLIENTS} (Tails: the desktop user only)` } },
  'tor.automapRange': {
    uses: {
      'tor-config': '`VirtualAddrNetworkIPv4`, with `AutomapHostsOnResolve 1` for `.onion` and `.exit`',
      firewall: 'TCP to this range is redirected to the TransPort',
      crosscheck: 'both ends of the range are redirected, the addresses just outside are not',
    },
  },
  'tor.reachablePorts': {
    uses: {
      'tor-config': '`ReachableAddresses`, `ReachableORAddresses` and `ReachableDirAddresses`',
      firewall: 'the tor daemon’s TCP egress is limited to these ports',
      crosscheck: 'tor’s effective ReachableAddresses and the firewall must agree port by port',
    },
  },
  'tor.bridges': {
    uses: {
      'tor-config':
        '`UseBridges 1`, one `Bridge` line per entry, `ClientTransportPlugin NAME exec PLUGIN` and the plugin’s Debian package; `Sandbox 0` with a plugin (tor refuses managed proxies in its sandbox)',
      firewall: 'the tor daemon’s egress follows the transport (docs/threat-model.md#bridges)',
      crosscheck: 'tor’s effective Bridge/UseBridges/ClientTransportPlugin and the firewall’s egress for the tor user must agree with the policy, both ways',
      lab: 'an obfs4 bridge in the private Tor network: bootstrap through it, capture, TLS handshake visible only for vanilla',
    },
  },
  'tor.bridges.transport': {
    uses: {
      policy: 'the plugin and its package come from the image suite (bookworm: obfs4proxy 0.0.14, snowflake-client 2.5.1); a suite without it is refused',
    },
  },
  'tor.bridges.lines': {
    uses: {
      policy: 'each line is checked: IPv4 ADDRESS:PORT, a 40-digit fingerprint, only the arguments the suite’s plugin parses (obfs4: cert, iat-mode)',
      'tor-config': 'one `Bridge` line each, normalised',
    },
  },
  'tor.bridges.pinEgress': {
    uses: { firewall: 'pinned: one accept per bridge for the tor user (TCP SYN to ADDRESS:PORT), no other TCP and no DNS for it' },
  },
  'tor.bridges.udpPorts': {
    uses: { firewall: 'one UDP accept for the tor user (these destination ports, or any); no other user gets UDP beyond the LAN' },
  },
  lan: {
    meaning:
      'The local network: which addresses count as LAN, and which services on it are refused to everyone. See [the LAN learns little](threat-model.md#lan).',
  },
  'lan.ipv4Ranges': {
    meaning: 'The IPv4 ranges that are LAN. Every user may reach them, with any protocol, except the blocked services; the internal netns range is carved out.',
    uses: { firewall: 'the LAN exception of the output chain', lab: 'the lab’s LAN subnet is chosen inside one of them' },
  },
  'lan.ipv6Ranges': {
    meaning: 'The IPv6 ranges that would be LAN. With IPv6 off nothing uses them for filtering: every IPv6 packet is refused.',
    uses: { lab: 'picks the IPv6 LAN targets of the probe matrix (which must all be refused)' },
  },
  'lan.blockedServices': {
    meaning:
      'Services refused on the LAN even though the LAN is open: DNS (a LAN resolver sees every name looked up and can reveal the public address) and NetBIOS name service (it announces the host name).',
    uses: { firewall: 'one logged reject per service, before the LAN exception', lab: 'anti-tests plant their removal and the lab must see the leak' },
  },
  'lan.blockedServices[].protocol': { meaning: 'tcp or udp.' },
  'lan.allowPublicRanges': {
    uses: {
      policy:
        'validation only: a range of `lan.ipv4Ranges` outside private, link-local and CGNAT space that is not listed here is refused (a typo such as `1.0.0.0/8`), multicast, "this network" and reserved space even when listed, and so is a range here that is not in `lan.ipv4Ranges` or needs no override (see [typos](threat-model.md#policy-typos))',
    },
  },
  'lan.blockedServices[].port': { meaning: 'The destination port.' },
  loopback: {
    meaning:
      'What the desktop user may reach on 127.0.0.1 besides the Tor ports it is a client of. See [the loopback blocklist](threat-model.md#loopback-blocklist).',
  },
  'loopback.desktopUser': {
    meaning: 'The login user (role desktop).',
    uses: {
      firewall: 'refused on every Tor TCP listener it is not a client of, then the generic loopback rule',
      netns: 'never a namespace’s user: its home, runtime directory and buses are hidden from the namespaces’ applications',
      'tor-config': 'its SocksPort goes to `/etc/environment` and torsocks',
    },
  },
  'loopback.mode': {
    meaning:
      '`blocklist` (Tails 6): the desktop user may open TCP to any 127.0.0.1 port except the Tor ports it is not a client of. `allowlist`: only `allowedTcpPorts` and its own Tor ports.',
    uses: { firewall: 'one generic accept (blocklist) or one accept per allowed port (allowlist)' },
  },
  'loopback.allowedTcpPorts': {
    meaning: 'In allowlist mode, the 127.0.0.1 TCP ports the desktop user may reach (never the ControlPort).',
    uses: { firewall: 'one accept per port, allowlist mode only' },
  },
  ipv6: { meaning: 'Whether IPv6 is on. See [no IPv6](threat-model.md#ipv6).' },
  'ipv6.enabled': {
    meaning: 'Must be false: IPv6 is off.',
    uses: {
      sysctl: '`disable_ipv6` on all and default (loopback keeps ::1), `accept_ra` off',
      firewall: 'the first rule of every chain refuses IPv6, whatever follows',
      'tor-config': '`ClientUseIPv6 0`',
      resolver: 'the wired profile has `ipv6.method=disabled`',
      netns: 'every namespace turns IPv6 off inside (a new namespace does not inherit the host’s setting)',
    },
  },
  netns: { meaning: 'Per-application network namespaces, each joined to the host by one veth pair. See [namespaces](design.md#pkg-netns).' },
  'netns.internalRange': {
    meaning:
      'The range the namespaces’ /30s are cut from. It is nobody’s LAN: no user reaches it from the host, no namespace reaches it except its own SocksPort.',
    uses: { firewall: 'refused before the LAN exception', netns: 'the clearnet namespace refuses it inside, too' },
  },
  'netns.namespaces': {
    meaning:
      'The namespaces: a tor-only one reaches one SocksPort and nothing else (Tails: the browser’s), a clearnet one is routed out through the host and reaches no local service (Tails: the Unsafe Browser’s).',
    uses: {
      netns: 'the setup script, the unit, the launcher, one nft file and one resolv.conf (or link) per namespace',
      firewall: 'input rules per veth; forward and masquerade for clearnet namespaces only',
      lab: 'each namespace is a principal of the probe matrix',
    },
  },
  'netns.namespaces[].name': {
    meaning: 'The namespace name (1–10 lower-case letters or digits: the host veth `veth-NAME` must fit in 15 bytes).',
    uses: { netns: '`ip netns` name, host veth `veth-NAME`, `/etc/netns/NAME/resolv.conf`' },
  },
  'netns.namespaces[].kind': {
    uses: {
      netns: 'tor-only: no route, only the DNAT to its SocksPort; clearnet: a default route via the host, no local services',
      firewall: 'clearnet namespaces are forwarded and masqueraded; tor-only ones never',
    },
  },
  'netns.namespaces[].subnet': {
    uses: { policy: 'the first address is the host end, the second the namespace end', netns: 'veth addresses and the expected routes of the self-test' },
  },
  time: { meaning: 'The clock. tor cannot bootstrap with a clock far off, and a wrong clock is a fingerprint. See [time](threat-model.md#time).' },
  'netns.namespaces[].user': {
    uses: {
      netns:
        '`leakless-netns-exec` runs the namespace’s applications as this user (checked by name and id), with `/home/USER` (0700, made on first use) as the only home and `/run/user/UID` as the only runtime directory they see (see [what remains shared](threat-model.md#namespace-identity))',
      image: 'created with its fixed ids like every user',
      lab: 'the adversary suite plays each attack as the application of each namespace',
    },
  },
  'netns.namespaces[].sockets': {
    uses: {
      netns:
        'bound at their own paths into the launcher’s private mount namespace, which replaces `/run` and `/tmp`: every other socket (the system and session buses, NetworkManager’s) is not there',
      lab: 'a stand-in display socket must be reachable, every other socket not (the socket inventory of the adversary suite)',
    },
  },
  'time.preTorCheck': {
    meaning:
      'The optional pre-Tor time check: one plain HTTP request that looks exactly like NetworkManager’s connectivity check, made before tor starts. It is the only request that leaves without Tor, so it exists only with consent.',
  },
  'time.preTorCheck.enabled': {
    meaning: 'Consent to the pre-Tor check. When false, no tool, unit or configuration for it is emitted.',
    uses: { htpdate: 'emits `pretor-time` and its unit', resolver: 'the unit gets the clearnet resolver', policy: 'the view `preTorCheckUnit`' },
  },
  'time.preTorCheck.user': {
    meaning: 'The user the request runs as (role clearnet).',
    uses: { htpdate: 'the request is made after dropping to this uid', firewall: 'a clearnet-role user may send TCP and DNS out' },
  },
  'time.preTorCheck.url': {
    meaning: 'The plain http:// URL requested, byte for byte like NetworkManager (Fedora’s hotspot.txt in the default profile).',
    uses: { htpdate: '`pretor-url` in time.conf' },
  },
  'time.preTorCheck.expectedBody': {
    meaning: 'The body a working connection returns; anything else means a captive portal.',
    uses: { htpdate: '`pretor-expected-body` in time.conf' },
  },
  'time.preTorCheck.timeoutSeconds': {
    meaning: 'How long the request may take.',
    uses: { htpdate: '`pretor-timeout` in time.conf; the unit’s start timeout adds the clock setter’s own limit and a margin' },
  },
  'time.maxYearsAfterRelease': {
    uses: { htpdate: '`release-ceiling` in time.conf: the pre-Tor check, each htpdate host and set-clock refuse a later time (exit 13)' },
  },
  'time.htpdate': {
    meaning: 'htpdate through Tor, after the bootstrap: the clock from the Date headers of HTTPS hosts in several pools, the median of the pools.',
  },
  'time.htpdate.user': {
    meaning: 'The user that makes the requests (never root: the fetching half parses TLS).',
    uses: { htpdate: 'the fetch drops to this uid', firewall: 'must be a client of the SocksPort below' },
  },
  'time.htpdate.socksPort': { uses: { htpdate: 'the address and port the fetches go through' } },
  'time.htpdate.perPoolFailureRatio': {
    meaning: 'A pool gives up once this share of its hosts failed (Tails: 0.34).',
    uses: { htpdate: '`htp-failure-ratio` in time.conf' },
  },
  'time.htpdate.minimumOffsetSeconds': {
    meaning: 'Offsets smaller than this leave the clock alone.',
    uses: { htpdate: '`htp-min-offset` in time.conf' },
  },
  'time.htpdate.requestTimeoutSeconds': { uses: { htpdate: '`htp-timeout` in time.conf' } },
  'time.htpdate.bootstrapTimeoutSeconds': {
    uses: { htpdate: '`htp-bootstrap-timeout` in time.conf; the unit’s TimeoutStartSec is this plus the fetch and the clock setter' },
  },
  'time.htpdate.pools': {
    meaning:
      'The pools of HTTPS hosts. One host answers per pool; every pool must answer; the median of the pools’ offsets sets the clock, so one lying pool cannot move it.',
    uses: { htpdate: 'one `htp-pool` line per pool in time.conf' },
  },
  image: { meaning: 'The Debian image around the modules.' },
  'image.suite': {
    uses: {
      image: 'mmdebstrap’s suite',
      'tor-config': 'the suites of `/etc/apt/sources.list` (fetched through Tor)',
      policy: 'another suite is refused (`wheezy`)',
    },
  },
  'image.hostname': {
    meaning: 'The host name of the live system.',
    uses: {
      image: '`/etc/hostname` and `/etc/hosts` (unless a module emits them)',
      resolver: 'static check `resolver.hostname-unsent`: NetworkManager never sends it in DHCP (docs/threat-model.md#dhcp-hostname)',
      policy: 'a name NetworkManager would send in the DHCP requests of a profile made after boot is refused (`amnesia`): `localhost` or a name below it',
    },
  },
  'image.packages': {
    meaning: 'Extra Debian packages, on top of what the modules and the live system need.',
    uses: { image: 'added to the package set of the base layer (without Recommends)' },
  },
};

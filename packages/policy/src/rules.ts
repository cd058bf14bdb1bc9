// Cross-field rules the schema cannot express. Each rule is a named function
// that pushes every problem it finds (with the path of the offending field);
// validation reports all of them at once.
import { type PolicyDocument, SUPPORTED_SUITES } from './schema.js';
import { isIPv4 } from 'node:net';
import { LOOPBACK_V4, type Cidr4, cidrWithin, cidrsOverlap, formatCidr4, hasHostBits, parseCidr4 } from './net.js';
import { bridgesRule } from './bridges.js';
import { UNSENT_HOSTNAMES, hostnameIsSent } from './names.js';

/** RFC 1918. */
const PRIVATE_V4 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'].map(parseCidr4);
/** Where a LAN can be: private, link-local (RFC 3927) and carrier-grade NAT (RFC 6598) space. */
const LAN_SPACE_V4: readonly { readonly name: string; readonly cidr: Cidr4 }[] = [
  ...PRIVATE_V4.map((cidr) => ({ name: 'private', cidr })),
  { name: 'link-local', cidr: parseCidr4('169.254.0.0/16') },
  { name: 'CGNAT', cidr: parseCidr4('100.64.0.0/10') },
];
/** Never a LAN, whatever the author acknowledges: "this network", multicast, reserved (loopback has its own message). */
const NEVER_LAN_V4: readonly { readonly name: string; readonly cidr: Cidr4 }[] = [
  { name: '"this network"', cidr: parseCidr4('0.0.0.0/8') },
  { name: 'multicast', cidr: parseCidr4('224.0.0.0/4') },
  { name: 'reserved space', cidr: parseCidr4('240.0.0.0/4') },
];
/** Unique-local and link-local IPv6. */
const LAN_SPACE_V6 = ['fc00::/7', 'fe80::/10'];

/** The 128 bits of an IPv6 address (validated by the schema) as a bigint. */
function ipv6Bits(address: string): bigint {
  const [head = '', tail] = address.split('::');
  const words = (part: string) => (part === '' ? [] : part.split(':'));
  let h = words(head);
  let t = tail === undefined ? [] : words(tail);
  const last = (t.length ? t : h).at(-1) ?? '';
  if (last.includes('.')) {
    const [a, b, c, d] = last.split('.').map(Number) as [number, number, number, number];
    const v4 = [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
    if (t.length) t = [...t.slice(0, -1), ...v4];
    else h = [...h.slice(0, -1), ...v4];
  }
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return all.reduce((acc, w) => (acc << 16n) | BigInt(Number.parseInt(w || '0', 16)), 0n);
}

/** An IPv6 CIDR lies inside another. */
function ipv6Within(inner: string, outer: string): boolean {
  const [ia = '', il = '0'] = inner.split('/');
  const [oa = '', ol = '0'] = outer.split('/');
  const prefix = Number(ol);
  if (Number(il) < prefix) return false;
  const shift = BigInt(128 - prefix);
  return ipv6Bits(ia) >> shift === ipv6Bits(oa) >> shift;
}

/**
 * Why the pre-Tor check's host is not a host on the Internet, or undefined.
 * The request runs in clear as the clearnet user: a typo that names a local
 * name or address would make it talk to the LAN (or this machine) and call
 * whatever answers "the Internet".
 */
function preTorHostProblem(host: string): string | undefined {
  if (isIPv4(host)) {
    const c = parseCidr4(`${host}/32`);
    const local = [LOOPBACK_V4, ...LAN_SPACE_V4.map((n) => n.cidr), ...NEVER_LAN_V4.map((n) => n.cidr)].find((n) => cidrWithin(c, n));
    return local ? `host ${host} is not on the Internet (inside ${formatCidr4(local)})` : undefined;
  }
  if (!host.includes('.')) return `host "${host}" is a single label, resolved on the LAN if at all`;
  const special = ['.onion', '.local', '.localhost', '.internal', '.home.arpa', '.lan'].find((x) => host.endsWith(x));
  return special ? `host "${host}" is a ${special} name, not a host on the Internet` : undefined;
}

export interface PolicyIssue {
  readonly rule: string;
  readonly path: string;
  readonly message: string;
}

type Report = (path: string, message: string) => void;
export type Rule = { readonly id: string; readonly check: (doc: PolicyDocument, report: Report) => void };

const uniqueUsers: Rule = {
  id: 'users.unique',
  check(doc, report) {
    const names = new Map<string, number>();
    const uids = new Map<number, number>();
    doc.users.forEach((u, i) => {
      const n = names.get(u.name);
      if (n !== undefined) report(`users[${i}].name`, `"${u.name}" is already defined at users[${n}]`);
      else names.set(u.name, i);
      const d = uids.get(u.uid);
      if (d !== undefined) report(`users[${i}].uid`, `uid ${u.uid} is already used by users[${d}] (${doc.users[d]!.name})`);
      else uids.set(u.uid, i);
    });
  },
};

const roles: Rule = {
  id: 'users.roles',
  check(doc, report) {
    const tor = doc.users.filter((u) => u.role === 'tor-daemon');
    if (tor.length !== 1) report('users', `exactly one user must have role tor-daemon (found ${tor.length})`);
    doc.users.forEach((u, i) => {
      if ((u.role === 'admin') !== (u.uid === 0)) report(`users[${i}].role`, 'role admin is for uid 0 and uid 0 must have role admin');
      if (u.role === 'desktop' && u.uid < 1000) report(`users[${i}].uid`, 'the desktop user must have a uid >= 1000');
      // gid 0 is root's group: a typo here hands a principal every root-group file.
      if (u.gid === 0 && u.uid !== 0) report(`users[${i}].gid`, 'gid 0 is root’s group: only root may have it');
    });
  },
};

function knownUsers(doc: PolicyDocument): Set<string> {
  return new Set(doc.users.map((u) => u.name));
}

const referencedUsersExist: Rule = {
  id: 'principals.exist',
  check(doc, report) {
    const known = knownUsers(doc);
    const checkList = (path: string, names: readonly string[]) =>
      names.forEach((n, j) => {
        if (!known.has(n)) report(`${path}[${j}]`, `unknown principal "${n}" (not in users)`);
      });
    for (const [i, s] of doc.tor.socksPorts.entries()) checkList(`tor.socksPorts[${i}].clients`, s.clients);
    for (const k of ['controlPort', 'dnsPort', 'transPort'] as const) checkList(`tor.${k}.clients`, doc.tor[k].clients);
    const single = (path: string, name: string, role: string) => {
      const u = doc.users.find((x) => x.name === name);
      if (!u) report(path, `unknown principal "${name}" (not in users)`);
      else if (u.role !== role) report(path, `"${name}" must have role ${role} (has ${u.role})`);
    };
    single('loopback.desktopUser', doc.loopback.desktopUser, 'desktop');
    if (doc.time.preTorCheck.enabled) single('time.preTorCheck.user', doc.time.preTorCheck.user, 'clearnet');
    if (!known.has(doc.time.htpdate.user)) report('time.htpdate.user', `unknown principal "${doc.time.htpdate.user}" (not in users)`);
  },
};

const namedThingsUnique: Rule = {
  id: 'names.unique',
  check(doc, report) {
    const dup = (path: string, names: readonly string[]) => {
      const seen = new Set<string>();
      names.forEach((n, i) => {
        if (seen.has(n)) report(`${path}[${i}].name`, `"${n}" is already used`);
        seen.add(n);
      });
    };
    dup(
      'tor.socksPorts',
      doc.tor.socksPorts.map((s) => s.name),
    );
    dup(
      'netns.namespaces',
      doc.netns.namespaces.map((n) => n.name),
    );
  },
};

const listenersUnique: Rule = {
  id: 'tor.ports-unique',
  check(doc, report) {
    // The browser SocksPort's address is its namespace's host address; compare
    // by namespace name there (the address is derived from the same /30).
    const seen = new Map<string, string>();
    const add = (path: string, where: string, port: number, protocol: string) => {
      const key = `${protocol}:${where}:${port}`;
      const other = seen.get(key);
      if (other) report(`${path}.port`, `${protocol} ${where}:${port} is already used by ${other}`);
      else seen.set(key, path);
    };
    for (const [i, s] of doc.tor.socksPorts.entries()) add(`tor.socksPorts[${i}]`, s.address ?? `netns:${s.netns}`, s.port, 'tcp');
    add('tor.controlPort', doc.tor.controlPort.address, doc.tor.controlPort.port, 'tcp');
    add('tor.transPort', doc.tor.transPort.address, doc.tor.transPort.port, 'tcp');
    add('tor.dnsPort', doc.tor.dnsPort.address, doc.tor.dnsPort.port, 'udp');
    // udp/53 on 127.0.0.1 is redirected to the DNSPort; a DNSPort on 53 would make the redirect a loop.
    if (doc.tor.dnsPort.port === 53) report('tor.dnsPort.port', 'must not be 53: udp/53 is redirected to the DNSPort');
  },
};

const loopbackAddresses: Rule = {
  id: 'tor.loopback-only',
  check(doc, report) {
    // Tor ports other than the namespace-facing SocksPort must stay on loopback:
    // a listener on a LAN address would be reachable by the LAN.
    const lo = (path: string, a: string | undefined) => {
      if (a !== undefined && !cidrWithin(parseCidr4(`${a}/32`), LOOPBACK_V4)) report(path, `${a} is not a loopback address`);
    };
    for (const [i, s] of doc.tor.socksPorts.entries()) lo(`tor.socksPorts[${i}].address`, s.address);
    for (const k of ['controlPort', 'dnsPort', 'transPort'] as const) lo(`tor.${k}.address`, doc.tor[k].address);
    const automap = parseCidr4(doc.tor.automapRange);
    if (!cidrWithin(automap, LOOPBACK_V4)) report('tor.automapRange', 'must lie inside 127.0.0.0/8');
    if (hasHostBits(doc.tor.automapRange)) report('tor.automapRange', 'has host bits set beyond the prefix');
    for (const k of ['controlPort', 'dnsPort', 'transPort'] as const) {
      if (cidrWithin(parseCidr4(`${doc.tor[k].address}/32`), automap)) report(`tor.${k}.address`, 'must not lie inside tor.automapRange');
    }
    // The automap range is redirected to the TransPort: a SocksPort inside it would never be reached.
    doc.tor.socksPorts.forEach((s, i) => {
      if (s.address !== undefined && cidrWithin(parseCidr4(`${s.address}/32`), automap))
        report(`tor.socksPorts[${i}].address`, 'must not lie inside tor.automapRange');
    });
  },
};

const lanRanges: Rule = {
  id: 'lan.ranges',
  check(doc, report) {
    const internal = parseCidr4(doc.netns.internalRange);
    const acknowledged = doc.lan.allowPublicRanges ?? [];
    doc.lan.ipv4Ranges.forEach((r, i) => {
      const c = parseCidr4(r);
      if (hasHostBits(r)) report(`lan.ipv4Ranges[${i}]`, `${r} has host bits set beyond the prefix`);
      // A LAN range that is (inside) the internal range would make the
      // namespaces' addresses LAN; one that contains it is fine: the firewall
      // carves the internal range out of the LAN exception.
      if (cidrWithin(c, internal)) report(`lan.ipv4Ranges[${i}]`, `${r} overlaps the internal netns range ${doc.netns.internalRange}`);
      if (cidrsOverlap(c, LOOPBACK_V4)) report(`lan.ipv4Ranges[${i}]`, `${r} overlaps loopback 127.0.0.0/8`);
      // Every user reaches the LAN in clear: a range outside the address
      // space a LAN can have is a hole to the Internet (1.0.0.0/8 for
      // 10.0.0.0/8), unless the author says so range by range.
      const never = NEVER_LAN_V4.find((n) => cidrsOverlap(c, n.cidr));
      if (never) report(`lan.ipv4Ranges[${i}]`, `${r} overlaps ${never.name} ${formatCidr4(never.cidr)}, which is never LAN`);
      else if (!LAN_SPACE_V4.some((n) => cidrWithin(c, n.cidr)) && !acknowledged.includes(r))
        report(
          `lan.ipv4Ranges[${i}]`,
          `${r} is outside private, link-local and CGNAT space (${LAN_SPACE_V4.map((n) => formatCidr4(n.cidr)).join(', ')}): every user would reach it in clear; list it in lan.allowPublicRanges if it really is LAN`,
        );
    });
    acknowledged.forEach((r, i) => {
      const path = `lan.allowPublicRanges[${i}]`;
      if (!doc.lan.ipv4Ranges.includes(r)) report(path, `${r} is not in lan.ipv4Ranges (an override for a range that is not there)`);
      else if (LAN_SPACE_V4.some((n) => cidrWithin(parseCidr4(r), n.cidr))) report(path, `${r} is private, link-local or CGNAT space: it needs no override`);
    });
    doc.lan.ipv6Ranges.forEach((r, i) => {
      if (!LAN_SPACE_V6.some((n) => ipv6Within(r, n)))
        report(`lan.ipv6Ranges[${i}]`, `${r} is outside unique-local and link-local space (${LAN_SPACE_V6.join(', ')})`);
    });
    // DNS to a LAN resolver tells it every name looked up and lets the
    // system learn its public address (docs/threat-model.md#dns).
    const blocked = doc.lan.blockedServices;
    for (const protocol of ['tcp', 'udp'] as const)
      if (!blocked.some((b) => b.protocol === protocol && b.port === 53))
        report('lan.blockedServices', `must refuse ${protocol}/53: a LAN resolver would see every name looked up`);
    const seen = new Set<string>();
    blocked.forEach((b, i) => {
      const k = `${b.protocol}/${b.port}`;
      if (seen.has(k)) report(`lan.blockedServices[${i}]`, `${k} is already listed`);
      seen.add(k);
    });
  },
};

const namespaces: Rule = {
  id: 'netns.layout',
  check(doc, report) {
    const internal = parseCidr4(doc.netns.internalRange);
    if (hasHostBits(doc.netns.internalRange)) report('netns.internalRange', 'has host bits set beyond the prefix');
    if (cidrsOverlap(internal, LOOPBACK_V4)) report('netns.internalRange', 'must not overlap loopback 127.0.0.0/8');
    else if (!PRIVATE_V4.some((p) => cidrWithin(internal, p)))
      report(
        'netns.internalRange',
        `must lie inside private space (${PRIVATE_V4.map(formatCidr4).join(', ')}): the namespaces' addresses are nobody's on the Internet`,
      );
    const subnets: { i: number; c: ReturnType<typeof parseCidr4> }[] = [];
    doc.netns.namespaces.forEach((n, i) => {
      const c = parseCidr4(n.subnet);
      const path = `netns.namespaces[${i}].subnet`;
      if (c.prefix !== 30) report(path, 'must be a /30 (host and namespace end of one veth pair)');
      if (hasHostBits(n.subnet)) report(path, `${n.subnet} has host bits set beyond the prefix`);
      if (!cidrWithin(c, internal)) report(path, `${n.subnet} is not inside netns.internalRange ${doc.netns.internalRange}`);
      const clash = subnets.find((s) => cidrsOverlap(s.c, c));
      if (clash) report(path, `${n.subnet} overlaps netns.namespaces[${clash.i}].subnet`);
      subnets.push({ i, c });
      const socks = doc.tor.socksPorts.filter((s) => s.netns === n.name);
      if (n.kind === 'tor-only' && socks.length !== 1)
        report(`netns.namespaces[${i}]`, `a tor-only namespace needs exactly one SocksPort with netns: ${n.name} (found ${socks.length})`);
      if (n.kind === 'clearnet' && socks.length > 0) report(`netns.namespaces[${i}]`, 'a clearnet namespace must not have a SocksPort');
      // Its own identity: an application that shares a uid with the desktop
      // or another namespace shares its files, its sockets and its processes.
      const u = doc.users.find((x) => x.name === n.user);
      const userPath = `netns.namespaces[${i}].user`;
      if (!u) report(userPath, `unknown principal "${n.user}" (not in users)`);
      else if (u.role !== 'netns') report(userPath, `"${n.user}" must have role netns (has ${u.role})`);
      const other = doc.netns.namespaces.findIndex((x) => x.user === n.user);
      if (other < i) report(userPath, `"${n.user}" already runs netns.namespaces[${other}]`);
      const sockets = new Set<string>();
      n.sockets.forEach((p, j) => {
        if (sockets.has(p)) report(`netns.namespaces[${i}].sockets[${j}]`, `${p} is already listed`);
        sockets.add(p);
      });
    });

    doc.tor.socksPorts.forEach((s, i) => {
      if (s.netns !== undefined && !doc.netns.namespaces.some((n) => n.name === s.netns))
        report(`tor.socksPorts[${i}].netns`, `unknown namespace "${s.netns}"`);
    });
  },
};

const htpdate: Rule = {
  id: 'time.htpdate',
  check(doc, report) {
    const h = doc.time.htpdate;
    const s = doc.tor.socksPorts.find((x) => x.name === h.socksPort);
    if (!s) report('time.htpdate.socksPort', `unknown SocksPort "${h.socksPort}"`);
    else if (!s.clients.includes(h.user)) report('time.htpdate.socksPort', `user "${h.user}" is not a client of SocksPort "${h.socksPort}"`);
  },
};

const timeTools: Rule = {
  id: 'time.tools',
  check(doc, report) {
    // The tools write the URL byte for byte into the request line and Host
    // header: printable ASCII only, and a real port.
    const url = doc.time.preTorCheck.url;
    if (!/^http:\/\/[a-z0-9.-]+(:\d{1,5})?\/[\x21-\x7e]*$/.test(url)) report('time.preTorCheck.url', 'must be printable ASCII without spaces');
    const host = /^http:\/\/([^/:]+)/.exec(url)?.[1];
    const why = host === undefined ? undefined : preTorHostProblem(host);
    if (why) report('time.preTorCheck.url', why);
    const port = /^http:\/\/[^/:]+:(\d+)\//.exec(url)?.[1];
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) report('time.preTorCheck.url', `port ${port} is not 1-65535`);
    // htpdate's network half drops to this user; root would keep every privilege while parsing TLS
    const u = doc.users.find((x) => x.name === doc.time.htpdate.user);
    if (u && u.uid === 0) report('time.htpdate.user', 'must not be root: the fetching half runs unprivileged');
  },
};

const loopbackAllowlist: Rule = {
  id: 'loopback.allowlist',
  check(doc, report) {
    // The ControlPort can reconfigure tor and deanonymise (Tails 2016); it is
    // never opened to the desktop user through the generic port list.
    doc.loopback.allowedTcpPorts.forEach((p, i) => {
      if (p === doc.tor.controlPort.port) report(`loopback.allowedTcpPorts[${i}]`, `${p} is the ControlPort`);
      // A Tor port the desktop user is not a client of (the bulk SocksPort has no isolation) is not opened by a port number either.
      const s = doc.tor.socksPorts.find((x) => x.address !== undefined && x.port === p && !x.clients.includes(doc.loopback.desktopUser));
      if (s) report(`loopback.allowedTcpPorts[${i}]`, `${p} is SocksPort "${s.name}", which ${doc.loopback.desktopUser} is not a client of`);
    });
    // Only root and the image's own services may reconfigure tor.
    doc.tor.controlPort.clients.forEach((n, i) => {
      const u = doc.users.find((x) => x.name === n);
      if (u && u.role !== 'admin' && u.role !== 'service')
        report(
          `tor.controlPort.clients[${i}]`,
          `"${n}" has role ${u.role}: the ControlPort can reconfigure tor and deanonymise, only admin and service users may be its clients`,
        );
    });
  },
};

const suite: Rule = {
  id: 'image.suite',
  check(doc, report) {
    // Every module's output is tested against one suite's programs (nft
    // 1.0.6, tor, the 6.1 kernel's sysctls): another suite is untested
    // input, an old one (wheezy) a system without security support.
    if (!(SUPPORTED_SUITES as readonly string[]).includes(doc.image.suite))
      report('image.suite', `"${doc.image.suite}" is not a suite the image is built and tested on (${SUPPORTED_SUITES.join(', ')})`);
  },
};

const hostname: Rule = {
  id: 'image.hostname',
  check(doc, report) {
    // A Wi-Fi or other profile made after boot sends it to every DHCP server
    // (docs/threat-model.md#dhcp-hostname): "amnesia" tells the LAN which
    // system this is.
    if (hostnameIsSent(doc.image.hostname))
      report(
        'image.hostname',
        `"${doc.image.hostname}" would go out in the DHCP requests of any NetworkManager profile made after boot (1.42 has no global switch): use a name NetworkManager never sends (${UNSENT_HOSTNAMES[0]}, or NAME.${UNSENT_HOSTNAMES[0]})`,
      );
  },
};

const reachablePorts: Rule = {
  id: 'tor.reachable-ports',
  check(doc, report) {
    // A duplicate is harmless to tor but means the author meant another port.
    const seen = new Set<number>();
    (doc.tor.reachablePorts ?? []).forEach((p, i) => {
      if (seen.has(p)) report(`tor.reachablePorts[${i}]`, `${p} is already listed`);
      seen.add(p);
    });
  },
};

export const rules: readonly Rule[] = [
  uniqueUsers,
  roles,
  referencedUsersExist,
  namedThingsUnique,
  listenersUnique,
  loopbackAddresses,
  lanRanges,
  namespaces,
  htpdate,
  timeTools,
  loopbackAllowlist,
  reachablePorts,
  suite,
  hostname,
  bridgesRule,
];

export function runRules(doc: PolicyDocument): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  for (const r of rules) r.check(doc, (path, message) => issues.push({ rule: r.id, path, message }));
  return issues;
}

// Cross-field rules the schema cannot express. Each rule is a named function
// that pushes every problem it finds (with the path of the offending field);
// validation reports all of them at once.
import type { PolicyDocument } from './schema.js';
import { LOOPBACK_V4, cidrWithin, cidrsOverlap, hasHostBits, parseCidr4 } from './net.js';
import { bridgesRule } from './bridges.js';

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
  },
};

const lanRanges: Rule = {
  id: 'lan.ranges',
  check(doc, report) {
    const internal = parseCidr4(doc.netns.internalRange);
    doc.lan.ipv4Ranges.forEach((r, i) => {
      const c = parseCidr4(r);
      if (hasHostBits(r)) report(`lan.ipv4Ranges[${i}]`, `${r} has host bits set beyond the prefix`);
      // A LAN range that is (inside) the internal range would make the
      // namespaces' addresses LAN; one that contains it is fine: the firewall
      // carves the internal range out of the LAN exception.
      if (cidrWithin(c, internal)) report(`lan.ipv4Ranges[${i}]`, `${r} overlaps the internal netns range ${doc.netns.internalRange}`);
      if (cidrsOverlap(c, LOOPBACK_V4)) report(`lan.ipv4Ranges[${i}]`, `${r} overlaps loopback 127.0.0.0/8`);
    });
  },
};

const namespaces: Rule = {
  id: 'netns.layout',
  check(doc, report) {
    const internal = parseCidr4(doc.netns.internalRange);
    if (hasHostBits(doc.netns.internalRange)) report('netns.internalRange', 'has host bits set beyond the prefix');
    if (cidrsOverlap(internal, LOOPBACK_V4)) report('netns.internalRange', 'must not overlap loopback 127.0.0.0/8');
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
    });
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
  bridgesRule,
];

export function runRules(doc: PolicyDocument): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  for (const r of rules) r.check(doc, (path, message) => issues.push({ rule: r.id, path, message }));
  return issues;
}

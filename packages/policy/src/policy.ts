// The validated policy and the views derived from it. Values that several
// modules need (the Tor ports with their resolved addresses, a namespace's veth
// addresses, the ports the desktop user must not reach) are computed here once,
// so no module re-derives or re-states them.
import type { Listener, Namespace, PolicyDocument, User } from './schema.js';
import { nthAddress, parseCidr4 } from './net.js';
import { CLEARNET_RESOLVER_DROPIN, PATHS, UNITS, unitDropInPath } from './names.js';
import { type TorBridges, deriveBridges } from './bridges.js';

export type TorListenerKind = 'socks' | 'control' | 'dns' | 'trans';

/** A port tor listens on, with its address resolved and its clients as users. */
export interface TorListener {
  readonly kind: TorListenerKind;
  /** socks: the SocksPort's name; other kinds: the kind itself. */
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  readonly clients: readonly User[];
  /** Set when the listener sits on a namespace's host-side veth. */
  readonly netns?: string;
  readonly isolation: readonly string[];
  /** Policy path of the clause that declares it, for comments and errors. */
  readonly clause: string;
}

export interface ResolvedNamespace extends Omit<Namespace, 'user'> {
  /** The user the namespace's applications run as (role netns): its own uid, home and runtime directory. */
  readonly user: User;
  /** Its home: a directory only it can enter, the only home its applications see. */
  readonly home: string;
  readonly hostVeth: string;
  readonly guestVeth: string;
  readonly hostAddress: string;
  readonly guestAddress: string;
  readonly prefix: number;
  /** tor-only namespaces: the SocksPort reachable from inside (via DNAT of 127.0.0.1). */
  readonly socksPort?: TorListener;
  readonly clause: string;
}

export interface Policy {
  readonly document: PolicyDocument;
  readonly name: string;
  readonly sourceDateEpoch: number;
  /** Users sorted by uid. */
  readonly users: readonly User[];
  readonly torUser: User;
  readonly desktopUser: User;
  readonly clearnetUsers: readonly User[];
  readonly torListeners: readonly TorListener[];
  readonly socksPorts: readonly TorListener[];
  readonly controlPort: TorListener;
  readonly dnsPort: TorListener;
  readonly transPort: TorListener;
  readonly automapRange: string;
  readonly lanRanges: readonly string[];
  readonly lanBlockedServices: PolicyDocument['lan']['blockedServices'];
  readonly internalRange: string;
  readonly namespaces: readonly ResolvedNamespace[];
  /** Loopback TCP ports tor listens on that the desktop user is not a client of (Tails' blocklist). */
  readonly desktopDeniedTcpPorts: readonly number[];
  /**
   * tor.reachablePorts, sorted and unique; undefined = tor may connect out to
   * any TCP port. torrc's ReachableAddresses and the firewall's exception for
   * the tor-daemon user are both generated from this one view.
   */
  readonly torReachablePorts: readonly number[] | undefined;
  /**
   * tor.bridges, parsed (undefined = no bridges): torrc's Bridge and
   * ClientTransportPlugin lines and the tor user's egress in the firewall
   * are both generated from this one view.
   */
  readonly torBridges: TorBridges | undefined;
  /** The systemd unit that runs the system tor (Debian's tor@default). */
  readonly torUnit: string;
  /** The systemd unit of the pre-Tor time check (the htpdate module ships it); undefined when the check is disabled. */
  readonly preTorCheckUnit: string | undefined;
  /**
   * The DHCP-supplied DNS servers live in this file, never in /etc/resolv.conf
   * (Tails' resolv-over-clearnet). Only `units` see it, bind-mounted read-only
   * over /etc/resolv.conf (tor: bridge and proxy names; the pre-Tor check).
   * Each clearnet namespace sees it too: the netns module links
   * /etc/netns/NAME/resolv.conf to it, which `ip netns exec` mounts.
   */
  readonly clearnetResolver: {
    readonly file: string;
    readonly units: readonly string[];
    /** Per allowed unit, the drop-in that binds the file over /etc/resolv.conf (tor-config writes tor's, the resolver module the rest). */
    readonly dropIns: readonly { readonly unit: string; readonly path: string }[];
    /** The one directive each of those drop-ins carries (read-only: a unit must not write the servers for the others). */
    readonly bind: string;
  };
  userByName(name: string): User;
}

function listener(kind: TorListenerKind, name: string, l: Listener, byName: (n: string) => User, clause: string): TorListener {
  return {
    kind,
    name,
    address: l.address,
    port: l.port,
    protocol: kind === 'dns' ? 'udp' : 'tcp',
    clients: l.clients.map(byName),
    isolation: [],
    clause,
  };
}

/** Build the derived views. Only call on a document that passed the rules. */
export function derivePolicy(doc: PolicyDocument): Policy {
  const users = [...doc.users].sort((a, b) => a.uid - b.uid);
  const byName = (n: string): User => {
    const u = users.find((x) => x.name === n);
    if (!u) throw new Error(`internal: unknown user ${n} after validation`);
    return u;
  };
  const nsDocs = doc.netns.namespaces;
  const hostAddressOf = (ns: string): string => {
    const i = nsDocs.findIndex((n) => n.name === ns);
    return nthAddress(parseCidr4(nsDocs[i]!.subnet), 1);
  };

  const socksPorts: TorListener[] = doc.tor.socksPorts.map((s, i) => ({
    kind: 'socks',
    name: s.name,
    address: s.address ?? hostAddressOf(s.netns!),
    port: s.port,
    protocol: 'tcp',
    clients: s.clients.map(byName),
    isolation: [...s.isolation],
    clause: `tor.socksPorts[${i}]`,
    ...(s.netns !== undefined ? { netns: s.netns } : {}),
  }));
  const controlPort = listener('control', 'control', doc.tor.controlPort, byName, 'tor.controlPort');
  const dnsPort = listener('dns', 'dns', doc.tor.dnsPort, byName, 'tor.dnsPort');
  const transPort = listener('trans', 'trans', doc.tor.transPort, byName, 'tor.transPort');
  const torListeners = [...socksPorts, controlPort, dnsPort, transPort];

  const namespaces: ResolvedNamespace[] = nsDocs.map((n, i) => {
    const c = parseCidr4(n.subnet);
    const socks = socksPorts.find((s) => s.netns === n.name);
    const user = byName(n.user);
    return {
      ...n,
      user,
      home: `/home/${user.name}`,
      hostVeth: `veth-${n.name}`,
      guestVeth: 'veth0',
      hostAddress: nthAddress(c, 1),
      guestAddress: nthAddress(c, 2),
      prefix: c.prefix,
      clause: `netns.namespaces[${i}]`,
      ...(socks ? { socksPort: socks } : {}),
    };
  });

  const desktopUser = byName(doc.loopback.desktopUser);
  const desktopDeniedTcpPorts = torListeners
    .filter((l) => l.protocol === 'tcp' && l.netns === undefined && !l.clients.some((c) => c.uid === desktopUser.uid))
    .map((l) => l.port)
    .sort((a, b) => a - b);

  const torUnit = UNITS.tor;
  const preTorCheckUnit = doc.time.preTorCheck.enabled ? UNITS.preTorTime : undefined;
  const clearnetUnits = [torUnit, ...(preTorCheckUnit ? [preTorCheckUnit] : [])];

  return Object.freeze({
    document: doc,
    name: doc.name,
    sourceDateEpoch: doc.release.sourceDateEpoch,
    users,
    torUser: users.find((u) => u.role === 'tor-daemon')!,
    desktopUser,
    clearnetUsers: users.filter((u) => u.role === 'clearnet'),
    torListeners,
    socksPorts,
    controlPort,
    dnsPort,
    transPort,
    automapRange: doc.tor.automapRange,
    lanRanges: [...doc.lan.ipv4Ranges],
    lanBlockedServices: doc.lan.blockedServices,
    internalRange: doc.netns.internalRange,
    namespaces,
    desktopDeniedTcpPorts,
    torReachablePorts: doc.tor.reachablePorts === undefined ? undefined : [...new Set(doc.tor.reachablePorts)].sort((a, b) => a - b),
    torBridges: deriveBridges(doc),
    torUnit,
    preTorCheckUnit,
    clearnetResolver: {
      file: PATHS.clearnetResolvConf,
      units: clearnetUnits,
      dropIns: clearnetUnits.map((unit) => ({ unit, path: unitDropInPath(unit, CLEARNET_RESOLVER_DROPIN) })),
      bind: `BindReadOnlyPaths=${PATHS.clearnetResolvConf}:${PATHS.resolvConf}`,
    },
    userByName: byName,
  });
}

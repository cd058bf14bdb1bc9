// The networked boot's lab, on the one lab topology (e2e/src/lab) and the
// private Tor network (e2e/src/tornet):
//
//   [guest] ── tap (lk-lan-X) ── lan-inet ── inet0 [lk-inet-X]
//   QEMU runs in the LAN namespace     authorities, relays, exits (tornet), their DNS;
//   dnsmasq: DHCP + the LAN's DNS      the connectivity-check host (HTTP) and its DNS;
//   control listener (UDP)             HTTPS for every htpdate pool name (test CA);
//                                      a sink that logs what reaches it (TCP, UDP)
//
// The guest's LAN is its own /24 next to the lab's (inside the policy's LAN
// ranges); the LAN namespace routes only the documentation ranges to the
// Internet namespace and has no default route, so a packet for any other
// address (the real Tor authorities, when the image boots without the test
// settings) dies in the lab. Nothing here is bridged, routed or NATed to this
// machine's uplink (docs/design.md#lab-rules).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unnamedUid } from '@leakless/firewall';
import { encodeTestSettings, type TestSettings } from '@leakless/image';
import { cidrWithin, type Policy, parseCidr4 } from '@leakless/policy';
import { intToIpv4 } from '@leakless/policy/net';
import { DAYS, makeTestCa, type TestCa } from '../../../packages/htpdate/src/test/certs.js';
import {
  addInternetHosts,
  buildLab,
  type Lab,
  type Listener,
  type ListenerEvent,
  must,
  type Proc,
  sh,
  startListener,
  startProcess,
  startServer,
  sysctl,
  teardownLab,
} from '../lab/index.js';
import { startTorNet, type TorNet } from '../tornet/index.js';
import type { Endpoint } from './classify.js';

/** The boot lab's Internet hosts (documentation ranges; the plan of all suites is in e2e/src/lab/topology.ts). */
export const BOOTLAB_HOSTS = {
  /** Stands in for the pre-Tor check's host (time.preTorCheck.url). */
  check: '198.51.100.90',
  /** The Internet DNS server the LAN resolver asks (answers the check host only). */
  dns: '198.51.100.91',
  /** HTTPS for every htpdate pool name, one certificate with all of them (test CA). */
  pools: '203.0.113.90',
  /** Where the senders aim: anything that arrives here left the guest. */
  sink: '198.51.100.10',
} as const;
/**
 * A name only the lookup through the DNSPort asks for: the exits' DNS server
 * has never seen it before, so its query there proves the lookup went through
 * Tor (a name a request already used may come from an exit's cache).
 */
export const DNSPORT_LOOKUP = { hostname: 'dnsport-lookup.tornet.test', address: '203.0.113.91' } as const;
export const SINK_PORTS = { tcp: 8080, udp: 8053 } as const;
export const CONTROL_PORT = 9999;
/**
 * Where the self-test's active probes go (leakless-selftest --destinations,
 * through the test settings): echo listeners, apart from the senders' sink,
 * so a probe's positive control is never mistaken for a sender's leak.
 */
export const PROBE_PORTS = { internet: 8081, resolver: 53 } as const;

const PRETOR_SERVERS = new URL('../time/servers/pretor-servers.mjs', import.meta.url);
const POOL_SERVERS = new URL('../time/servers/pool-servers.mjs', import.meta.url);

export interface BootLabOptions {
  readonly policy: Policy;
  readonly log?: (line: string) => void;
  /**
   * Guests that may boot at once (default 1): each gets its own tap, /24,
   * DHCP range, control listener and settings, so its capture holds its own
   * frames only and one guest's broadcasts never reach another's classifier.
   */
  readonly slots?: number;
}

/** One place on the LAN for one guest at a time. */
export interface BootSlot {
  readonly index: number;
  /** The tap QEMU attaches to (in the LAN namespace) and the lab's MAC on it. */
  readonly tap: string;
  readonly tapMac: string;
  readonly lan: GuestLan;
  /** The self-test's active probes: destination name → address and port, and their protocol. */
  readonly probes: readonly { readonly name: string; readonly protocol: 'tcp' | 'udp'; readonly address: string; readonly port: number }[];
  /** The test-only settings for a guest here (private authorities, the test CA, the agent, this slot's probe destinations). */
  readonly settings: TestSettings;
}

export interface GuestLan {
  readonly subnet: string;
  readonly router: string;
  /** A second LAN host: the self-test's LAN resolver (an echo on udp/53; the router's dnsmasq answers only DNS). */
  readonly resolver: string;
  readonly dhcpFirst: string;
  readonly dhcpLast: string;
}

export interface BootLab {
  readonly lab: Lab;
  readonly policy: Policy;
  readonly net: TorNet;
  /** The namespace QEMU runs in (every slot's tap is there). */
  readonly netns: string;
  readonly slots: readonly BootSlot[];
  readonly check: { readonly name: string; readonly address: string; readonly port: number; readonly path: string };
  readonly ca: TestCa;
  /** The desktop user and a uid the policy does not name. */
  readonly desktop: { readonly uid: number; readonly gid: number };
  readonly unnamed: { readonly uid: number; readonly gid: number };
  /** Write a settings file for QEMU's fw_cfg (the accepted one, or any bytes for refusal tests). */
  settingsFile(name: string, content: string): string;
  /** Relay ORPorts of the private network's consensus (read now). */
  relays(): Endpoint[];
  /** A fresh NIC MAC for a boot (QEMU's OUI, random). */
  nicMac(): string;
  /** What arrived at the control listener and the sink. */
  control(): readonly ListenerEvent[];
  sink(): readonly ListenerEvent[];
  /** dnsmasq's log lines (DHCP and the LAN's DNS). */
  dnsmasqLog(): readonly string[];
  poolHits(): readonly { name: string; servername: string }[];
  checkRequests(): readonly { address?: string; dns?: string; request?: string }[];
  /** tcpdump on an interface of the LAN namespace, to a file; stop() gives the records. */
  capture(iface: string, file: string): Promise<{ stop(): Promise<void> }>;
  teardown(): Promise<void>;
}

/** The /24 of slot `index`, next to the lab's LAN, inside the policy's LAN ranges and outside its internal range. */
export function guestLan(policy: Policy, labLanSubnet: string, index = 0): GuestLan {
  const net = intToIpv4(parseCidr4(labLanSubnet).base + 256 * (index + 1));
  const subnet = `${net}/24`;
  const c = parseCidr4(subnet);
  if (!policy.lanRanges.some((r) => cidrWithin(c, parseCidr4(r))) || cidrWithin(c, parseCidr4(policy.internalRange)))
    throw new Error(`boot lab: ${subnet} is not inside lan.ipv4Ranges outside ${policy.internalRange}`);
  const p = net.split('.').slice(0, 3).join('.');
  return { subnet, router: `${p}.1`, resolver: `${p}.53`, dhcpFirst: `${p}.100`, dhcpLast: `${p}.199` };
}

const hexMac = (prefix: readonly number[]) => [...prefix, ...randomBytes(6 - prefix.length)].map((b) => b.toString(16).padStart(2, '0')).join(':');

/** r lines of a consensus: nickname, address, ORPort. */
export function consensusRelays(text: string): (Endpoint & { nickname: string })[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('r '))
    .map((l) => l.split(' '))
    .filter((f) => f.length >= 9)
    .map((f) => ({ nickname: f[1]!, address: f[6]!, port: Number(f[7]) }));
}

export async function startBootLab(o: BootLabOptions): Promise<BootLab> {
  const { policy } = o;
  const log = o.log ?? (() => undefined);
  const lab = await buildLab(policy);
  const procs: Proc[] = [];
  let net: TorNet | undefined;
  let ca: TestCa | undefined;
  const slotCount = o.slots ?? 1;
  if (!Number.isInteger(slotCount) || slotCount < 1 || slotCount > 4) throw new Error(`boot lab: slots must be 1 to 4, not ${slotCount}`);
  const taps = Array.from({ length: slotCount }, (_, i) => `lktap${i}-${lab.suffix}`);
  const stopAll = async () => {
    for (const p of procs.splice(0).reverse()) await p.stop('SIGTERM', 2000).catch(() => undefined);
    await net?.stop().catch(() => undefined);
    for (const tap of taps) await sh('ip', ['-n', lab.lan, 'link', 'del', tap]);
    ca?.remove();
    await teardownLab(lab);
  };
  try {
    await ipv6Off(lab.created);
    const places = taps.map((tap, index) => ({ index, tap, tapMac: hexMac([0x02, 0x6c, 0x6b]), lan: guestLan(policy, lab.addresses.lanSubnet, index) }));
    for (const { tap, tapMac, lan } of places) {
      // A guest's side of the LAN: a tap QEMU attaches to, owned by the LAN namespace (no IPv6: ipv6Off's default).
      await must('ip', ['-n', lab.lan, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
      await must('ip', ['-n', lab.lan, 'link', 'set', tap, 'address', tapMac]);
      await must('ip', ['-n', lab.lan, 'addr', 'add', `${lan.router}/24`, 'dev', tap]);
      await must('ip', ['-n', lab.lan, 'addr', 'add', `${lan.resolver}/24`, 'dev', tap]);
      await must('ip', ['-n', lab.lan, 'link', 'set', tap, 'up']);
    }
    // the Internet namespace answers the guests' LANs through the LAN router (its default route); nothing else to add
    const v6 = await ipv6Addresses(lab.created);
    if (v6.length) throw new Error(`boot lab: IPv6 left on lab interfaces: ${v6.join('; ')}`);

    const url = new URL(policy.document.time.preTorCheck.url);
    const check = { name: url.hostname.toLowerCase(), address: BOOTLAB_HOSTS.check, port: Number(url.port || 80), path: url.pathname };
    const pools = [...new Set(policy.document.time.htpdate.pools.flat().map((h) => h.toLowerCase()))];
    await addInternetHosts(lab, [BOOTLAB_HOSTS.check, BOOTLAB_HOSTS.dns, BOOTLAB_HOSTS.pools]);

    log('boot lab: private Tor network');
    net = await startTorNet({
      lab,
      relays: 3,
      exits: 2,
      log,
      names: [...pools.map((hostname) => ({ hostname, address: BOOTLAB_HOSTS.pools })), DNSPORT_LOOKUP],
    });

    // The connectivity-check host and the Internet DNS server the LAN resolver forwards to.
    const dir = join(lab.dir, 'bootlab');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const pretorSpec = join(dir, 'pretor.json');
    writeFileSync(
      pretorSpec,
      JSON.stringify({
        dir,
        floorMs: policy.sourceDateEpoch * 1000,
        portal: BOOTLAB_HOSTS.check,
        dns: { address: BOOTLAB_HOSTS.dns, names: { [check.name]: check.address } },
        http: [{ address: check.address, port: check.port, mode: 'online' }],
      }),
    );
    procs.push(await startServer(lab, 'inet', { helper: PRETOR_SERVERS, args: [pretorSpec] }, { label: 'boot lab: check host and DNS', ready: /^ready$/ }));

    // htpdate's pools: every name on one HTTPS server, a certificate from this run's CA.
    ca = makeTestCa('leakless boot lab CA');
    const now = Date.now();
    const cert = ca.issue({ dns: pools, notBefore: now - DAYS, notAfter: now + 30 * DAYS });
    const certFile = join(dir, 'pools.pem');
    const keyFile = join(dir, 'pools.key');
    writeFileSync(certFile, cert.certPem);
    writeFileSync(keyFile, cert.keyPem, { mode: 0o600 });
    const poolSpec = join(dir, 'pools.json');
    writeFileSync(poolSpec, JSON.stringify({ dir, hosts: [{ name: 'pools', address: BOOTLAB_HOSTS.pools, certFile, keyFile, offsetMs: 0 }] }));
    procs.push(await startServer(lab, 'inet', { helper: POOL_SERVERS, args: [poolSpec] }, { label: 'boot lab: htpdate pools (HTTPS)', ready: /^ready$/ }));

    const sink: Listener = await startListener(lab, lab.inet, [
      { id: 'sink-tcp', proto: 'tcp', addr: BOOTLAB_HOSTS.sink, port: SINK_PORTS.tcp },
      { id: 'sink-udp', proto: 'udp', addr: BOOTLAB_HOSTS.sink, port: SINK_PORTS.udp },
      { id: 'probe-internet', proto: 'tcp', addr: BOOTLAB_HOSTS.sink, port: PROBE_PORTS.internet },
      { id: 'probe-internet-resolver', proto: 'udp', addr: BOOTLAB_HOSTS.sink, port: PROBE_PORTS.resolver },
    ]);
    const control: Listener = await startListener(
      lab,
      lab.lan,
      places.flatMap(({ index, lan }) => [
        { id: `control-${index}`, proto: 'udp' as const, addr: lan.router, port: CONTROL_PORT },
        { id: `probe-lan-resolver-${index}`, proto: 'udp' as const, addr: lan.resolver, port: PROBE_PORTS.resolver },
      ]),
    );
    const probesOf = (lan: GuestLan) => [
      { name: 'internet', protocol: 'tcp' as const, address: BOOTLAB_HOSTS.sink, port: PROBE_PORTS.internet },
      { name: 'internet-resolver', protocol: 'udp' as const, address: BOOTLAB_HOSTS.sink, port: PROBE_PORTS.resolver },
      { name: 'lan-resolver', protocol: 'udp' as const, address: lan.resolver, port: PROBE_PORTS.resolver },
    ];

    // DHCP and the LANs' DNS server, on the taps' router addresses only (one range per slot, each with its own router and DNS server).
    const dnsLines: string[] = [];
    procs.push(
      await startServer(
        lab,
        'lan',
        [
          'dnsmasq',
          '--keep-in-foreground',
          '--conf-file=/dev/null',
          '--no-resolv',
          '--no-hosts',
          '--bind-interfaces',
          // by address, not --interface: with an interface dnsmasq also takes every other address on it (the
          // self-test's LAN resolver on udp/53, whose probes it swallowed) and loopback; DHCP still serves each
          // range on the tap that has its router's address
          ...places.flatMap(({ index, lan }) => [
            `--listen-address=${lan.router}`,
            `--dhcp-range=set:s${index},${lan.dhcpFirst},${lan.dhcpLast},255.255.255.0,12h`,
            `--dhcp-option=tag:s${index},option:router,${lan.router}`,
            `--dhcp-option=tag:s${index},option:dns-server,${lan.router}`,
          ]),
          '--port=53',
          `--server=${BOOTLAB_HOSTS.dns}`,
          `--dhcp-leasefile=${join(dir, 'leases')}`,
          '--dhcp-authoritative',
          '--no-ping',
          '--log-queries',
          '--log-dhcp',
          '--log-facility=-',
          '--user=root',
          '--group=root',
          '--pid-file=',
        ],
        { label: 'boot lab: dnsmasq (DHCP, LAN DNS)', ready: /started, version/, onErrLine: (l) => dnsLines.push(l) },
      ),
    );

    const torrc = ['TestingTorNetwork 1', ...net.dirAuthorityLines];
    const caPem = ca.certPem;
    const slots: BootSlot[] = places.map((p) => {
      const probes = probesOf(p.lan);
      const settings: TestSettings = {
        torrc,
        ca: caPem,
        agent: true,
        destinations: Object.fromEntries(probes.map((x) => [x.name, `${x.address}:${x.port}`])),
      };
      encodeTestSettings(settings); // refused here if the image would refuse it
      return { ...p, probes, settings };
    });
    const desktop = policy.desktopUser;
    const tornet = net;
    const readJsonl = <T>(f: string): T[] => {
      try {
        return readFileSync(join(dir, f), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as T);
      } catch {
        return [];
      }
    };
    return {
      lab,
      policy,
      net,
      netns: lab.lan,
      slots,
      check,
      ca,
      desktop: { uid: desktop.uid, gid: desktop.gid },
      unnamed: { uid: unnamedUid(policy), gid: 65534 },
      settingsFile: (name, content) => {
        const p = join(dir, name);
        writeFileSync(p, content, { mode: 0o644 });
        return p;
      },
      relays: () => {
        for (const a of tornet.authorities) {
          try {
            return consensusRelays(readFileSync(join(a.dataDir, 'cached-consensus'), 'utf8'));
          } catch {
            // this authority has none yet; try the next
          }
        }
        throw new Error('boot lab: no authority of the private network holds a consensus');
      },
      nicMac: () => hexMac([0x52, 0x54, 0x00]),
      control: () => control.events().filter((e) => e.id.startsWith('control-')),
      sink: () => sink.events().filter((e) => e.id.startsWith('sink-')),
      dnsmasqLog: () => [...dnsLines],
      poolHits: () => readJsonl<{ name: string; servername: string }>('hits.jsonl'),
      checkRequests: () => readJsonl<{ address?: string; dns?: string; request?: string }>('requests.jsonl'),
      async capture(iface, file) {
        const p = await startProcess(
          ['ip', 'netns', 'exec', lab.lan, 'tcpdump', '-i', iface, '-n', '-U', '--immediate-mode', '-s', '0', '-Z', 'root', '-w', file],
          {
            label: `tcpdump on ${iface}`,
            ready: /listening on/,
            readyTimeoutMs: 10_000,
          },
        );
        return {
          stop: async () => {
            await p.stop('SIGINT', 5000);
            const err = p.stderr();
            if (/(\d+) packets? dropped by kernel/.test(err) && !/\b0 packets dropped by kernel/.test(err))
              throw new Error(`tcpdump on ${iface} dropped packets: ${err.trim()}`);
          },
        };
      },
      teardown: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/**
 * No frame the lab sends is IPv6: the guest's capture holds only what the
 * guest and the lab say to each other, and there "IPv6 must be absent" for
 * the image. The one lab topology keeps IPv6 on for the suites that prove
 * the ruleset's ip6 drop; the boot lab has no IPv6 to offer, and with it on,
 * its veths sent router solicitations and MLD reports of their own (seen in
 * the LAN uplink's capture). `all` switches every interface there now off,
 * `default` every one made later (the guests' taps).
 */
export async function ipv6Off(namespaces: readonly string[]): Promise<void> {
  for (const ns of namespaces) await sysctl(ns, { 'net.ipv6.conf.all.disable_ipv6': '1', 'net.ipv6.conf.default.disable_ipv6': '1' });
}

/** Every IPv6 address on any interface of these namespaces ("ns dev address"); empty when IPv6 is off everywhere. */
export async function ipv6Addresses(namespaces: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  for (const ns of namespaces) {
    const r = await must('ip', ['-n', ns, '-6', '-o', 'addr', 'show']);
    for (const l of r.stdout.split('\n')) {
      const m = /^\d+:\s+(\S+)\s+inet6\s+(\S+)/.exec(l);
      if (m) found.push(`${ns} ${m[1]} ${m[2]}`);
    }
  }
  return found;
}

/** Whether the lab's namespaces can route `address` anywhere (they must not, unless it is a lab address). */
export async function routeFrom(ns: string, address: string): Promise<string | undefined> {
  const r = await sh('ip', ['-n', ns, 'route', 'get', address]);
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

// A private Tor network made of Debian's tor: three directory
// authorities and a few relays, some of them exits, with TestingTorNetwork 1,
// in the lab's Internet namespace (lk-inet). Keys are generated at start with tor-gencert and live in a
// temporary directory that stop() removes: nothing is committed, nothing is
// reused between runs. The exits resolve names with a DNS server (dnsmasq) and
// reach HTTP servers that run in the same namespace, all on documentation
// addresses (198.51.100.0/24, 203.0.113.0/24).
//
// Written after reading chutney's torrc templates (torrc_templates/common.i,
// authority.i): the same TestingTorNetwork knobs, our own files.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addInternetHosts, type Lab, must as mustRun, type Proc, startServer } from '../lab/index.js';

export type Role = 'authority' | 'exit' | 'relay';

export interface TorNode {
  readonly nickname: string;
  readonly role: Role;
  readonly address: string;
  readonly orPort: number;
  readonly dirPort: number;
  /** RSA identity fingerprint (40 hex). */
  readonly fingerprint: string;
  /** Authorities: the v3 signing identity (tor-gencert's certificate fingerprint). */
  readonly v3ident?: string;
  readonly dataDir: string;
}

export interface HttpSite {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** The DNS name the lab's DNS server answers with this address. */
  readonly hostname: string;
}

export interface HttpRequestSeen {
  readonly server: string;
  readonly addr: string;
  readonly peer: string;
  readonly path: string;
}

export interface DnsQuerySeen {
  readonly type: string;
  readonly name: string;
  readonly from: string;
}

export interface TorNetOptions {
  /** The lab whose Internet namespace the network lives in; the caller made it and owns it. */
  readonly lab: Lab;
  /** Non-authority relays (>= 3 needed for paths that avoid the authorities). */
  readonly relays?: number;
  /** How many of the relays are exits (>= 1). */
  readonly exits?: number;
  readonly orPort?: number;
  readonly dirPort?: number;
  /** Progress lines (stage, elapsed). */
  readonly log?: (line: string) => void;
  /** More names the exits' DNS server answers (the caller serves them: the boot lab's htpdate pools). */
  readonly names?: readonly { readonly hostname: string; readonly address: string }[];
}

export interface TorNet {
  readonly ns: string;
  readonly authorities: readonly TorNode[];
  /** Every non-authority relay, exits included. */
  readonly relays: readonly TorNode[];
  readonly exits: readonly TorNode[];
  readonly nodes: readonly TorNode[];
  /** The lines a client needs to use this network instead of the public one. */
  readonly dirAuthorityLines: readonly string[];
  /** Every address:port a Tor client of this network may connect to. */
  readonly endpoints: readonly { address: string; port: number }[];
  readonly sites: readonly HttpSite[];
  readonly dnsServer: string;
  readonly timings: { readonly keysMs: number; readonly consensusMs: number };
  httpRequests(): readonly HttpRequestSeen[];
  dnsQueries(): readonly DnsQuerySeen[];
  /** Every line dnsmasq logged (for failure messages). */
  dnsLog(): readonly string[];
  /** The latest consensus an authority holds, as nickname → flags. */
  consensus(): Map<string, string[]>;
  /** The last lines of a node's notice log (for failure messages). */
  logTail(nickname: string, lines?: number): string;
  stop(): Promise<void>;
}

// Addresses alternate between the two documentation /24s, so a path is not
// all in one subnet (TestingTorNetwork lifts the /16 rule anyway).
const AUTHORITY_ADDRESSES = ['198.51.100.21', '203.0.113.22', '198.51.100.23'];
const RELAY_ADDRESSES = ['203.0.113.31', '198.51.100.32', '203.0.113.33', '198.51.100.34', '203.0.113.35', '198.51.100.36'];
export const LAB_SITES: readonly HttpSite[] = [
  { name: 'site-a', address: '198.51.100.80', port: 80, hostname: 'www.tornet.test' },
  { name: 'site-b', address: '203.0.113.80', port: 80, hostname: 'www2.tornet.test' },
];
const DNS_SERVER = '198.51.100.53';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HTTP_SERVER = new URL('./scripts/http-server.mjs', import.meta.url);

/** tor-gencert for an authority: identity + signing key + certificate; returns the v3 identity. */
async function authorityKeys(dataDir: string, address: string, dirPort: number): Promise<string> {
  const keys = join(dataDir, 'keys');
  mkdirSync(keys, { recursive: true, mode: 0o700 });
  await mustRun(
    'tor-gencert',
    [
      '--create-identity-key',
      '-m',
      '12',
      '-a',
      `${address}:${dirPort}`,
      '-i',
      join(keys, 'authority_identity_key'),
      '-s',
      join(keys, 'authority_signing_key'),
      '-c',
      join(keys, 'authority_certificate'),
      '--passphrase-fd',
      '0',
    ],
    { input: '\n', timeoutMs: 60_000 },
  );
  const cert = readFileSync(join(keys, 'authority_certificate'), 'utf8');
  const m = /^fingerprint ([0-9A-F]{40})$/m.exec(cert);
  if (!m) throw new Error(`tor-gencert: no fingerprint in ${join(keys, 'authority_certificate')}`);
  return m[1]!;
}

/** The relay identity (generated by tor itself on first use of the data directory). */
async function relayFingerprint(dataDir: string, orPort: number): Promise<string> {
  const { stdout: out } = await mustRun(
    'tor',
    [
      '--quiet',
      '--ignore-missing-torrc',
      '-f',
      '/dev/null',
      '--defaults-torrc',
      '/dev/null',
      '--DataDirectory',
      dataDir,
      '--ORPort',
      String(orPort),
      '--list-fingerprint',
    ],
    { timeoutMs: 60_000 },
  );
  const fp = out.trim().split('\n').pop()!.split(/\s+/).slice(1).join('');
  if (!/^[0-9A-F]{40}$/.test(fp)) throw new Error(`tor --list-fingerprint: unexpected output ${out.trim()}`);
  return fp;
}

function torrcOf(n: TorNode, dirAuthorityLines: readonly string[], resolvConf: string): string {
  const lines = [
    '# lab only: a node of the private Tor network',
    'TestingTorNetwork 1',
    `Nickname ${n.nickname}`,
    `DataDirectory ${n.dataDir}`,
    `Address ${n.address}`,
    `OutboundBindAddress ${n.address}`,
    `ORPort ${n.address}:${n.orPort}`,
    `DirPort ${n.address}:${n.dirPort}`,
    'SocksPort 0',
    // chutney's fast-bootstrap settings: no reachability self-test, guards and
    // HSDirs voted without uptime, any bandwidth is enough for Exit.
    'AssumeReachable 1',
    'PathsNeededToBuildCircuits 0.67',
    'TestingDirAuthVoteGuard *',
    'TestingDirAuthVoteHSDir *',
    'TestingMinExitFlagThreshold 0',
    'V3AuthNIntervalsValid 2',
    `Log notice file ${n.dataDir}/notice.log`,
    'SafeLogging 0',
    'ShutdownWaitLength 0',
    `ServerDNSResolvConfFile ${resolvConf}`,
    'ServerDNSDetectHijacking 0',
    ...(n.role === 'exit' ? ['ExitRelay 1', 'ExitPolicy accept *:*'] : ['ExitRelay 0', 'ExitPolicy reject *:*']),
    ...(n.role === 'authority'
      ? [
          'AuthoritativeDirectory 1',
          'V3AuthoritativeDirectory 1',
          // the shortest stable voting schedule (chutney authority.i)
          'TestingV3AuthInitialVotingInterval 10',
          'TestingV3AuthInitialVoteDelay 2',
          'TestingV3AuthInitialDistDelay 2',
          'V3AuthVotingInterval 10',
          'V3AuthVoteDelay 2',
          'V3AuthDistDelay 2',
        ]
      : []),
    ...dirAuthorityLines,
  ];
  return lines.join('\n') + '\n';
}

/** Parse a consensus document: nickname → flags. */
export function parseConsensus(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let nick: string | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('r ')) nick = line.split(' ')[1];
    else if (line.startsWith('s ') && nick) out.set(nick, line.slice(2).split(' '));
  }
  return out;
}

export async function startTorNet(opts: TorNetOptions): Promise<TorNet> {
  const { lab } = opts;
  const log = opts.log ?? (() => undefined);
  const nRelays = opts.relays ?? 3;
  const nExits = opts.exits ?? 2;
  if (nRelays < 3 || nExits < 1 || nExits > nRelays || nRelays > RELAY_ADDRESSES.length)
    throw new Error(`tornet: need 3..${RELAY_ADDRESSES.length} relays and 1..relays exits (got ${nRelays}/${nExits})`);
  const orPort = opts.orPort ?? 9001;
  const dirPort = opts.dirPort ?? 9030;
  const t0 = Date.now();
  const work = mkdtempSync(join(lab.dir, 'tornet-'));
  const procs: Proc[] = [];
  const requests: HttpRequestSeen[] = [];
  const queries: DnsQuerySeen[] = [];
  const dnsLines: string[] = [];
  let removeHosts: () => Promise<void> = async () => undefined;
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(procs.map((p) => p.stop('SIGINT', 300)));
    await removeHosts();
    rmSync(work, { recursive: true, force: true });
  };

  try {
    const spec: { nickname: string; role: Role; address: string }[] = [
      ...AUTHORITY_ADDRESSES.map((address, i) => ({ nickname: `auth${i + 1}`, role: 'authority' as const, address })),
      ...RELAY_ADDRESSES.slice(0, nRelays).map((address, i) => ({
        nickname: i < nExits ? `exit${i + 1}` : `relay${i + 1 - nExits}`,
        role: (i < nExits ? 'exit' : 'relay') as Role,
        address,
      })),
    ];
    removeHosts = await addInternetHosts(lab, [...spec.map((s) => s.address), ...LAB_SITES.map((s) => s.address), DNS_SERVER]);

    // Keys, made now, for this run only.
    const nodes: TorNode[] = await Promise.all(
      spec.map(async (s) => {
        const dataDir = join(work, s.nickname);
        mkdirSync(dataDir, { mode: 0o700 });
        const v3ident = s.role === 'authority' ? await authorityKeys(dataDir, s.address, dirPort) : undefined;
        const fingerprint = await relayFingerprint(dataDir, orPort);
        return { ...s, orPort, dirPort, fingerprint, dataDir, ...(v3ident ? { v3ident } : {}) };
      }),
    );
    const keysMs = Date.now() - t0;
    log(`tornet: keys for ${nodes.length} nodes in ${keysMs} ms`);
    const authorities = nodes.filter((n) => n.role === 'authority');
    const dirAuthorityLines = authorities.map(
      (a) => `DirAuthority ${a.nickname} orport=${a.orPort} no-v2 v3ident=${a.v3ident} ${a.address}:${a.dirPort} ${a.fingerprint}`,
    );

    // DNS for the exits: dnsmasq answering only the lab's names (no upstream, no /etc files).
    const resolvConf = join(work, 'exit-resolv.conf');
    writeFileSync(resolvConf, `nameserver ${DNS_SERVER}\n`);
    procs.push(
      await startServer(
        lab,
        'inet',
        [
          'dnsmasq',
          '--keep-in-foreground',
          '--conf-file=/dev/null',
          '--no-resolv',
          '--no-hosts',
          '--bind-interfaces',
          `--listen-address=${DNS_SERVER}`,
          '--port=53',
          '--user=root',
          '--group=root',
          '--pid-file=',
          '--log-queries',
          '--log-facility=-',
          ...[...LAB_SITES, ...(opts.names ?? [])].map((s) => `--address=/${s.hostname}/${s.address}`),
        ],
        {
          label: 'tornet: dnsmasq',
          ready: /started, version/,
          onErrLine: (l) => {
            dnsLines.push(l);
            const m = /query\[(\w+)\] (\S+) from (\S+)/.exec(l);
            // Names are compared lower-case: tor's resolver randomises the case of each query (DNS 0x20).
            if (m) queries.push({ type: m[1]!, name: m[2]!.toLowerCase(), from: m[3]! });
          },
        },
      ),
    );

    // The web servers the exits reach.
    procs.push(
      await startServer(
        lab,
        'inet',
        { helper: HTTP_SERVER, args: [JSON.stringify(LAB_SITES.map((s) => ({ name: s.name, addr: s.address, port: s.port })))] },
        {
          label: 'tornet: HTTP servers',
          ready: (l) => l === '{"ev":"ready"}',
          onLine: (l) => {
            const e = JSON.parse(l) as { ev: string } & HttpRequestSeen;
            if (e.ev === 'request') requests.push({ server: e.server, addr: e.addr, peer: e.peer, path: e.path });
          },
        },
      ),
    );

    const tStart = Date.now();
    for (const n of nodes) {
      writeFileSync(join(n.dataDir, 'torrc'), torrcOf(n, dirAuthorityLines, resolvConf));
      procs.push(
        await startServer(lab, 'inet', ['tor', '--defaults-torrc', '/dev/null', '-f', join(n.dataDir, 'torrc'), '--RunAsDaemon', '0', '--quiet'], {
          label: `tornet: ${n.nickname}`,
        }),
      );
    }

    const consensus = (): Map<string, string[]> => {
      for (const a of authorities) {
        const p = join(a.dataDir, 'cached-consensus');
        if (existsSync(p)) return parseConsensus(readFileSync(p, 'utf8'));
      }
      return new Map();
    };
    // Ready when one consensus lists every node Running and Valid, every exit
    // with the Exit flag, and every node has bootstrapped itself: an exit that
    // has no consensus yet ends the streams it is asked to open (END MISC).
    const bootstrapped = (n: TorNode) => {
      try {
        return readFileSync(join(n.dataDir, 'notice.log'), 'utf8').includes('Bootstrapped 100%');
      } catch {
        return false;
      }
    };
    const deadline = Date.now() + 120_000;
    for (;;) {
      const c = consensus();
      const ok =
        nodes.every((n) => c.get(n.nickname)?.includes('Running') && c.get(n.nickname)?.includes('Valid')) &&
        nodes.filter((n) => n.role === 'exit').every((n) => c.get(n.nickname)?.includes('Exit')) &&
        nodes.every(bootstrapped);
      if (ok) break;
      const dead = procs.find((p) => !p.running());
      if (dead) throw new Error(`tornet: ${dead.label} exited early: ${dead.stderr().trim()}; ${tail(nodes)}`);
      if (Date.now() > deadline)
        throw new Error(
          `tornet: no consensus with all ${nodes.length} nodes bootstrapped after 120 s (have ${[...c.keys()].join(', ') || 'none'}); ${tail(nodes)}`,
        );
      await sleep(500);
    }
    const consensusMs = Date.now() - tStart;
    log(`tornet: consensus with ${nodes.length} nodes, all bootstrapped, after ${consensusMs} ms`);

    return {
      ns: lab.inet,
      authorities,
      relays: nodes.filter((n) => n.role !== 'authority'),
      exits: nodes.filter((n) => n.role === 'exit'),
      nodes,
      dirAuthorityLines,
      endpoints: nodes.flatMap((n) => [
        { address: n.address, port: n.orPort },
        { address: n.address, port: n.dirPort },
      ]),
      sites: LAB_SITES,
      dnsServer: DNS_SERVER,
      timings: { keysMs, consensusMs },
      httpRequests: () => [...requests],
      dnsQueries: () => [...queries],
      dnsLog: () => [...dnsLines],
      consensus,
      logTail: (nick, lines = 10) => {
        const n = nodes.find((x) => x.nickname === nick);
        try {
          return n ? readFileSync(join(n.dataDir, 'notice.log'), 'utf8').trim().split('\n').slice(-lines).join('\n') : `no node ${nick}`;
        } catch {
          return `${nick}: no log`;
        }
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

function tail(nodes: readonly TorNode[]): string {
  return nodes
    .map((n) => {
      try {
        const lines = readFileSync(join(n.dataDir, 'notice.log'), 'utf8').trim().split('\n');
        return `${n.nickname}: ${lines.slice(-2).join(' | ')}`;
      } catch {
        return `${n.nickname}: no log`;
      }
    })
    .join('; ');
}

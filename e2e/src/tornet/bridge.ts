// A bridge of the private Tor network: Debian's tor with BridgeRelay 1 and
// Debian's obfs4proxy as its server transport, in the lab's Internet
// namespace, not published anywhere (a client knows it only from its bridge
// line). Its obfs4 bridge line is read at run time from the state directory
// obfs4proxy writes (pt_state/obfs4_bridgeline.txt): nothing is committed.
// The same relay answers a vanilla client on its ORPort, which the anti-test
// uses (a TLS ClientHello on the wire). Written after chutney's bridge.i and
// bridge-obfs4.i templates: the same options, our own files.
//
// And the lab's censor: an nftables table in the LAN router's namespace that
// drops what the sut forwards to some addresses (the relays, or the bridge),
// so a capture on the sut's uplink sees what the sut tried.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addInternetHosts, type Lab, loadNft, type Proc, parsePcap, run, startProcess, startServer } from '../lab/index.js';
import type { TorNet } from './tornet.js';

/** Next to the private network's addresses (198.51.100.21-36), in a documentation range. */
export const BRIDGE_ADDRESS = '198.51.100.37';
/** obfs4 on 443, where censored users find bridges; the relay's own ORPort stays 9001. */
export const OBFS4_PORT = 443;
export const BRIDGE_OR_PORT = 9001;

export interface Bridge {
  readonly address: string;
  readonly fingerprint: string;
  /** `obfs4 ADDRESS:443 FINGERPRINT cert=… iat-mode=0`, as a policy's tor.bridges.lines takes it. */
  readonly obfs4Line: string;
  /** `ADDRESS:9001 FINGERPRINT`: the same relay without a transport. */
  readonly vanillaLine: string;
  readonly obfs4: { readonly address: string; readonly port: number };
  readonly orPort: { readonly address: string; readonly port: number };
  readonly dataDir: string;
  /** Ms from start until the bridge had its bridge line and a consensus. */
  readonly readyMs: number;
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function torrcOf(dataDir: string, net: TorNet): string {
  return [
    '# lab only: an unpublished obfs4 bridge of the private Tor network',
    'TestingTorNetwork 1',
    'Nickname bridge1',
    `DataDirectory ${dataDir}`,
    `Address ${BRIDGE_ADDRESS}`,
    `OutboundBindAddress ${BRIDGE_ADDRESS}`,
    `ORPort ${BRIDGE_ADDRESS}:${BRIDGE_OR_PORT}`,
    'SocksPort 0',
    'BridgeRelay 1',
    'PublishServerDescriptor 0',
    'ExitRelay 0',
    'ExitPolicy reject *:*',
    'AssumeReachable 1',
    `ServerTransportPlugin obfs4 exec /usr/bin/obfs4proxy`,
    `ServerTransportListenAddr obfs4 ${BRIDGE_ADDRESS}:${OBFS4_PORT}`,
    'ExtORPort auto',
    `Log notice file ${dataDir}/notice.log`,
    'SafeLogging 0',
    'ShutdownWaitLength 0',
    ...net.dirAuthorityLines,
    '',
  ].join('\n');
}

/**
 * obfs4proxy's template line `Bridge obfs4 <IP ADDRESS>:<PORT> <FINGERPRINT> cert=… iat-mode=0`
 * → a policy bridge line for this bridge.
 */
export function obfs4LineOf(template: string, address: string, port: number, fingerprint: string): string {
  const line = template
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.startsWith('Bridge obfs4 '));
  if (!line) throw new Error(`obfs4_bridgeline.txt: no "Bridge obfs4" line in ${JSON.stringify(template.slice(0, 200))}`);
  const args = line.split(/\s+/).filter((w) => /^[a-z-]+=/.test(w));
  if (!args.some((a) => a.startsWith('cert='))) throw new Error(`obfs4_bridgeline.txt: no cert= in ${line}`);
  return ['obfs4', `${address}:${port}`, fingerprint, ...args].join(' ');
}

export async function startBridge(lab: Lab, net: TorNet, log: (l: string) => void = () => undefined): Promise<Bridge> {
  const t0 = Date.now();
  const dataDir = join(lab.dir, `tornet-bridge-${lab.suffix}`);
  mkdirSync(dataDir, { mode: 0o700 });
  const removeHosts = await addInternetHosts(lab, [BRIDGE_ADDRESS]);
  let proc: Proc | undefined;
  const logTail = (n = 10) => {
    try {
      return readFileSync(join(dataDir, 'notice.log'), 'utf8').trim().split('\n').slice(-n).join('\n');
    } catch {
      return 'no log';
    }
  };
  const stop = async () => {
    await proc?.stop('SIGINT', 3000);
    proc = undefined;
    await removeHosts();
  };
  try {
    writeFileSync(join(dataDir, 'torrc'), torrcOf(dataDir, net));
    proc = await startServer(lab, 'inet', ['tor', '--defaults-torrc', '/dev/null', '-f', join(dataDir, 'torrc'), '--RunAsDaemon', '0', '--quiet'], {
      label: 'tornet: obfs4 bridge',
    });
    const lineFile = join(dataDir, 'pt_state', 'obfs4_bridgeline.txt');
    const fpFile = join(dataDir, 'fingerprint');
    // Ready when obfs4proxy wrote its line and the bridge has a consensus to serve its clients.
    const ready = () => existsSync(lineFile) && existsSync(fpFile) && /Bootstrapped 100%/.test(logTail(200));
    const deadline = Date.now() + 90_000;
    while (!ready()) {
      if (!proc.running()) throw new Error(`tornet bridge exited: ${proc.stderr().trim()} ${logTail()}`);
      if (Date.now() > deadline) throw new Error(`tornet bridge not ready after 90 s: ${logTail()}`);
      await sleep(250);
    }
    const fingerprint = readFileSync(fpFile, 'utf8').trim().split(/\s+/)[1]!;
    const obfs4Line = obfs4LineOf(readFileSync(lineFile, 'utf8'), BRIDGE_ADDRESS, OBFS4_PORT, fingerprint);
    const readyMs = Date.now() - t0;
    log(`tornet: obfs4 bridge ${BRIDGE_ADDRESS}:${OBFS4_PORT} ready after ${readyMs} ms`);
    return {
      address: BRIDGE_ADDRESS,
      fingerprint,
      obfs4Line,
      vanillaLine: `${BRIDGE_ADDRESS}:${BRIDGE_OR_PORT} ${fingerprint}`,
      obfs4: { address: BRIDGE_ADDRESS, port: OBFS4_PORT },
      orPort: { address: BRIDGE_ADDRESS, port: BRIDGE_OR_PORT },
      dataDir,
      readyMs,
      logTail,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

export interface Censor {
  /** Drop what the sut forwards to these addresses from now on (replaces the previous list). */
  block(addresses: readonly string[]): Promise<void>;
  /** Packets the censor refused so far (its rules' counters). */
  dropped(): Promise<number>;
  stop(): Promise<void>;
}

const CENSOR_TABLE = 'lk_censor';

/** The LAN router refuses forwarded packets towards the blocked addresses, as a censoring network would. */
export async function startCensor(lab: Lab): Promise<Censor> {
  const load = async (addresses: readonly string[]) => {
    // A reset for TCP (as censors inject), so a blocked dial fails at once and tor says so; anything else dropped.
    const set = addresses.length
      ? [`meta l4proto tcp ip daddr { ${addresses.join(', ')} } counter reject with tcp reset`, `ip daddr { ${addresses.join(', ')} } counter drop`]
      : [];
    const text = [
      `table inet ${CENSOR_TABLE}`,
      `delete table inet ${CENSOR_TABLE}`,
      `table inet ${CENSOR_TABLE} {`,
      '\tchain forward {',
      '\t\ttype filter hook forward priority -10; policy accept;',
      ...set.map((r) => `\t\t${r}`),
      '\t}',
      '}',
      '',
    ].join('\n');
    const r = await loadNft(lab.lan, text);
    if (r.exitCode !== 0) throw new Error(`censor: nft failed: ${r.stderr}`);
  };
  await load([]);
  return {
    block: load,
    async dropped() {
      const r = await run(lab, 'lan', 'nft', ['list', 'table', 'inet', CENSOR_TABLE]);
      return [...r.stdout.matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    },
    async stop() {
      await run(lab, 'lan', 'nft', ['delete', 'table', 'inet', CENSOR_TABLE]);
    },
  };
}

/**
 * A TLS handshake record carrying a ClientHello at the start of a TCP
 * payload (content type 0x16, record version 3.x, handshake type 1, client
 * version 3.x): what a vanilla Tor connection opens with and what DPI keys
 * on. Four fixed bytes, so obfs4's random-looking segments match by chance
 * once in 2^32, not once in 2^16. Checked by the kernel's packet filter, so
 * it sees every outgoing segment the uplink sends.
 */
const TCP_PAYLOAD = '((tcp[12:1] & 0xf0) >> 2)';
export const TLS_CLIENT_HELLO_BPF = [
  'ip and tcp',
  `tcp[${TCP_PAYLOAD}:1] = 0x16`,
  `tcp[${TCP_PAYLOAD} + 1:1] = 0x03`,
  `tcp[${TCP_PAYLOAD} + 5:1] = 0x01`,
  `tcp[${TCP_PAYLOAD} + 9:1] = 0x03`,
].join(' and ');

export interface HelloCapture {
  /** Stop; the destinations (address:port) of every ClientHello sent. */
  stop(): Promise<string[]>;
}

export async function startHelloCapture(ns: string, iface: string): Promise<HelloCapture> {
  const chunks: Buffer[] = [];
  const proc = await startProcess(
    ['ip', 'netns', 'exec', ns, 'tcpdump', '-i', iface, '-Q', 'out', '-n', '-U', '--immediate-mode', '-Z', 'root', '-w', '-', TLS_CLIENT_HELLO_BPF],
    { label: `tcpdump (TLS ClientHello) on ${iface} in ${ns}`, ready: /listening on/, readyTimeoutMs: 5000, onData: (d) => chunks.push(d) },
  );
  return {
    async stop() {
      const r = await proc.stop('SIGINT');
      if (r.exitCode !== 0 && r.signal !== 'SIGINT') throw new Error(`tcpdump (TLS ClientHello) failed: ${proc.stderr().trim()}`);
      return parsePcap(Buffer.concat(chunks)).map((p) => `${p.dst}:${p.dport}`);
    },
  };
}

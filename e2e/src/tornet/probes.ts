// Requests and lookups as a real uid inside a namespace (setpriv, so the
// firewall's skuid matches), and the uplink capture's classification.
import { type CapturedPacket, type Lab, run, runHelper } from '../lab/index.js';

export interface Who {
  readonly ns: string;
  readonly uid: number;
  readonly gid: number;
  readonly label: string;
}

export interface HttpResult {
  readonly ok: boolean;
  /** connect: the proxy (or host) was refused/unreachable; socks: tor refused the stream; http/done. */
  readonly stage: string;
  readonly status?: number;
  readonly body?: string;
  readonly error?: string;
  readonly socksReply?: number;
}

export interface HttpRequest {
  /** Absent: straight to the host (the leak probe). */
  readonly proxy?: { readonly address: string; readonly port: number };
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly user?: string;
  readonly pass?: string;
  readonly timeoutMs?: number;
}

const SOCKS_GET = new URL('./scripts/socks-get.mjs', import.meta.url);

export async function httpAs(lab: Lab, who: Who, req: HttpRequest): Promise<HttpResult> {
  const arg = JSON.stringify({
    ...(req.proxy ? { proxy: req.proxy.address, proxyPort: req.proxy.port } : {}),
    host: req.host,
    port: req.port,
    path: req.path,
    ...(req.user !== undefined ? { user: req.user, pass: req.pass ?? 'x' } : {}),
    timeoutMs: req.timeoutMs ?? 30_000,
  });
  const r = await runHelper(lab, { ns: who.ns }, SOCKS_GET, [arg], { as: who, timeoutMs: (req.timeoutMs ?? 30_000) + 10_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as HttpResult;
  } catch {
    return { ok: false, stage: 'probe', error: `probe failed (exit ${r.exitCode}): ${r.stderr.trim() || line}` };
  }
}

export interface LookupResult {
  readonly exitCode: number;
  readonly addresses: readonly string[];
  readonly ms: number;
}

/** getent ahostsv4 as a uid, with `resolvConf` bind-mounted over /etc/resolv.conf in a private mount namespace. */
export async function lookupAs(lab: Lab, who: Who, resolvConf: string, name: string): Promise<LookupResult> {
  const r = await run(lab, { ns: who.ns }, 'getent', ['ahostsv4', name], {
    as: who,
    binds: [{ source: resolvConf, target: '/etc/resolv.conf' }],
    timeoutMs: 40_000,
  });
  const addresses = [
    ...new Set(
      r.stdout
        .split('\n')
        .map((l) => l.split(/\s+/)[0]!)
        .filter((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a)),
    ),
  ];
  return { exitCode: r.exitCode, addresses, ms: Math.round(r.ms) };
}

export type FlowClass = 'relay' | 'link-layer' | 'other';

export interface Flow {
  readonly key: string;
  readonly cls: FlowClass;
  readonly packets: number;
}

/**
 * Classify every packet the sut sent on its uplink: TCP from the sut to a
 * relay's ORPort/DirPort is "relay", non-IP frames (ARP) are "link-layer",
 * anything else (DNS, a web server, IPv6, ICMP …) is "other" = a leak.
 */
export function classify(packets: readonly CapturedPacket[], endpoints: readonly { address: string; port: number }[]): Flow[] {
  const relay = new Set(endpoints.map((e) => `${e.address}:${e.port}`));
  const flows = new Map<string, Flow>();
  for (const p of packets) {
    let key: string;
    let cls: FlowClass;
    if (p.family === 0 && p.proto === -1) {
      key = `ethertype 0x${p.ethertype.toString(16)}`;
      cls = 'link-layer';
    } else {
      const proto = p.proto === 6 ? 'tcp' : p.proto === 17 ? 'udp' : p.proto === 1 ? 'icmp' : p.proto === 58 ? 'icmpv6' : `proto ${p.proto}`;
      const ports = p.dport !== undefined ? `:${p.sport} > ${p.dst}:${p.dport}` : ` > ${p.dst}`;
      key = `${proto} ${p.src}${ports}`;
      cls = p.family === 4 && p.proto === 6 && p.dport !== undefined && relay.has(`${p.dst}:${p.dport}`) ? 'relay' : 'other';
    }
    const f = flows.get(key);
    flows.set(key, { key, cls, packets: (f?.packets ?? 0) + 1 });
  }
  return [...flows.values()];
}

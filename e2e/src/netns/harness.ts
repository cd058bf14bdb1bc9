// The netns suite on the one lab topology (e2e/src/lab), built with
// namespaces: 'script': the emitted setup script makes the policy's
// namespaces inside the sut's holder (a private /run/netns, an /etc overlay),
// byte for byte as shipped; nothing in it knows about the lab. The LAN router
// (lk-lan) and the Internet hosts (lk-inet) run the same listeners, so a probe
// is judged by the listener at its destination.
//
// What is netns-specific here: the listeners and the prober speak
// servers.mjs/probe.mjs (http and a SOCKS stand-in besides tcp/udp, and the
// ifaces/hostname probes a process inside a namespace answers).
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Policy } from '@leakless/policy';
import { buildLab, type CapturedPacket, type Ids, type Lab, runHelper, startCapture, startServer, type Where } from '../lab/index.js';

export interface Event {
  event: string;
  listener?: string;
  remote?: string;
  token?: string;
  target?: string;
  error?: string;
}

export interface Servers {
  events: Event[];
  tokens(): Set<string>;
  stop(): Promise<void>;
}

export interface ServerSpec {
  readonly kind: 'tcp' | 'udp' | 'http' | 'socks';
  readonly host: string;
  readonly port: number;
}

const SERVERS = new URL('./servers.mjs', import.meta.url);
const PROBE = new URL('./probe.mjs', import.meta.url);

/** The lab for this suite: the netns script, not the lab, makes the policy's namespaces. */
export function createLab(policy: Policy): Promise<Lab> {
  return buildLab(policy, { namespaces: 'script' });
}

/** Start listeners (servers.mjs) in `where`, optionally as a uid; resolves once all listen. */
export async function startServers(lab: Lab, where: Where, specs: readonly ServerSpec[], as?: Ids): Promise<Servers> {
  const events: Event[] = [];
  let listening = 0;
  const proc = await startServer(
    lab,
    where,
    { helper: SERVERS, args: [JSON.stringify(specs)] },
    {
      ...(as ? { as } : {}),
      // an "error" event is followed by exit 3: startServer reports it with this output
      ready: () => listening === specs.length,
      onLine: (l) => {
        const e = JSON.parse(l) as Event;
        if (e.event === 'listening') listening++;
        else if (e.event !== 'error') events.push(e);
      },
    },
  );
  return {
    events,
    tokens: () => new Set(events.map((e) => e.token ?? '').filter(Boolean)),
    stop: async () => void (await proc.stop()),
  };
}

export interface ProbeSpec {
  id: string;
  proto: 'tcp' | 'udp' | 'http' | 'socks-http' | 'dns' | 'ifaces' | 'hostname';
  host?: string;
  port?: number;
  via?: { host: string; port: number };
}

export interface ProbeResult {
  id: string;
  outcome: string;
  body?: string;
  detail?: string;
}

/** Where a batch of probes runs: a place in the lab, as a uid, or through a launcher (`leakless-netns-exec tbb --`). */
export interface From {
  readonly where: Where;
  readonly as?: Ids;
  readonly via?: readonly string[];
}

/** Run a batch of probes (probe.mjs, staged) from `from`. */
export async function probe(lab: Lab, from: From, probes: readonly ProbeSpec[]): Promise<ProbeResult[]> {
  if (probes.length === 0) return [];
  const r = await runHelper(lab, from.where, PROBE, [JSON.stringify(probes)], {
    ...(from.as ? { as: from.as } : {}),
    ...(from.via ? { via: from.via } : {}),
    timeoutMs: 20_000,
  });
  if (r.exitCode !== 0) throw new Error(`probe failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ProbeResult[];
}

/** A unique token for a probe, so a listener's log says which probe arrived. */
export function token(label: string): string {
  return `${label}-${randomBytes(3).toString('hex')}`;
}

/**
 * What applications on the sut sent out of its uplink (the lab's capture,
 * -Q out). The kernel's own IPv6 neighbour discovery and multicast listener
 * reports, and ARP, are not traffic anything sent.
 */
export async function capture(lab: Lab): Promise<{ stop(): Promise<CapturedPacket[]> }> {
  const c = await startCapture(lab.sut, lab.uplink, { direction: 'out' });
  return {
    async stop() {
      await sleep(300);
      return (await c.stop()).filter((p) => p.ethertype !== 0x0806 && p.proto !== 58 && !(p.family === 6 && p.dst.toLowerCase().startsWith('ff')));
    },
  };
}

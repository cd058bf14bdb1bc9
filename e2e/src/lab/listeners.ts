// Listeners: TCP/UDP endpoints in a namespace that log every arrival (the
// "observed at the listener" half of each probe's verdict). One python process
// per namespace serves all its endpoints.
import { startServer } from './exec.js';
import type { Lab } from './topology.js';

export interface ListenerSpec {
  readonly id: string;
  readonly proto: 'tcp' | 'udp';
  /** Bind address; "::" takes IPv4 and IPv6. */
  readonly addr: string;
  readonly port: number;
  /** Join this IPv4 multicast group on iface. */
  readonly group?: string;
  readonly iface?: string;
}

export interface ListenerEvent {
  readonly ev: 'accept' | 'data' | 'dgram';
  readonly id: string;
  readonly peer: string;
  readonly port: number;
  readonly token?: string;
}

export interface Listener {
  readonly ns: string;
  readonly specs: readonly ListenerSpec[];
  /** Every event so far. */
  events(): readonly ListenerEvent[];
  stop(): Promise<void>;
}

const LISTENER = new URL('./py/listener.py', import.meta.url);

/** The listener in lab namespace `ns`, ready once every endpoint is bound; teardownLab stops it too. */
export async function startListener(lab: Lab, ns: string, specs: readonly ListenerSpec[], readyTimeoutMs = 5000): Promise<Listener> {
  const events: ListenerEvent[] = [];
  let bound = false;
  const proc = await startServer(
    lab,
    { ns },
    { helper: LISTENER, args: [JSON.stringify(specs)] },
    {
      label: `listener in ${ns}`,
      readyTimeoutMs,
      ready: () => bound,
      onLine: (line) => {
        const e = JSON.parse(line) as ListenerEvent | { ev: 'ready' };
        if (e.ev === 'ready') bound = true;
        else events.push(e as ListenerEvent);
      },
    },
  );
  return {
    ns,
    specs,
    events: () => events,
    stop: async () => {
      await proc.stop('SIGTERM');
    },
  };
}

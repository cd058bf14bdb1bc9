// Listeners: TCP/UDP endpoints in a namespace that log every arrival (the
// "observed at the listener" half of each probe's verdict). One python process
// per namespace serves all its endpoints.
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';

export const PYTHON = '/usr/bin/python3'; // not a per-user shim: probes run as other uids (build-toolchain §7.4)

/**
 * Copy the python helpers somewhere every uid can read them (the work tree
 * may not be readable by the uids the probes run as).
 */
export function installScripts(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'leakless-lab-'));
  chmodSync(dir, 0o755);
  for (const f of ['probe.py', 'listener.py']) {
    const to = join(dir, f);
    copyFileSync(new URL(`./py/${f}`, import.meta.url), to);
    chmodSync(to, 0o644);
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

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

export async function startListener(ns: string, specs: readonly ListenerSpec[], scriptsDir: string, readyTimeoutMs = 5000): Promise<Listener> {
  const child: ResultPromise = execa('ip', ['netns', 'exec', ns, PYTHON, '-I', join(scriptsDir, 'listener.py'), JSON.stringify(specs)], {
    reject: false,
    buffer: false,
    stdin: 'ignore',
  });
  const events: ListenerEvent[] = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`listener in ${ns} not ready after ${readyTimeoutMs} ms: ${stderr.trim()}`)), readyTimeoutMs);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as ListenerEvent | { ev: 'ready' };
      if (e.ev === 'ready') {
        clearTimeout(timer);
        resolve();
      } else events.push(e as ListenerEvent);
    });
    void child.then((r) => {
      clearTimeout(timer);
      reject(new Error(`listener in ${ns} exited (${r.exitCode}): ${stderr.trim()}`));
    });
  });
  try {
    await ready;
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return {
    ns,
    specs,
    events: () => events,
    stop: async () => {
      child.kill('SIGTERM');
      await child;
    },
  };
}

// The networked lab boot, QEMU side: the same machine as `leakless boot`
// (qemuArgs) plus a virtio NIC on a tap inside the lab's LAN namespace (QEMU
// runs in that namespace, so the tap and every packet stay in the lab), the
// test-only settings as a fw_cfg file, the lab agent's virtio-serial port and
// a QMP socket that pulls the virtual cable. The lab itself (namespaces,
// DHCP, the private Tor network, captures) is e2e/src/bootlab's.
//
// Times: everything is kept on the host's clock (ms since QEMU started), so
// a packet in the capture, an agent reply and a journal line of the guest
// fall on one timeline. Guest times (uptime, journal monotonic stamps) are
// mapped with the offset seen on the agent's messages.
import { copyFile, mkdir, mkdtemp, readFile, stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { formatDuration, type Progress } from '@leakless/debos-ts';
import { parseResultLine, type SelftestReport } from '@leakless/selftest';
import { type Firmware, OVMF_VARS, qemuArgs, STALL_LIMIT_MS, tailOf } from './boot.js';
import type { AgentEvent, AgentReply, AgentRequest } from './lab-agent.js';

export interface LabBootOptions {
  readonly iso: string;
  readonly firmware: Firmware;
  readonly accel: 'kvm' | 'tcg';
  /** The network namespace QEMU runs in (the lab's LAN), where the tap exists. */
  readonly netns: string;
  readonly tap: string;
  /** The NIC's own MAC (what the classifier compares the LAN's view with). */
  readonly mac: string;
  /** The fw_cfg test-settings file; absent = a boot as on real hardware, as far as settings go. */
  readonly settingsFile?: string;
  readonly memoryMb?: number;
  readonly cpus?: number;
  /**
   * false: no self-test port, so the image's self-test does not run. A boot
   * that proves something else (a refused setting, a corrupted ruleset) does
   * not spend a TCG core on ~140 assertions it does not read.
   */
  readonly selftest?: boolean;
  /** Stop when neither the serial console nor the agent said anything this long. */
  readonly stallMs?: number;
  /** Hard limit for the whole boot. */
  readonly timeoutMs: number;
  readonly logDir?: string;
  readonly qemu?: string;
  readonly progress?: Progress;
}

export interface TimedEvent {
  /** Host ms since QEMU started. */
  readonly at: number;
  readonly event: AgentEvent;
}

export interface LabBoot {
  readonly logDir: string;
  /** Host epoch ms when QEMU was started: time zero of this boot. */
  readonly startedAt: number;
  /** ms since start. */
  now(): number;
  /** Wait for the agent's hello (it runs only when accepted settings asked for it). */
  hello(timeoutMs: number): Promise<TimedEvent>;
  /** One agent command; rejects on an error reply or no reply in time. */
  request<T = unknown>(req: AgentRequest, timeoutMs: number): Promise<{ readonly result: T; readonly sentAt: number; readonly at: number }>;
  events(): readonly TimedEvent[];
  /** Guest seconds since boot (uptime, journal monotonic) → host ms since QEMU started, or undefined before the agent spoke. */
  guestToHost(guestSeconds: number): number | undefined;
  /** The virtual cable (QMP set_link). */
  setLink(up: boolean): Promise<void>;
  serial(): Promise<string>;
  /** Serial lines with the host time they were first seen (polled every 250 ms). */
  serialLines(): readonly { readonly at: number; readonly line: string }[];
  waitSerial(re: RegExp, timeoutMs: number): Promise<{ readonly at: number; readonly line: string }>;
  selftest(): Promise<SelftestReport | undefined>;
  waitSelftest(timeoutMs: number): Promise<{ readonly at: number; readonly report: SelftestReport }>;
  /** Resolves when QEMU exits (the guest powered off, or it was stopped). */
  exited(): Promise<{ readonly at: number; readonly code?: number; readonly signal?: string; readonly reason?: string }>;
  running(): boolean;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A unix socket QEMU listens on: connect once it exists. */
async function connectUnix(path: string, untilMs: number): Promise<Socket> {
  for (;;) {
    const s = await new Promise<Socket | undefined>((resolve) => {
      const c = connect(path);
      c.once('connect', () => resolve(c));
      c.once('error', () => resolve(undefined));
    });
    if (s) return s;
    if (Date.now() > untilMs) throw new Error(`no QEMU socket at ${path}`);
    await sleep(100);
  }
}

export async function startLabBoot(o: LabBootOptions): Promise<LabBoot> {
  const logDir = o.logDir ?? (await mkdtemp(join(tmpdir(), `lk-labboot-${o.firmware}-`)));
  await mkdir(logDir, { recursive: true });
  const serialLog = join(logDir, 'serial.log');
  const resultFile = join(logDir, 'result.txt');
  const agentSocket = join(logDir, 'agent.sock');
  const qmpSocket = join(logDir, 'qmp.sock');
  let ovmfVars: string | undefined;
  if (o.firmware === 'uefi') {
    ovmfVars = join(logDir, 'OVMF_VARS.fd');
    await copyFile(OVMF_VARS, ovmfVars);
  }
  const args = qemuArgs({
    firmware: o.firmware,
    iso: o.iso,
    accel: o.accel,
    memoryMb: o.memoryMb ?? 2048,
    cpus: o.cpus ?? 2,
    serialLog,
    ...(o.selftest === false ? {} : { resultFile }),
    ...(ovmfVars ? { ovmfVars } : {}),
    lab: { tap: o.tap, mac: o.mac, agentSocket, qmpSocket, ...(o.settingsFile ? { fwCfgFile: o.settingsFile } : {}) },
  });
  const startedAt = Date.now();
  const now = () => Date.now() - startedAt;
  o.progress?.stage(`${o.firmware}: lab boot (${o.accel}, tap ${o.tap} in ${o.netns})`);
  const qemu = execa('ip', ['netns', 'exec', o.netns, o.qemu ?? 'qemu-system-x86_64', ...args], {
    reject: false,
    stdin: 'ignore',
    all: true,
    timeout: o.timeoutMs,
    forceKillAfterDelay: 5000,
  });
  let exit: { at: number; code?: number; signal?: string; reason?: string } | undefined;
  let stopReason: string | undefined;
  const exitedP = qemu.then((r) => {
    exit = {
      at: now(),
      ...(r.exitCode !== undefined ? { code: r.exitCode } : {}),
      ...(r.signal ? { signal: r.signal } : {}),
      ...(stopReason || r.timedOut ? { reason: stopReason ?? `no end within ${formatDuration(o.timeoutMs)}` } : {}),
    };
    return exit;
  });
  const qemuDied = exitedP.then((e) => {
    throw new Error(`QEMU exited (${e.code ?? e.signal})${e.reason ? `: ${e.reason}` : ''}; ${tailOf(qemuOutput(), 3).join(' | ')}`);
  });
  qemuDied.catch(() => undefined);
  const qemuOutput = () => String((qemu as unknown as { all?: string }).all ?? '');

  // ---- the agent: one line per message; replies by id, everything else an event
  const events: TimedEvent[] = [];
  const pending = new Map<number, { resolve: (r: AgentReply & { at: number }) => void }>();
  let offset: number | undefined; // host ms − guest ms, the smallest seen (least delayed message)
  const learn = (guestSeconds: unknown, at: number) => {
    if (typeof guestSeconds !== 'number') return;
    const d = at - guestSeconds * 1000;
    offset = offset === undefined ? d : Math.min(offset, d);
  };
  let lastAgent = 0;
  const agentP = connectUnix(agentSocket, Date.now() + 30_000).then((sock) => {
    createInterface({ input: sock }).on('line', (line) => {
      const at = now();
      lastAgent = at;
      let m: (AgentReply & { ev?: undefined }) | AgentEvent;
      try {
        m = JSON.parse(line) as AgentReply | AgentEvent;
      } catch {
        events.push({ at, event: { ev: 'error', error: `not JSON from the agent: ${line.slice(0, 200)}` } });
        return;
      }
      if ('ev' in m && m.ev) {
        if (m.ev === 'hello') learn(m.uptime, at);
        events.push({ at, event: m });
        return;
      }
      const r = m as AgentReply;
      learn((r.result as { uptime?: unknown } | undefined)?.uptime, at);
      pending.get(r.id)?.resolve({ ...r, at });
      pending.delete(r.id);
    });
    return sock;
  });
  agentP.catch(() => undefined);
  let nextId = 1;

  // ---- serial console, polled: lines with the time first seen; the stall watch
  const lines: { at: number; line: string }[] = [];
  let serialText = '';
  let lastSerial = 0;
  const stallMs = o.stallMs ?? STALL_LIMIT_MS;
  const poll = (async () => {
    let seen = -1;
    while (!exit) {
      const size = await stat(serialLog).then(
        (s) => s.size,
        () => 0,
      );
      if (size !== seen) {
        seen = size;
        lastSerial = now();
        serialText = await readFile(serialLog, 'utf8').catch(() => serialText);
        const all = tailOf(serialText, Number.MAX_SAFE_INTEGER);
        for (const l of all.slice(lines.length)) {
          lines.push({ at: lastSerial, line: l });
          o.progress?.line(l);
        }
      }
      if (now() - Math.max(lastSerial, lastAgent) > stallMs && !exit) {
        stopReason = `stopped: neither the serial console nor the agent said anything for ${formatDuration(stallMs)}`;
        qemu.kill('SIGTERM');
      }
      await sleep(250);
    }
  })();

  const qmp = async (command: Record<string, unknown>) => {
    const sock = await connectUnix(qmpSocket, Date.now() + 10_000);
    const rl = createInterface({ input: sock });
    const replies: Record<string, unknown>[] = [];
    const next = () =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('QMP: no answer in 10 s')), 10_000);
        const check = () => {
          const r = replies.find((x) => 'return' in x || 'error' in x || 'QMP' in x);
          if (r) {
            replies.splice(replies.indexOf(r), 1);
            clearTimeout(t);
            rl.off('line', onLine);
            resolve(r);
          }
        };
        const onLine = (l: string) => {
          replies.push(JSON.parse(l) as Record<string, unknown>);
          check();
        };
        rl.on('line', onLine);
        check();
      });
    try {
      await next(); // greeting
      sock.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
      await next();
      sock.write(`${JSON.stringify(command)}\n`);
      const r = await next();
      if ('error' in r) throw new Error(`QMP ${JSON.stringify(command)}: ${JSON.stringify(r.error)}`);
    } finally {
      rl.close();
      sock.destroy();
    }
  };

  const boot: LabBoot = {
    logDir,
    startedAt,
    now,
    async hello(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const h = events.find((e) => e.event.ev === 'hello');
        if (h) return h;
        if (exit) throw new Error(`QEMU exited before the lab agent said hello (${exit.code ?? exit.signal})`);
        if (Date.now() > deadline) throw new Error(`the lab agent did not say hello within ${formatDuration(timeoutMs)}`);
        await sleep(200);
      }
    },
    async request<T>(req: AgentRequest, timeoutMs: number) {
      const sock = await Promise.race([agentP, qemuDied]);
      const id = nextId++;
      const sentAt = now();
      const reply = new Promise<AgentReply & { at: number }>((resolve, reject) => {
        pending.set(id, { resolve });
        setTimeout(() => reject(new Error(`the lab agent did not answer ${req.op} within ${formatDuration(timeoutMs)}`)), timeoutMs);
      });
      sock.write(`${JSON.stringify({ ...req, id })}\n`);
      const r = await Promise.race([reply, qemuDied]);
      if (!r.ok) throw new Error(`lab agent: ${req.op}: ${r.error}`);
      return { result: r.result as T, sentAt, at: r.at };
    },
    events: () => [...events],
    guestToHost: (s) => (offset === undefined ? undefined : Math.round(s * 1000 + offset)),
    setLink: (up) => qmp({ execute: 'set_link', arguments: { name: 'lknet', up } }),
    serial: async () => readFile(serialLog, 'utf8').catch(() => ''),
    serialLines: () => [...lines],
    async waitSerial(re, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const l = lines.find((x) => re.test(x.line));
        if (l) return l;
        if (exit) throw new Error(`QEMU exited before the console printed ${re}`);
        if (Date.now() > deadline)
          throw new Error(`the console did not print ${re} within ${formatDuration(timeoutMs)}; last: ${lines.at(-1)?.line ?? 'nothing'}`);
        await sleep(250);
      }
    },
    selftest: async () => parseResultLine(await readFile(resultFile, 'utf8').catch(() => '')),
    async waitSelftest(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const report = parseResultLine(await readFile(resultFile, 'utf8').catch(() => ''));
        if (report) return { at: now(), report };
        if (exit) throw new Error('QEMU exited before the self-test reported');
        if (Date.now() > deadline) throw new Error(`no self-test result within ${formatDuration(timeoutMs)}`);
        await sleep(500);
      }
    },
    exited: () => exitedP,
    running: () => !exit,
    async stop() {
      if (!exit) {
        stopReason ??= 'stopped by the lab';
        qemu.kill('SIGTERM');
      }
      await exitedP;
      await poll;
      (await agentP.catch(() => undefined))?.destroy();
    },
  };
  return boot;
}

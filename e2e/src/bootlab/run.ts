// One networked boot of the image in the boot lab: the capture on the tap
// from before QEMU starts until after it exits (firmware, DHCP, the pre-Tor
// check, the Tor bootstrap, htpdate, the requests, shutdown), a second
// capture on the LAN namespace's way to the Internet (what got past the
// LAN), windows with their own captures for the fail-closed scenarios, and
// the classification of all of it on one timeline (host ms since QEMU
// started).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentStatus, Firmware, LabBoot, SenderResult, SenderSpec } from '@leakless/image';
import { encodeTestSettings, startLabBoot } from '@leakless/image';
import type { Progress } from '@leakless/debos-ts';
import { pcapRecords } from '../lab/index.js';
import { type Classification, type ClassifiedPacket, type ClassifierFacts, classify, type Endpoint } from './classify.js';
import { BOOTLAB_HOSTS, type BootLab, type BootSlot, CONTROL_PORT, SINK_PORTS } from './lab.js';

export type SettingsChoice = { readonly kind: 'lab' } | { readonly kind: 'absent' } | { readonly kind: 'raw'; readonly content: string };

export interface RunOptions {
  readonly bl: BootLab;
  readonly name: string;
  readonly iso: string;
  readonly firmware: Firmware;
  readonly accel: 'kvm' | 'tcg';
  readonly settings: SettingsChoice;
  /** The lab slot (tap, LAN, settings) this boot uses; boots at once need different slots. */
  readonly slot?: number;
  /** Where the captures and logs of this run go. */
  readonly outDir: string;
  readonly timeoutMs: number;
  readonly progress?: Progress;
  /** false: the image's self-test does not run in this boot (LabBootOptions.selftest). */
  readonly selftest?: boolean;
  /** vCPUs; boots beside the clean run take one each, so four guests do not fight for two host cores eight-fold. */
  readonly cpus?: number;
}

export interface Window {
  readonly name: string;
  /** Host ms since QEMU started. */
  readonly from: number;
  readonly to: number;
  readonly file: string;
  readonly senders: readonly SenderResult[];
  /** What the guest said at the window's point (agent replies). */
  readonly evidence: Readonly<Record<string, unknown>>;
  /** The window's own capture, classified. */
  readonly classification: Classification;
}

export interface Run {
  readonly name: string;
  readonly slot: BootSlot;
  readonly boot: LabBoot;
  readonly nicMac: string;
  readonly token: string;
  readonly tapFile: string;
  readonly uplinkFile: string;
  readonly windows: Window[];
  /** The senders of a window (as the desktop user and an unnamed uid), with the LAN control as positive control. */
  senders(tag: string): SenderSpec[];
  /** Run `action` between starting and stopping the senders, with a capture of its own. */
  window(name: string, action: () => Promise<Record<string, unknown>>, opts?: { attempts?: number; gapMs?: number; settleMs?: number }): Promise<Window>;
  status(): Promise<AgentStatus>;
  /** The whole-run capture so far, classified (tcpdump writes each packet as it comes). */
  classifyNow(relays?: readonly Endpoint[]): Classification;
  /** Stop QEMU if it still runs, stop the captures, classify. */
  finish(relays?: readonly Endpoint[]): Promise<Finished>;
}

export interface Finished {
  readonly t0: number;
  readonly whole: Classification;
  /** What crossed from the LAN namespace towards the Internet (lan-inet), by destination. */
  readonly uplink: readonly { readonly t: number; readonly dst: string; readonly what: string }[];
  readonly windows: readonly Window[];
  readonly facts: ClassifierFacts;
  readonly exit: { readonly at: number; readonly code?: number; readonly signal?: string; readonly reason?: string };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function classifierFacts(bl: BootLab, slot: BootSlot, nicMac: string, relays: readonly Endpoint[], token: string): ClassifierFacts {
  return {
    labMacs: [slot.tapMac],
    nicMac,
    lanSubnet: slot.lan.subnet,
    lanDns: slot.lan.router,
    checkHost: bl.check,
    relays,
    control: { address: slot.lan.router, port: CONTROL_PORT, token: `${token}-control` },
    probes: slot.probes,
  };
}

export async function startRun(o: RunOptions): Promise<Run> {
  const { bl } = o;
  const slot = bl.slots[o.slot ?? 0];
  if (!slot) throw new Error(`boot lab: no slot ${o.slot} (the lab has ${bl.slots.length})`);
  const slotPrefix = `${slot.lan.subnet.split('.').slice(0, 3).join('.')}.`;
  mkdirSync(o.outDir, { recursive: true });
  // a previous run's serial log in the same place would be read as this boot's first lines (seen at 0 s, before
  // QEMU truncates the file): every console milestone of a rerun came from the run before
  rmSync(join(o.outDir, `${o.name}-qemu`), { recursive: true, force: true });
  const nicMac = bl.nicMac();
  const token = `lk${randomBytes(4).toString('hex')}`;
  const tapFile = join(o.outDir, `${o.name}.pcap`);
  const uplinkFile = join(o.outDir, `${o.name}-lan-uplink.pcap`);
  const tapCap = await bl.capture(slot.tap, tapFile);
  const upCap = await bl.capture('lan-inet', uplinkFile);
  const settingsFile =
    o.settings.kind === 'absent'
      ? undefined
      : bl.settingsFile(`${o.name}-settings.json`, o.settings.kind === 'lab' ? encodeTestSettings(slot.settings) : o.settings.content);
  let boot: LabBoot;
  try {
    boot = await startLabBoot({
      iso: o.iso,
      firmware: o.firmware,
      accel: o.accel,
      netns: bl.netns,
      tap: slot.tap,
      mac: nicMac,
      ...(settingsFile ? { settingsFile } : {}),
      timeoutMs: o.timeoutMs,
      ...(o.selftest === false ? { selftest: false } : {}),
      ...(o.cpus ? { cpus: o.cpus } : {}),
      // boots share the machine with the lab and each other: a quiet console from GRUB to the first
      // unit that prints can outlast the plain boot's stall limit without anything being stuck
      stallMs: 420_000,
      logDir: join(o.outDir, `${o.name}-qemu`),
      ...(o.progress ? { progress: o.progress } : {}),
    });
  } catch (e) {
    await tapCap.stop().catch(() => undefined);
    await upCap.stop().catch(() => undefined);
    throw e;
  }
  const windows: Window[] = [];
  const senders = (tag: string): SenderSpec[] => {
    const t = `${token}-${tag}`;
    const { desktop, unnamed } = bl;
    const { lan } = slot;
    return [
      { label: 'desktop user → Internet (TCP)', as: desktop, proto: 'tcp', host: BOOTLAB_HOSTS.sink, port: SINK_PORTS.tcp, token: `${t}-dt` },
      { label: 'desktop user → Internet (UDP)', as: desktop, proto: 'udp', host: BOOTLAB_HOSTS.sink, port: SINK_PORTS.udp, token: `${t}-du` },
      { label: 'desktop user → LAN DNS', as: desktop, proto: 'udp', host: lan.router, port: 53, token: `${t}-dd` },
      { label: 'unnamed uid → Internet (TCP)', as: unnamed, proto: 'tcp', host: BOOTLAB_HOSTS.sink, port: SINK_PORTS.tcp, token: `${t}-ut` },
      { label: 'unnamed uid → Internet (UDP)', as: unnamed, proto: 'udp', host: BOOTLAB_HOSTS.sink, port: SINK_PORTS.udp, token: `${t}-uu` },
      {
        label: 'desktop user → LAN control port (positive control)',
        as: desktop,
        proto: 'udp',
        host: lan.router,
        port: CONTROL_PORT,
        token: `${token}-control-${tag}`,
      },
    ];
  };
  const status = async () => (await boot.request<AgentStatus>({ op: 'status' }, 60_000)).result;
  const run: Run = {
    name: o.name,
    slot,
    boot,
    nicMac,
    token,
    tapFile,
    uplinkFile,
    windows,
    senders,
    status,
    async window(name, action, opts = {}) {
      const file = join(o.outDir, `${o.name}-${name}.pcap`);
      const cap = await bl.capture(slot.tap, file);
      const from = boot.now();
      const specs = senders(name);
      await boot.request({ op: 'senders-start', window: name, senders: specs, attempts: opts.attempts ?? 400, gapMs: opts.gapMs ?? 200 }, 60_000);
      let evidence: Record<string, unknown> = {};
      let failure: unknown;
      try {
        evidence = await action();
        await sleep(opts.settleMs ?? 3000);
      } catch (e) {
        failure = e;
      }
      const stopped = await boot.request<SenderResult[]>({ op: 'senders-stop', window: name }, 60_000).catch((e: Error) => {
        failure ??= e;
        return { result: [] as SenderResult[] };
      });
      const to = boot.now();
      await cap.stop();
      const classification = classify(pcapRecords(readFileSync(file)), classifierFacts(bl, slot, nicMac, bl.relays(), token), boot.startedAt);
      const w: Window = { name, from, to, file, senders: stopped.result, evidence, classification };
      windows.push(w);
      if (failure) throw failure;
      return w;
    },
    classifyNow: (relays) => classify(pcapRecords(readFileSync(tapFile)), classifierFacts(bl, slot, nicMac, relays ?? bl.relays(), token), boot.startedAt),
    async finish(relays) {
      if (boot.running()) await boot.stop();
      const exit = await boot.exited();
      // what the guest said (its watched units' journal, the agent's hello): the evidence a failed scenario is read from
      writeFileSync(
        join(o.outDir, `${o.name}-agent.jsonl`),
        boot
          .events()
          .map((e) => `${JSON.stringify(e)}\n`)
          .join(''),
      );
      await sleep(500);
      await tapCap.stop();
      await upCap.stop();
      const rel = relays ?? bl.relays();
      const facts = classifierFacts(bl, slot, nicMac, rel, token);
      const whole = classify(pcapRecords(readFileSync(tapFile)), facts, boot.startedAt);
      const uplink = pcapRecords(readFileSync(uplinkFile)).flatMap((r) => {
        const f = r.frame;
        if (f.length < 34 || f.readUInt16BE(12) !== 0x0800) return [];
        const dst = `${f[30]}.${f[31]}.${f[32]}.${f[33]}`;
        const src = `${f[26]}.${f[27]}.${f[28]}.${f[29]}`;
        // the uplink is shared by every slot: this boot's packets come from its own /24
        if (!src.startsWith(slotPrefix)) return [];
        return [{ t: Math.round(r.ms - boot.startedAt) / 1000, dst, what: `${src} → ${dst} proto ${f[23]}` }];
      });
      return {
        t0: boot.startedAt,
        whole,
        uplink,
        windows,
        facts,
        exit,
      };
    },
  };
  return run;
}

/** Packets of a classification between two host times (ms since start). */
export function between(c: Classification, fromMs: number, toMs: number): ClassifiedPacket[] {
  return c.packets.filter((p) => p.t * 1000 >= fromMs && p.t * 1000 <= toMs);
}

/** The guest's packets that are not allowed, and those that could not be decoded. */
export function failures(ps: readonly ClassifiedPacket[]): ClassifiedPacket[] {
  return ps.filter((p) => p.cls === 'leak' || p.cls === 'unparsable');
}

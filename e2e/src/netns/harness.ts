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
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import * as netns from '@leakless/netns';
import type { Emission, GeneratedFile, Policy } from '@leakless/policy';
import {
  buildLab,
  type CapturedPacket,
  type Ids,
  type Lab,
  labFile,
  NODE,
  PYTHON,
  run,
  runHelper,
  startCapture,
  startServer,
  type Where,
  writeEtc,
} from '../lab/index.js';

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

/**
 * Where helpers are staged for a command the launcher starts: it gives the
 * command its own /tmp (where the lab's directory is), so they go to the
 * holder's /usr/lib overlay, which the namespaces see like the image's /usr.
 */
export const VISIBLE_HELPERS = '/usr/lib/leakless-lab';

/** Stage a helper where a launched command sees it; returns its path. */
export async function visibleHelper(lab: Lab, source: URL): Promise<string> {
  const path = `${VISIBLE_HELPERS}/${basename(fileURLToPath(source))}`;
  await writeEtc(lab, path, readFileSync(source, 'utf8'), 0o644);
  return path;
}

/** The interpreter of a helper, by its extension. */
export function interpreter(path: string): string[] {
  return path.endsWith('.py') ? [PYTHON, '-I'] : [NODE];
}

/** Run a batch of probes (probe.mjs, staged) from `from`. */
export async function probe(lab: Lab, from: From, probes: readonly ProbeSpec[]): Promise<ProbeResult[]> {
  if (probes.length === 0) return [];
  const opts = { ...(from.as ? { as: from.as } : {}), ...(from.via ? { via: from.via } : {}), timeoutMs: 20_000 };
  const r = from.via
    ? await run(lab, from.where, NODE, [await visibleHelper(lab, PROBE), JSON.stringify(probes)], opts)
    : await runHelper(lab, from.where, PROBE, [JSON.stringify(probes)], opts);
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

/** The launcher as it was before the namespaces got their own users, session and mount namespace: the anti-tests' planted weakness. */
export const OLD_LAUNCHER = new URL('./fixtures/leakless-netns-exec.before-isolation', import.meta.url);
/** The setup script as it was before it wrote accept_redirects back after ip_forward. */
export const OLD_SETUP = new URL('./fixtures/netns-setup.before-redirects', import.meta.url);

export interface Installed {
  /** The emitted setup script and launcher, in the lab's directory. */
  readonly script: string;
  readonly launcher: string;
  /** The launcher before the fix, for the anti-tests. */
  readonly oldLauncher: string;
}

/**
 * Make the holder's /run, /tmp and /home its own (fresh tmpfs; the
 * namespaces' /run/netns and the lab's directory are moved or bound in), so
 * what a suite plants there (a stand-in bus, the launcher's homes) is seen by
 * the lab only. Before the netns script runs.
 */
export async function privateRunTmpHome(lab: Lab): Promise<void> {
  const script = [
    'set -e',
    'd="$1/mnt"',
    'mkdir -p "$d/run" "$d/tmp"',
    'mount -n -t tmpfs -o mode=0755 lk-run "$d/run"',
    'mount -n -t tmpfs -o mode=1777 lk-tmp "$d/tmp"',
    'mkdir -p "$d/run/netns"',
    'mount -n --move /run/netns "$d/run/netns"',
    // the lab's directory keeps its path: under /tmp it is bound at the same
    // place in the new /tmp (a checkout or TMPDIR elsewhere is not hidden)
    'case "$1" in /tmp/*) mkdir -p "$d/tmp/${1#/tmp/}" && mount -n --bind "$1" "$d/tmp/${1#/tmp/}" ;; esac',
    'mount -n --move "$d/run" /run',
    'mount -n --move "$d/tmp" /tmp',
    'mount -n -t tmpfs -o mode=0755 lk-home /home',
  ].join('\n');
  const r = await run(lab, 'sut', 'sh', ['-c', script, 'sh', lab.dir]);
  if (r.exitCode !== 0) throw new Error(`private /run, /tmp and /home in the holder: ${r.stderr}`);
}

/**
 * Install the emitted netns files into the lab (the holder's /etc and /usr/lib
 * overlays, the executables in the lab's directory), the saved clearnet DNS,
 * and the policy's desktop and namespace users with their ids (this machine
 * may have other users on them). The holder gets its own /run, /tmp and /home.
 */
export async function installNetns(lab: Lab, policy: Policy, emitted: Emission): Promise<Installed> {
  const fileOf = (path: string): GeneratedFile => {
    const f = emitted.files.find((x) => x.path === path);
    if (!f) throw new Error(`netns emitted no ${path}`);
    return f;
  };
  // "The real one, same bytes as in the tree": the committed tree must hold exactly what is run.
  for (const path of [netns.SETUP_SCRIPT, netns.LAUNCHER]) {
    const committed = new URL(`../../../chroot-includes${path}`, import.meta.url);
    if (existsSync(committed) && readFileSync(committed, 'utf8') !== fileOf(path).content)
      throw new Error(`chroot-includes${path} is stale: run leakless emit`);
  }
  await privateRunTmpHome(lab);
  const script = labFile(lab, 'netns-setup', fileOf(netns.SETUP_SCRIPT).content, 0o755);
  const launcher = labFile(lab, 'leakless-netns-exec', fileOf(netns.LAUNCHER).content, 0o755);
  const oldLauncher = labFile(lab, 'leakless-netns-exec.old', readFileSync(OLD_LAUNCHER, 'utf8'), 0o755);
  // The files the script reads (its rulesets under /usr/lib/leakless, /etc/netns), not the units, udev rules or programs.
  for (const f of emitted.files.filter((x) => x.path.startsWith('/etc/') || x.path.startsWith(`${netns.NFT_DIR}/`)))
    await writeEtc(lab, f.path, f.content, f.mode);
  // The saved clearnet DNS (what the resolver module's NetworkManager hook writes): the LAN router.
  await writeEtc(lab, policy.clearnetResolver.file, `nameserver ${lab.addresses.lanRouter}\n`, 0o644);
  const users = [policy.desktopUser, ...policy.namespaces.map((n) => n.user)];
  const lines = users.map((u) => ({
    passwd: `${u.name}:x:${u.uid}:${u.gid}::${u.uid === policy.desktopUser.uid ? `/home/${u.name}` : '/nonexistent'}:/bin/sh`,
    group: `${u.name}:x:${u.gid}:`,
    uid: u.uid,
    gid: u.gid,
  }));
  const drop = (ids: number[]) => `grep -v -E '^[^:]*:[^:]*:(${ids.join('|')}):'`;
  const r = await run(lab, 'sut', 'sh', [
    '-c',
    `set -e
     ${drop(lines.map((l) => l.uid))} /etc/passwd > /etc/passwd.new || true
     printf '%s\\n' ${lines.map((l) => `'${l.passwd}'`).join(' ')} >> /etc/passwd.new; cat /etc/passwd.new > /etc/passwd
     ${drop(lines.map((l) => l.gid))} /etc/group > /etc/group.new || true
     printf '%s\\n' ${lines.map((l) => `'${l.group}'`).join(' ')} >> /etc/group.new; cat /etc/group.new > /etc/group
     install -d -m 0750 -o ${policy.desktopUser.uid} -g ${policy.desktopUser.gid} /home/${policy.desktopUser.name}`,
  ]);
  if (r.exitCode !== 0) throw new Error(`installing the users: ${r.stderr}`);
  return { script, launcher, oldLauncher };
}

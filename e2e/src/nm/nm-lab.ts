// Debian's NetworkManager (installed by tools/leakless/install-deps.sh, never
// started on this machine) run inside the lab: a namespace of its own with one
// veth (its "NIC", with a known hardware MAC) to a LAN namespace running a
// DHCP server (dnsmasq, RFC 1918), a private system bus, and a private mount
// namespace in which /usr/lib/NetworkManager/{conf.d,system-connections} are
// Debian's files plus the ones under test, /etc/NetworkManager's profiles and
// /run are empty, and /etc/hostname holds the host name under test. sysfs is
// read-only (NetworkManager's "no udev" mode) and IPv6 is off, as in the
// image. tcpdump on the LAN side records what the LAN receives.
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNamespace, deleteNamespace, makeLabDir, must, type Proc, pcapRecords, type Ran, sh, startProcess, uniqueSuffix } from '../lab/index.js';

const NM = '/usr/sbin/NetworkManager';
const DEBIAN_NM_CONF = '/etc/NetworkManager/NetworkManager.conf';
const DEBIAN_CONF_D = '/usr/lib/NetworkManager/conf.d';
/** The NIC's burned-in address: QEMU's OUI, globally administered, like a real card's. */
export const NIC_MAC = '52:54:00:4c:4b:01';
export const NIC = 'nm0';

export interface NmSetup {
  /** Files for /usr/lib/NetworkManager/conf.d (name → content), beside Debian's. */
  readonly confD: Readonly<Record<string, string>>;
  /** Profiles for /usr/lib/NetworkManager/system-connections (name → content). */
  readonly connections: Readonly<Record<string, string>>;
  /** /etc/hostname in NetworkManager's mount namespace: the static host name. */
  readonly hostname: string;
  /** The kernel's (transient) host name in NetworkManager's UTS namespace; the static one if not given. */
  readonly transientHostname?: string;
}

export interface FrameCapture {
  /** Stop and return every frame the LAN received from the NIC's side. */
  stop(): Promise<Buffer[]>;
}

export interface NmLab {
  readonly dir: string;
  nmcli(args: readonly string[], timeoutMs?: number): Promise<Ran>;
  /** Resolve once `connection` is active on the NIC; throw with NetworkManager's log tail after `timeoutMs`. */
  waitActive(connection: string, timeoutMs?: number): Promise<void>;
  /** The capture started before NetworkManager: the first DHCP exchange happens before anything could start one later. */
  readonly boot: FrameCapture;
  /** A capture from now on, ready when this resolves. */
  capture(): Promise<FrameCapture>;
  teardown(): Promise<void>;
}

const busConf = (
  socket: string,
) => `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`;

// NetworkManager's mount namespace: $1 work dir (holding the static host name), $2 the transient host name.
const NM_SCRIPT = `set -e
w=$1
hostname "$2"
mount -o remount,bind,ro /sys
mount --bind "$w/conf.d" /usr/lib/NetworkManager/conf.d
mount --bind "$w/connections" /usr/lib/NetworkManager/system-connections
mount --bind "$w/etc-connections" /etc/NetworkManager/system-connections
mount --bind "$w/hostname" /etc/hostname
mount -t tmpfs tmpfs /run
mkdir -p /run/NetworkManager
mount -t tmpfs tmpfs /var/lib/NetworkManager
exec ${NM} --debug --config=${DEBIAN_NM_CONF} --config-dir="$w/etc-conf.d" --state-file="$w/NetworkManager.state" --pid-file="$w/nm.pid" --log-level=DEBUG --log-domains=CORE,DEVICE,DHCP4,IP4,PLATFORM`;

export async function startNmLab(setup: NmSetup): Promise<NmLab> {
  const suffix = uniqueSuffix();
  const nmNs = `lk-nm-${suffix}`;
  const lanNs = `lk-nmlan-${suffix}`;
  const dir = makeLabDir('lk-nm-');
  const procs: Proc[] = [];
  let nmLog = '';
  const teardown = async () => {
    for (const p of procs.reverse()) await p.stop('SIGTERM', 2000);
    await deleteNamespace(nmNs);
    await deleteNamespace(lanNs);
    await sh('rm', ['-rf', dir]);
  };
  try {
    // what NetworkManager reads: Debian's vendor conf.d plus ours, our profiles (0600, or it ignores them)
    for (const d of ['conf.d', 'connections', 'etc-connections', 'etc-conf.d']) mkdirSync(join(dir, d), { mode: 0o700 });
    for (const f of readdirSync(DEBIAN_CONF_D)) copyFileSync(join(DEBIAN_CONF_D, f), join(dir, 'conf.d', f));
    for (const [name, content] of Object.entries(setup.confD)) writeFileSync(join(dir, 'conf.d', name), content, { mode: 0o644 });
    for (const [name, content] of Object.entries(setup.connections)) writeFileSync(join(dir, 'connections', name), content, { mode: 0o600 });
    writeFileSync(join(dir, 'hostname'), `${setup.hostname}\n`);
    writeFileSync(join(dir, 'bus.conf'), busConf(join(dir, 'bus')));

    await createNamespace(nmNs);
    await createNamespace(lanNs);
    await must('ip', ['link', 'add', NIC, 'netns', nmNs, 'address', NIC_MAC, 'type', 'veth', 'peer', 'name', 'lan0', 'netns', lanNs]);
    for (const k of ['all', 'default', NIC]) await must('ip', ['netns', 'exec', nmNs, 'sysctl', '-qw', `net.ipv6.conf.${k}.disable_ipv6=1`]);
    const net = `192.168.${100 + Math.floor(Math.random() * 100)}`;
    await must('ip', ['-n', lanNs, 'addr', 'add', `${net}.1/24`, 'dev', 'lan0']);
    await must('ip', ['-n', lanNs, 'link', 'set', 'lan0', 'up']);

    // the LAN's DHCP server: leases long enough that no renewal falls into a capture
    procs.push(
      await startProcess(
        [
          'ip',
          'netns',
          'exec',
          lanNs,
          'dnsmasq',
          '--keep-in-foreground',
          '--conf-file=/dev/null',
          '--interface=lan0',
          '--bind-interfaces',
          '--port=0',
          `--dhcp-range=${net}.10,${net}.50,255.255.255.0,30m`,
          `--dhcp-leasefile=${join(dir, 'leases')}`,
          '--log-dhcp',
          '--log-facility=-',
          '--user=root',
        ],
        { label: `dnsmasq in ${lanNs}`, ready: /started, version/, readyTimeoutMs: 10_000 },
      ),
    );
    procs.push(
      await startProcess(['dbus-daemon', `--config-file=${join(dir, 'bus.conf')}`, '--nofork', '--nopidfile', '--print-address'], {
        label: 'private system bus',
        ready: /^unix:path=/,
        readyTimeoutMs: 10_000,
      }),
    );
    const bus = `DBUS_SYSTEM_BUS_ADDRESS=unix:path=${join(dir, 'bus')}`;
    const capture = async () => {
      const c = await startFrameCapture(lanNs);
      procs.push(c.proc);
      return c;
    };
    const boot = await capture();
    procs.push(
      await startProcess(
        [
          'ip',
          'netns',
          'exec',
          nmNs,
          'env',
          bus,
          'unshare',
          '-m',
          '-u',
          '--propagation',
          'private',
          'sh',
          '-c',
          NM_SCRIPT,
          'sh',
          dir,
          setup.transientHostname ?? setup.hostname,
        ],
        {
          label: `NetworkManager in ${nmNs}`,
          ready: /NetworkManager \(version [^)]+\) is starting/,
          readyTimeoutMs: 20_000,
          onErrLine: (l) => {
            nmLog = `${nmLog}\n${l}`.slice(-20_000);
          },
        },
      ),
    );
    const nmcli = (args: readonly string[], timeoutMs = 30_000) => sh('ip', ['netns', 'exec', nmNs, 'env', bus, 'nmcli', ...args], { timeoutMs });
    return {
      dir,
      nmcli,
      async waitActive(connection, timeoutMs = 30_000) {
        const deadline = Date.now() + timeoutMs;
        let last = '';
        while (Date.now() < deadline) {
          const r = await nmcli(['-t', '-f', 'DEVICE,STATE,CONNECTION', 'device']);
          last = r.stdout.trim();
          if (last.split('\n').includes(`${NIC}:connected:${connection}`)) return;
          await new Promise((r) => setTimeout(r, 250));
        }
        throw new Error(`NetworkManager: ${connection} not active on ${NIC} after ${timeoutMs} ms (devices: ${last}); log: ${nmLog.slice(-1500)}`);
      },
      boot,
      capture,
      teardown,
    };
  } catch (e) {
    await teardown();
    throw e;
  }
}

/** tcpdump on the LAN side of the NIC: what the LAN receives from it. */
async function startFrameCapture(lanNs: string): Promise<FrameCapture & { proc: Proc }> {
  const chunks: Buffer[] = [];
  const proc = await startProcess(['ip', 'netns', 'exec', lanNs, 'tcpdump', '-i', 'lan0', '-Q', 'in', '-n', '-U', '--immediate-mode', '-w', '-'], {
    label: `tcpdump on lan0 in ${lanNs}`,
    ready: /listening on/,
    readyTimeoutMs: 5000,
    onData: (d) => chunks.push(d),
  });
  return {
    proc,
    stop: async () => {
      // let the last frames reach tcpdump
      await new Promise((r) => setTimeout(r, 300));
      const r = await proc.stop('SIGINT');
      if (r.exitCode !== 0 && r.signal !== 'SIGINT') throw new Error(`tcpdump failed (${r.exitCode ?? r.signal}): ${proc.stderr().trim()}`);
      if (/packets? dropped by kernel/.test(proc.stderr()) && !/\b0 packets dropped by kernel/.test(proc.stderr()))
        throw new Error(`tcpdump dropped packets: ${proc.stderr().trim()}`);
      return pcapRecords(Buffer.concat(chunks)).map((x) => x.frame);
    },
  };
}

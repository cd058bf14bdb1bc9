// Boot the ISO in QEMU through its real boot path (BIOS:
// SeaBIOS → El Torito → GRUB; UEFI: OVMF → efi.img → GRUB) with NO network
// device at all, let the image run leakless-selftest, and read the result
// back over a virtio-serial port. The port is also the trigger: the image's
// leakless-selftest.service only runs when /dev/virtio-ports/leakless.selftest
// exists (or the leakless.selftest kernel argument is given), so a normal
// boot on real hardware never runs it.
//
// The networked lab boot (boot-lab.ts) starts the same QEMU with one more
// device set: a NIC on a tap inside the lab, the test-settings file
// (test-channel.ts), the lab agent's port and a QMP socket (qemuArgs).
import { copyFile, mkdir, mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { formatDuration, type Progress } from '@leakless/debos-ts';
import { SELFTEST_PORT } from './iso-plan.js';
import { judgeReport, parseResultLine, type SelftestReport } from '@leakless/selftest';
import { fwCfgArgs } from './test-channel.js';
import { LAB_PORT } from './lab-agent.js';
import { SHIM_VERIFICATION_FAILED } from './secureboot.js';
import { qemuCpu } from './accel.js';

export type Firmware = 'bios' | 'uefi';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';
/** Secure Boot: the SMM build of OVMF and a variable store with Microsoft's keys enrolled (as on a retail PC). */
export const OVMF_CODE_SECBOOT = '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd';
export const OVMF_VARS_MS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';

export interface QemuPlan {
  readonly firmware: Firmware;
  readonly iso: string;
  readonly accel: 'kvm' | 'tcg';
  readonly memoryMb: number;
  readonly cpus: number;
  readonly serialLog: string;
  /** Where the self-test's port writes; absent = no port, so the image's self-test does not run at all. */
  readonly resultFile?: string;
  /** UEFI: a per-run copy of the OVMF variable store. */
  readonly ovmfVars?: string;
  /** The networked lab boot only (boot-lab.ts): devices no plain boot has. */
  readonly lab?: QemuLabDevices;
  /** UEFI with Secure Boot enforced (Microsoft keys enrolled). */
  readonly secureBoot?: boolean;
}

/**
 * What a lab boot adds: a virtio NIC on a tap that exists only inside the
 * lab's LAN namespace (QEMU runs in that namespace; never user-mode
 * networking, docs/design.md#lab-rules), the test-only settings as a fw_cfg
 * file (docs/threat-model.md#test-settings-fw-cfg), the lab agent's
 * virtio-serial port and a QMP socket (the link's carrier, as a cable).
 */
export interface QemuLabDevices {
  /** The tap's name inside the namespace QEMU runs in. */
  readonly tap: string;
  /** The NIC's own (permanent) MAC address. */
  readonly mac: string;
  readonly fwCfgFile?: string;
  /** Unix socket of the lab agent's port (QEMU listens, the host connects). */
  readonly agentSocket: string;
  readonly qmpSocket: string;
}

/**
 * UEFI: the CD is the only boot device QEMU names (fw_cfg "bootorder"), so
 * OVMF connects the CD and never the NIC. Connected, the NIC gets OVMF's own
 * network stack, whose IPv6 joins the solicited-node group and probes its
 * link-local address (an MLD report and a duplicate-address neighbour
 * solicitation from the NIC's MAC, seen on the lab's tap before GRUB):
 * frames of the firmware, sent before the image runs. OVMF's PXE switches
 * (fw_cfg opt/org.tianocore/IPv6PXESupport=n) did not stop them; without a
 * boot order OVMF connects every device. The lab switches the firmware's
 * network off so that "IPv6 must be absent" stays strict for the image
 * (docs/design.md#firmware-network); Linux finds the NIC on the PCI bus itself.
 */
const UEFI_LAB_BOOT_ORDER: readonly string[] = ['-global', 'ide-cd.bootindex=0'];

function labArgs(l: QemuLabDevices, firmware: Firmware): string[] {
  if (!/^[A-Za-z0-9_-]{1,15}$/.test(l.tap)) throw new Error(`not a tap interface name: ${JSON.stringify(l.tap)}`);
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(l.mac) || (Number.parseInt(l.mac.slice(0, 2), 16) & 1) === 1) throw new Error(`not a unicast MAC: ${l.mac}`);
  for (const p of [l.agentSocket, l.qmpSocket]) if (/[,\s]/.test(p)) throw new Error(`socket path must not contain commas or spaces: ${p}`);
  return [
    '-netdev',
    `tap,id=lknet,ifname=${l.tap},script=no,downscript=no`,
    // romfile= (none): no iPXE option ROM, so the firmware has no network driver of its own under BIOS
    '-device',
    `virtio-net-pci,netdev=lknet,mac=${l.mac},romfile=`,
    ...(l.fwCfgFile ? fwCfgArgs(l.fwCfgFile) : []),
    '-chardev',
    `socket,id=lklab,path=${l.agentSocket},server=on,wait=off`,
    '-device',
    `virtserialport,chardev=lklab,name=${LAB_PORT}`,
    '-qmp',
    `unix:${l.qmpSocket},server=on,wait=off`,
    ...(firmware === 'uefi' ? UEFI_LAB_BOOT_ORDER : []),
  ];
}

/**
 * The QEMU command line. -nodefaults means no NIC, no monitor, no default
 * devices: the guest has exactly the devices listed here, and none of them is
 * a network device (never user-mode networking; docs/design.md#lab-rules),
 * except in a lab boot: one NIC on the lab's tap.
 */
export function qemuArgs(p: QemuPlan): string[] {
  const args = ['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', ...(p.lab ? [] : ['-nic', 'none'])];
  args.push('-accel', p.accel, '-cpu', qemuCpu(p.accel));
  args.push('-m', String(p.memoryMb), '-smp', String(p.cpus));
  if (p.firmware === 'uefi') {
    if (!p.ovmfVars) throw new Error('UEFI boot needs a copy of the OVMF variable store');
    // the secboot build keeps its variable store writable only from SMM, so the guest cannot turn Secure Boot off
    if (p.secureBoot) args.push('-machine', 'q35,smm=on', '-global', 'driver=cfi.pflash01,property=secure,value=on');
    else args.push('-machine', 'q35');
    args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${p.secureBoot ? OVMF_CODE_SECBOOT : OVMF_CODE}`);
    args.push('-drive', `if=pflash,format=raw,unit=1,file=${p.ovmfVars}`);
  } else {
    if (p.secureBoot) throw new Error('Secure Boot needs UEFI firmware');
    args.push('-machine', 'pc', '-boot', 'order=d');
  }
  args.push('-drive', `file=${p.iso},media=cdrom,if=ide,readonly=on`);
  args.push('-serial', `file:${p.serialLog}`);
  args.push('-device', 'virtio-serial-pci');
  if (p.resultFile) args.push('-chardev', `file,id=lkresult,path=${p.resultFile}`, '-device', `virtserialport,chardev=lkresult,name=${SELFTEST_PORT}`);
  if (p.lab) args.push(...labArgs(p.lab, p.firmware));
  return args;
}

export interface BootResult {
  readonly firmware: Firmware;
  readonly ok: boolean;
  /** From starting QEMU to the self-test result. */
  readonly ms: number;
  readonly report?: SelftestReport;
  /** Why it is not ok, when it is not. */
  readonly reason?: string;
  readonly serialTail: readonly string[];
  readonly logDir: string;
  /** The longest time the serial console stayed silent (from QEMU's start to the result). */
  readonly longestSilenceMs: number;
}

export const tailOf = (text: string, n: number) =>
  text
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
    .slice(-n);

/**
 * A boot whose serial console stays silent this long is stopped: the guest
 * hangs (a KVM that opens but cannot run Linux prints GRUB's "Booting …" and
 * then nothing, for ever). Measured on the 2-core build machine under TCG
 * (serial output timestamped as it arrived, full boots to the self-test
 * result, kernel argument `quiet`): the longest silent gaps were 62.5 s (BIOS)
 * and 73.6 s (UEFI), both from live-boot's last initramfs line to the login
 * prompt, while systemd starts the system without printing; the next longest
 * were GRUB loading the kernel and initrd from the CD (21.6 s BIOS, 16.4 s
 * UEFI). The limit is 180 s, about 2.4 times the longest gap: a machine half
 * as fast still passes, and a hung guest is stopped after 3 minutes instead
 * of the 10-minute timeout.
 */
export const STALL_LIMIT_MS = 180_000;

export interface BootOptions {
  readonly iso: string;
  readonly firmware: Firmware;
  readonly accel: 'kvm' | 'tcg';
  readonly timeoutMs: number;
  /** Stop when the serial console is silent this long (default STALL_LIMIT_MS). */
  readonly stallMs?: number;
  /** The QEMU binary (default qemu-system-x86_64 on PATH). */
  readonly qemu?: string;
  readonly memoryMb?: number;
  readonly expectedAssertions?: number;
  readonly logDir?: string;
  readonly progress?: Progress;
  /** UEFI only: enforce Secure Boot (Microsoft keys enrolled). */
  readonly secureBoot?: boolean;
}

/**
 * Serial lines that end a boot at once: the firmware chain refused the
 * image, nothing will follow (waiting for the stall limit would only
 * report a hang where the cause was printed).
 */
export const FATAL_BOOT_LINES: readonly RegExp[] = [SHIM_VERIFICATION_FAILED];

export async function bootIso(o: BootOptions): Promise<BootResult> {
  const logDir = o.logDir ?? (await mkdtemp(join(tmpdir(), `leakless-boot-${o.firmware}-`)));
  await mkdir(logDir, { recursive: true });
  const serialLog = join(logDir, 'serial.log');
  const resultFile = join(logDir, 'result.txt');
  let ovmfVars: string | undefined;
  if (o.firmware === 'uefi') {
    ovmfVars = join(logDir, 'OVMF_VARS.fd');
    await copyFile(o.secureBoot ? OVMF_VARS_MS : OVMF_VARS, ovmfVars);
  }
  const args = qemuArgs({
    firmware: o.firmware,
    iso: o.iso,
    accel: o.accel,
    memoryMb: o.memoryMb ?? 2048,
    cpus: 2,
    serialLog,
    resultFile,
    ...(ovmfVars ? { ovmfVars } : {}),
    ...(o.secureBoot ? { secureBoot: true } : {}),
  });
  const progress = o.progress;
  const stallMs = o.stallMs ?? STALL_LIMIT_MS;
  progress?.stage(`${o.firmware}: boot to self-test result (${o.accel})`);
  const started = Date.now();
  const qemu = execa(o.qemu ?? 'qemu-system-x86_64', args, { reject: false, stdin: 'ignore', all: true, timeout: o.timeoutMs, forceKillAfterDelay: 5000 });
  let exited = false;
  void qemu.finally(() => {
    exited = true;
  });
  const read = (f: string) => readFile(f, 'utf8').catch(() => '');
  const size = (f: string) =>
    stat(f).then(
      (s) => s.size,
      () => 0,
    );
  let report: SelftestReport | undefined;
  let seen = -1;
  let lastOutput = started;
  let longestSilenceMs = 0;
  let stalled = false;
  let fatal: string | undefined;
  while (!exited) {
    report = parseResultLine(await read(resultFile));
    if (report) break;
    // any byte on the serial console or the result port is a sign of life
    const now = Date.now();
    const bytes = (await size(serialLog)) + (await size(resultFile));
    if (bytes !== seen) {
      seen = bytes;
      lastOutput = now;
      const serial = await read(serialLog);
      const last = tailOf(serial, 1)[0];
      if (last) progress?.line(last);
      fatal = FATAL_BOOT_LINES.map((re) => re.exec(serial)?.[0]).find((m) => m !== undefined);
      if (fatal) break;
    }
    longestSilenceMs = Math.max(longestSilenceMs, now - lastOutput);
    if (now - lastOutput > stallMs) {
      stalled = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const ms = Date.now() - started;
  if (!exited) qemu.kill('SIGTERM');
  const q = await qemu;
  report ??= parseResultLine(await read(resultFile));
  const serialTail = tailOf(await read(serialLog), 40);
  let result: BootResult;
  if (report) {
    const j = judgeReport(report, o.expectedAssertions);
    result = { firmware: o.firmware, ok: j.ok, ms, report, ...(j.reason ? { reason: j.reason } : {}), serialTail, logDir, longestSilenceMs };
  } else {
    const lastLine = serialTail.at(-1);
    const how = fatal
      ? `refused by the firmware chain: "${fatal}"`
      : stalled
        ? `stopped: the serial console was silent for ${formatDuration(Date.now() - lastOutput)} (stall limit ${formatDuration(stallMs)}) under ${o.accel.toUpperCase()}; the guest hangs${lastLine ? ` after "${lastLine}"` : ' before printing anything'}`
        : q.timedOut
          ? `no result within ${formatDuration(o.timeoutMs)}`
          : `QEMU exited (${q.exitCode ?? q.signal}) before the self-test reported${q.all ? `: ${tailOf(q.all, 3).join(' | ')}` : ''}`;
    result = { firmware: o.firmware, ok: false, ms, reason: how, serialTail, logDir, longestSilenceMs };
  }
  progress?.finish(result.ok);
  return result;
}

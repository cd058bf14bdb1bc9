// What the image is made of, derived from the assembly alone (pure): the
// package set, the users with their fixed ids, the units to enable, the
// runtime assertions the image carries for leakless-selftest and the files
// the image adds next to the modules' tree. Generic over Emission: no module
// is special-cased, so a module that appears in allModules is in the image.
import type { Assembly, GeneratedFile, RuntimeAssertion, RuntimeCheck, UserRole } from '@leakless/policy';
import type { SelftestAssertion, SelftestDocument } from '@leakless/selftest';
import { byteOrder, PATHS, sha256 } from '@leakless/policy';
import { dirname } from 'node:path';
import { LAB_AGENT_UNIT, labGuestFiles, TEST_SETTINGS_UNIT } from './guest-files.js';
import { SELFTEST_NETWORK_VAR, SELFTEST_WITHOUT_NETWORK, TEST_SETTINGS_PATHS } from './test-channel.js';

export class PlanError extends Error {
  override readonly name = 'PlanError';
}

export interface PlanUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly role: UserRole;
  readonly home: string;
  readonly shell: string;
  readonly createHome: boolean;
  /** Who asked for it: "policy" or the module names. */
  readonly from: readonly string[];
}

export interface ImagePlan {
  readonly suite: string;
  readonly hostname: string;
  readonly sourceDateEpoch: number;
  readonly packages: readonly string[];
  readonly users: readonly PlanUser[];
  readonly units: readonly string[];
  /** Units masked when the image is built (Emission.maskedUnits): nothing can start them. */
  readonly maskedUnits: readonly string[];
  readonly selftest: SelftestDocument;
}

export const SELFTEST_PATH = PATHS.selftest;
export const RUNTIME_ASSERTIONS_PATH = PATHS.runtimeAssertions;
export const SELFTEST_UNIT = 'leakless-selftest.service';
export const SELFTEST_UNIT_PATH = `${PATHS.units}/${SELFTEST_UNIT}`;
export const SELFTEST_UDEV_RULE_PATH = `${PATHS.udevRules}/99-leakless-selftest.rules`;
/** The virtio-serial port name `leakless boot` provides; the guest sees /dev/virtio-ports/<name>. */
export const SELFTEST_PORT = 'leakless.selftest';
export const SELFTEST_KERNEL_ARG = 'leakless.selftest';

/**
 * A bootable live system: kernel, live-boot (initramfs hooks), systemd as
 * init, and netbase (/etc/protocols, /etc/services: Priority important, so
 * not in minbase; without it nft lists "meta l4proto 6" instead of "tcp" and
 * the loaded ruleset no longer reads as the emitted one). zstd: Debian's
 * initramfs-tools compresses the initrd with it (COMPRESS=zstd, level 9) and
 * silently falls back to gzip when the tool is missing, which minbase does
 * not carry: the same initrd is 15.1 MB as zstd against 18.2 MB as gzip,
 * fewer bytes for the boot loader to read from the CD, and the kernel unpacks
 * zstd faster (cleanup.sh refuses a gzip initrd).
 */
export const INITRAMFS_COMPRESSOR = 'zstd';
export const LIVE_PACKAGES = ['linux-image-amd64', 'live-boot', 'netbase', 'systemd-sysv', INITRAMFS_COMPRESSOR] as const;

/**
 * Units of Debian's packages that the live image masks. e2fsprogs (in every
 * minbase) enables e2scrub_reap.service at each boot and e2scrub_all.timer
 * weekly: both look for ext4 volumes on LVM, i.e. on the disks of the
 * computer the live system runs on, which it has no business touching (it
 * mounts nothing of theirs), and this image has no lvm2 to find any. Measured
 * under TCG on 2 cores, e2scrub_reap ran 12.5 s at every boot beside the
 * firewall and tor, which wait for the CPU it took.
 */
export const IMAGE_MASKED_UNITS = ['e2scrub_all.timer', 'e2scrub_reap.service'] as const;

/**
 * What leakless-selftest needs on the image to observe each kind of check
 * (see @leakless/policy runtime.ts): Debian's nodejs runs the bundle; the
 * observations shell out to these tools. A kind missing here gets all of them.
 */
const TOOLS_FOR_CHECK: { readonly [K in RuntimeCheck['kind']]?: readonly string[] } = {
  sysctl: ['procps'],
  'module-blocked': ['kmod'],
  'nft-table': ['nftables'],
  listening: ['iproute2'],
  'ip-addresses': ['iproute2'],
  'ip-routes': ['iproute2'],
  'unit-active': [],
  file: [],
  user: [],
};
const ALL_CHECK_TOOLS = ['procps', 'kmod', 'nftables', 'iproute2'];

export function selftestPackages(assertions: readonly RuntimeAssertion[]): string[] {
  const out = new Set<string>(['nodejs']);
  for (const a of assertions) {
    for (const p of TOOLS_FOR_CHECK[a.check.kind] ?? ALL_CHECK_TOOLS) out.add(p);
    if (a.netns !== undefined) out.add('iproute2');
  }
  return [...out];
}

/**
 * Accounts a Debian package creates itself and whose attributes its
 * maintainer script checks when the account already exists. Created before
 * the package, they must look exactly as the package would make them, only
 * with the policy's ids. debian-tor: tor.postinst exits 1 unless the home is
 * /var/lib/tor (it runs adduser --system --home /var/lib/tor --shell /bin/false --group).
 */
export const DEBIAN_ACCOUNTS: Readonly<Record<string, { readonly home: string; readonly shell: string }>> = {
  'debian-tor': { home: '/var/lib/tor', shell: '/bin/false' },
};

function account(name: string, role: UserRole): Pick<PlanUser, 'home' | 'shell' | 'createHome'> {
  const known = DEBIAN_ACCOUNTS[name];
  if (known) return { ...known, createHome: false };
  if (role === 'desktop') return { home: `/home/${name}`, shell: '/bin/bash', createHome: true };
  if (name === 'root') return { home: '/root', shell: '/bin/bash', createHome: false };
  return { home: '/nonexistent', shell: '/usr/sbin/nologin', createHome: false };
}

function mergeUsers(assembly: Assembly): PlanUser[] {
  const byName = new Map<string, PlanUser>();
  const add = (u: { name: string; uid: number; gid: number }, role: UserRole, from: string) => {
    const prev = byName.get(u.name);
    if (prev) {
      if (prev.uid !== u.uid || prev.gid !== u.gid) {
        throw new PlanError(`user ${u.name}: ${prev.from.join(', ')} says ${prev.uid}:${prev.gid}, ${from} says ${u.uid}:${u.gid}`);
      }
      byName.set(u.name, { ...prev, from: [...prev.from, from] });
      return;
    }
    byName.set(u.name, { name: u.name, uid: u.uid, gid: u.gid, role, ...account(u.name, role), from: [from] });
  };
  for (const u of assembly.policy.users) add(u, u.role, 'policy');
  for (const e of assembly.emissions) for (const u of e.users) add(u, 'service', e.module);
  const users = [...byName.values()].sort((a, b) => a.uid - b.uid || byteOrder(a.name, b.name));
  for (let i = 1; i < users.length; i++) {
    if (users[i]!.uid === users[i - 1]!.uid) throw new PlanError(`uid ${users[i]!.uid} is given to both ${users[i - 1]!.name} and ${users[i]!.name}`);
  }
  return users;
}

const sortedUnique = (xs: Iterable<string>) => [...new Set(xs)].sort(byteOrder);

export function planImage(assembly: Assembly): ImagePlan {
  const { policy } = assembly;
  const doc = policy.document;
  const users = mergeUsers(assembly);
  const moduleAssertions: SelftestAssertion[] = assembly.emissions.flatMap((e) => e.runtimeAssertions.map((a) => ({ module: e.module, ...a })));
  // The image's own promises, checked on the running system like any module's.
  const imageAssertions: SelftestAssertion[] = users.map((u) => ({
    module: 'image',
    id: `image.user.${u.name}`,
    statement: `${u.name} exists with uid ${u.uid} and gid ${u.gid} (fixed before packages, docs/design.md#fixed-uids)`,
    check: { kind: 'user', name: u.name, uid: u.uid, gid: u.gid },
    scope: 'system',
  }));
  const assertions = [...moduleAssertions, ...imageAssertions];
  const seen = new Set<string>();
  for (const a of assertions) {
    if (seen.has(a.id)) throw new PlanError(`runtime assertion id ${a.id} is used twice`);
    seen.add(a.id);
  }
  const packages = sortedUnique([...LIVE_PACKAGES, ...selftestPackages(assertions), ...assembly.emissions.flatMap((e) => e.packages), ...doc.image.packages]);
  // the lab boot's reader and agent: inert unless a hypervisor provides what they need (guest-files.ts)
  const units = sortedUnique([...assembly.emissions.flatMap((e) => e.units), SELFTEST_UNIT, TEST_SETTINGS_UNIT, LAB_AGENT_UNIT]);
  const maskedUnits = sortedUnique([...assembly.emissions.flatMap((e) => e.maskedUnits), ...IMAGE_MASKED_UNITS]);
  for (const u of [...units, ...maskedUnits]) {
    if (!/^[A-Za-z0-9:_.@\\-]+\.(service|socket|timer|path|target|mount)$/.test(u)) throw new PlanError(`not a unit name: ${JSON.stringify(u)}`);
  }
  for (const u of maskedUnits) if (units.includes(u)) throw new PlanError(`${u} is both enabled and masked`);
  return {
    suite: doc.image.suite,
    hostname: doc.image.hostname,
    sourceDateEpoch: policy.sourceDateEpoch,
    packages,
    users,
    units,
    maskedUnits,
    selftest: { version: 1, policy: policy.name, release: doc.release.version, assertions },
  };
}

export function selftestUnit(): string {
  return `# leakless: runs leakless-selftest once the system is up, only when asked:
# by the hypervisor (a virtio-serial port named ${SELFTEST_PORT}, which
# \`leakless boot\` provides and no real machine has) or by the
# ${SELFTEST_KERNEL_ARG} kernel argument (the "self-test" boot menu entry).
# The result goes to the console and, when the port exists, to the port.
# The port can appear after this unit's boot-time job ran (udev coldplug
# races basic.target under emulation), so the udev rule in
# ${SELFTEST_UDEV_RULE_PATH} starts the unit again when it appears.
# Not After=multi-user.target: units that wait for Tor (htpdate) hold that
# target back for as long as there is no network, which in a test VM is
# forever. It starts once the basic system is up and re-checks what does not
# hold yet (services still starting) for up to --settle seconds.
# The active probes (scope network) need destinations on a network; only a lab
# boot gives them, through the test-only settings
# (docs/threat-model.md#test-settings-fw-cfg), which write ${TEST_SETTINGS_PATHS.selftestEnv}.
# Without them the probes are left out, never run blind.
[Unit]
Description=leakless self-test (runtime assertions of every module)
ConditionKernelCommandLine=|${SELFTEST_KERNEL_ARG}
ConditionPathExists=|/dev/virtio-ports/${SELFTEST_PORT}
After=basic.target ${TEST_SETTINGS_UNIT}

[Service]
Type=oneshot
Environment="${SELFTEST_NETWORK_VAR}=${SELFTEST_WITHOUT_NETWORK}"
EnvironmentFile=-${TEST_SETTINGS_PATHS.selftestEnv}
ExecStart=${SELFTEST_PATH} --settle 120 --result-port /dev/virtio-ports/${SELFTEST_PORT} $${SELFTEST_NETWORK_VAR}
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
`;
}

/**
 * Files the image adds beside the modules' tree: the self-test and its data,
 * and the host name (a module that emits /etc/hostname or /etc/hosts wins).
 */
export function selftestUdevRule(): string {
  return `# leakless: start ${SELFTEST_UNIT} when the hypervisor offers the
# virtio-serial port ${SELFTEST_PORT} (only \`leakless boot\` does; see the unit).
SUBSYSTEM=="virtio-ports", ATTR{name}=="${SELFTEST_PORT}", TAG+="systemd", ENV{SYSTEMD_WANTS}+="${SELFTEST_UNIT}"
`;
}

export function imageFiles(plan: ImagePlan, selftestBundle: string, moduleFiles: ReadonlySet<string>): GeneratedFile[] {
  const files: GeneratedFile[] = [
    { path: SELFTEST_UDEV_RULE_PATH, content: selftestUdevRule(), mode: 0o644, clause: 'docs/design.md#self-test: leakless boot runs the self-test' },
    { path: SELFTEST_PATH, content: selftestBundle, mode: 0o755, clause: 'docs/design.md#self-test: leakless-selftest' },
    {
      path: RUNTIME_ASSERTIONS_PATH,
      content: JSON.stringify(plan.selftest, null, 2) + '\n',
      mode: 0o644,
      clause: 'docs/design.md#runtime-assertions: runtime assertions in the booted image',
    },
    { path: SELFTEST_UNIT_PATH, content: selftestUnit(), mode: 0o644, clause: 'docs/design.md#self-test: leakless boot runs the self-test' },
    ...labGuestFiles(dirname(SELFTEST_UNIT_PATH), dirname(SELFTEST_UDEV_RULE_PATH)),
  ];
  if (!moduleFiles.has('/etc/hostname')) files.push({ path: '/etc/hostname', content: `${plan.hostname}\n`, mode: 0o644, clause: 'image.hostname' });
  if (!moduleFiles.has('/etc/hosts')) {
    files.push({ path: '/etc/hosts', content: `127.0.0.1\tlocalhost\n127.0.1.1\t${plan.hostname}\n`, mode: 0o644, clause: 'image.hostname' });
  }
  for (const f of files) if (moduleFiles.has(f.path)) throw new PlanError(`${f.path} is emitted by a module but belongs to the image`);
  return files;
}

/** A short, stable digest of the runtime assertions (shown in reports). */
export function selftestDigest(doc: SelftestDocument): string {
  return sha256(JSON.stringify(doc)).slice(0, 16);
}

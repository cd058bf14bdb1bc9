// The test-only settings channel (docs/threat-model.md#test-settings-fw-cfg):
// how `leakless boot --lab` points the booted image at the lab's private Tor
// network and test CA without changing a byte of the image.
//
// The settings travel as one QEMU fw_cfg file. fw_cfg is a device of the
// hypervisor that the firmware announces in its ACPI tables (QEMU0002); no
// disk, USB stick, network or kernel argument can create it, and whoever can
// set it already controls the machine's memory, disks and network. The image
// reads it once at boot (leakless-test-settings.service, a VM only) and
// applies it only if every field is what this module allows: anything else
// is refused as a whole, with the reason in the journal, and the image boots
// as it would on real hardware.
//
// Pure: the format, its strict parser and what an accepted document becomes.
import { X509Certificate } from 'node:crypto';

/** The fw_cfg file name (QEMU: user files live under opt/, named after a domain the user owns). */
export const TEST_SETTINGS_FW_CFG = 'opt/org.leakless/test-settings';
/** Where the guest kernel's qemu_fw_cfg driver shows it. */
export const TEST_SETTINGS_SYSFS = `/sys/firmware/qemu_fw_cfg/by_name/${TEST_SETTINGS_FW_CFG}/raw`;
export const TEST_SETTINGS_FORMAT = 'leakless-test-settings';
export const TEST_SETTINGS_VERSION = 1;
/** Larger is refused before it is parsed (nine authorities and a CA are ~5 KB). */
export const TEST_SETTINGS_MAX_BYTES = 65_536;
const MAX_AUTHORITIES = 9;

/** What the reader writes when it accepts the settings (all of it on the live system's tmpfs: gone at power-off). */
export const TEST_SETTINGS_PATHS = {
  /** Read last by tor (the base torrc includes torrc.d/*.conf). */
  torrcDropIn: '/etc/tor/torrc.d/50-leakless-test-settings.conf',
  /** Debian's bundle, the trust anchors of htpdate's HTTPS (time.conf htp-ca-file): the test CA is appended. */
  caBundle: '/etc/ssl/certs/ca-certificates.crt',
  /** The reader's verdict: absent, refused (with the reason) or accepted (what was applied). */
  state: '/run/leakless/test-settings.json',
  /** Present only when accepted settings ask for the lab agent; the agent's unit requires it. */
  agentFlag: '/run/leakless/lab-agent',
  /** Where the self-test's active probes go (leakless-selftest --destinations FILE), and the switch that lets them run. */
  selftestDestinations: '/run/leakless/selftest-destinations',
  selftestEnv: '/run/leakless/selftest.env',
} as const;

/**
 * The self-test unit's switch (an EnvironmentFile variable): without the
 * settings its active probes (scope network) are left out, with them they
 * get their destinations. A probe is never run without one.
 */
export const SELFTEST_NETWORK_VAR = 'LEAKLESS_SELFTEST_NETWORK';
export const SELFTEST_WITHOUT_NETWORK = '--scope system --scope netns';

export interface TestSettings {
  /** torrc lines: `TestingTorNetwork 1` and the private network's `DirAuthority` lines, nothing else. */
  readonly torrc: readonly string[];
  /** One CA certificate (PEM) that htpdate's HTTPS trusts in addition to Debian's bundle. */
  readonly ca?: string;
  /** Start the lab agent on the virtio-serial port leakless.lab (when the hypervisor offers it). */
  readonly agent: boolean;
  /** The self-test's active probe destinations (name → IPv4[:port]) on the lab network. */
  readonly destinations?: Readonly<Record<string, string>>;
}

export type ParsedSettings = { readonly ok: true; readonly settings: TestSettings } | { readonly ok: false; readonly reason: string };

const NICK = '[A-Za-z0-9]{1,19}';
const HEX40 = '[0-9A-F]{40}';
const PORT = '([1-9][0-9]{0,4})';
const IPV4 = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}';
/**
 * tor's DirAuthority syntax, narrowed to what a private network needs: a
 * nickname, orport=, no-v2, v3ident=, IPv4:DirPort and the RSA fingerprint.
 * No bridge, hs, weight or ipv6 flags.
 */
const DIR_AUTHORITY = new RegExp(
  `^DirAuthority ${NICK}(?: (?:orport=${PORT}|no-v2|v3ident=${HEX40}))* ${IPV4}:${PORT} (?:${HEX40}|(?:[0-9A-F]{4} ){9}[0-9A-F]{4})$`,
);
const TESTING = 'TestingTorNetwork 1';
const PEM = /^-----BEGIN CERTIFICATE-----\n(?:[A-Za-z0-9+/=]{1,76}\n)+-----END CERTIFICATE-----\n?$/;
const KEYS = new Set(['format', 'version', 'torrc', 'ca', 'agent', 'destinations']);
const DESTINATION_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const DESTINATION = new RegExp(`^${IPV4}(?::${PORT})?$`);
const MAX_DESTINATIONS = 16;

const portsValid = (line: string) => [...line.matchAll(/(?:orport=|:)(\d+)/g)].every((m) => Number(m[1]) <= 65_535);

function refuse(reason: string): ParsedSettings {
  return { ok: false, reason };
}

/** The one parser: bytes from fw_cfg in, accepted settings or one reason out. Never throws. */
export function parseTestSettings(raw: Buffer | string): ParsedSettings {
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  if (bytes.length === 0) return refuse('empty');
  if (bytes.length > TEST_SETTINGS_MAX_BYTES) return refuse(`${bytes.length} bytes, more than ${TEST_SETTINGS_MAX_BYTES}`);
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) return refuse('not UTF-8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return refuse(`not JSON (${(e as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return refuse('not a JSON object');
  const o = doc as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !KEYS.has(k));
  if (unknown.length) return refuse(`unknown field ${unknown.map((k) => JSON.stringify(k)).join(', ')}`);
  if (o.format !== TEST_SETTINGS_FORMAT) return refuse(`format: expected "${TEST_SETTINGS_FORMAT}"`);
  if (o.version !== TEST_SETTINGS_VERSION) return refuse(`version: expected ${TEST_SETTINGS_VERSION}`);
  if (!Array.isArray(o.torrc) || !o.torrc.every((l) => typeof l === 'string')) return refuse('torrc: expected an array of strings');
  const torrc = o.torrc as string[];
  const bad = torrc.findIndex((l) => l !== TESTING && !(DIR_AUTHORITY.test(l) && portsValid(l)));
  if (bad >= 0) return refuse(`torrc[${bad}]: only "${TESTING}" and DirAuthority lines of a private network are allowed`);
  if (new Set(torrc).size !== torrc.length) return refuse('torrc: a line appears twice');
  if (!torrc.includes(TESTING)) return refuse(`torrc: "${TESTING}" is missing (the authorities are a test network's)`);
  const authorities = torrc.filter((l) => l !== TESTING).length;
  if (authorities < 1 || authorities > MAX_AUTHORITIES) return refuse(`torrc: ${authorities} DirAuthority lines, expected 1 to ${MAX_AUTHORITIES}`);
  if (o.agent !== undefined && typeof o.agent !== 'boolean') return refuse('agent: expected true or false');
  let destinations: Record<string, string> | undefined;
  if (o.destinations !== undefined) {
    const d = o.destinations;
    if (typeof d !== 'object' || d === null || Array.isArray(d)) return refuse('destinations: expected an object of name: "ADDRESS[:PORT]"');
    const entries = Object.entries(d as Record<string, unknown>);
    if (entries.length > MAX_DESTINATIONS) return refuse(`destinations: ${entries.length} entries, at most ${MAX_DESTINATIONS}`);
    for (const [k, v] of entries) {
      if (!DESTINATION_NAME.test(k)) return refuse(`destinations: ${JSON.stringify(k)} is not a destination name`);
      if (typeof v !== 'string' || !DESTINATION.test(v) || !portsValid(v)) return refuse(`destinations.${k}: expected IPv4 ADDRESS[:PORT]`);
    }
    destinations = Object.fromEntries(entries) as Record<string, string>;
  }
  let ca: string | undefined;
  if (o.ca !== undefined) {
    if (typeof o.ca !== 'string' || !PEM.test(o.ca)) return refuse('ca: expected exactly one PEM certificate');
    try {
      const x = new X509Certificate(o.ca);
      if (!x.ca) return refuse('ca: the certificate is not a CA (basicConstraints CA:FALSE or missing)');
    } catch (e) {
      return refuse(`ca: not a certificate (${(e as Error).message})`);
    }
    ca = o.ca.endsWith('\n') ? o.ca : `${o.ca}\n`;
  }
  return { ok: true, settings: { torrc, ...(ca ? { ca } : {}), agent: o.agent === true, ...(destinations ? { destinations } : {}) } };
}

/** The bytes `leakless boot --lab` hands to QEMU; refused here if the guest would refuse them. */
export function encodeTestSettings(s: TestSettings): string {
  const doc = {
    format: TEST_SETTINGS_FORMAT,
    version: TEST_SETTINGS_VERSION,
    torrc: s.torrc,
    ...(s.ca ? { ca: s.ca } : {}),
    agent: s.agent,
    ...(s.destinations ? { destinations: s.destinations } : {}),
  };
  const text = `${JSON.stringify(doc, null, 2)}\n`;
  const back = parseTestSettings(text);
  if (!back.ok) throw new Error(`test settings would be refused by the image: ${back.reason}`);
  return text;
}

/** The torrc.d drop-in an accepted document becomes. */
export function torrcDropIn(s: TestSettings): string {
  return [
    `# Written at boot by leakless-test-settings from the hypervisor's fw_cfg file ${TEST_SETTINGS_FW_CFG}:`,
    '# test-only settings of a lab boot (docs/threat-model.md#test-settings-fw-cfg). Never present on real hardware.',
    ...s.torrc,
    '',
  ].join('\n');
}

/** The self-test's destinations file (leakless-selftest --destinations: NAME=ADDRESS[:PORT] per line) and its switch. */
export function selftestFiles(s: TestSettings): { readonly destinations: string; readonly env: string } | undefined {
  if (!s.destinations || Object.keys(s.destinations).length === 0) return undefined;
  return {
    destinations: Object.entries(s.destinations)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
    env: `${SELFTEST_NETWORK_VAR}=--destinations ${TEST_SETTINGS_PATHS.selftestDestinations}\n`,
  };
}

/** QEMU's arguments that offer a settings file to the guest. */
export function fwCfgArgs(file: string): string[] {
  if (file.includes(',')) throw new Error(`fw_cfg file path must not contain a comma (QEMU option syntax): ${file}`);
  return ['-fw_cfg', `name=${TEST_SETTINGS_FW_CFG},file=${file}`];
}

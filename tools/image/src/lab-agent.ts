// The lab agent's protocol (docs/threat-model.md#test-settings-fw-cfg): what
// `leakless boot --lab` may ask the booted image to do, and what it answers.
// One JSON object per line over the virtio-serial port leakless.lab, which
// only the hypervisor can offer; the agent runs only when the fw_cfg test
// settings were accepted and asked for it. Never a network service: the
// agent listens on no socket, and the guest's network carries none of this.
//
// The agent does a fixed set of things (no command lines from the host): it
// reports state, makes a request or a lookup as a given uid, runs bounded
// senders as given uids, kills tor, restarts the firewall unit, powers off
// with late probes. Every value that reaches a command line is checked here
// first (addresses, ports, uids, tokens, host names, paths), so the guest
// never builds a command from a string this module did not accept.
//
// Pure: types, the request parser, the sender and late-probe scripts (fixed
// text, arguments passed positionally), and the parser of the late lines.

/** Whom an action runs as (setpriv, no supplementary groups). */
export interface Ids {
  readonly uid: number;
  readonly gid: number;
}

export interface SenderSpec {
  /** Shown in reports ("desktop user → Internet TCP"). */
  readonly label: string;
  readonly as: Ids;
  readonly proto: 'tcp' | 'udp';
  readonly host: string;
  readonly port: number;
  /** Sent as the payload, so a packet on the wire names its sender. */
  readonly token: string;
}

export type HttpVia =
  | { readonly kind: 'socks'; readonly address: string; readonly port: number }
  /** From inside the tor-only namespace, through its SocksPort at 127.0.0.1:PORT (leakless-netns-exec, as the desktop user). */
  | { readonly kind: 'netns'; readonly namespace: string; readonly port: number }
  | { readonly kind: 'direct' };

export type AgentRequest =
  | { readonly op: 'status' }
  | {
      readonly op: 'http';
      readonly as: Ids;
      readonly via: HttpVia;
      readonly host: string;
      readonly port: number;
      readonly path: string;
      readonly timeoutMs: number;
    }
  | { readonly op: 'lookup'; readonly as: Ids; readonly name: string }
  | { readonly op: 'senders-start'; readonly window: string; readonly senders: readonly SenderSpec[]; readonly attempts: number; readonly gapMs: number }
  | { readonly op: 'senders-stop'; readonly window: string }
  | { readonly op: 'kill-tor' }
  | { readonly op: 'restart-firewall' }
  /** Where the boot's time went: systemd-analyze time, blame and critical-chain. */
  | { readonly op: 'analyze' }
  /**
   * Power off, with systemd's status lines on the console (the moment each
   * unit stops is then on the serial log) and the late probe installed as a
   * systemd-shutdown hook (after every process was killed).
   */
  | { readonly op: 'shutdown'; readonly senders: readonly SenderSpec[] };

export type AgentCommand = AgentRequest & { readonly id: number };

export interface UnitState {
  readonly active: string;
  readonly sub: string;
  readonly result: string;
}

export interface LinkState {
  readonly name: string;
  readonly mac: string;
  /** The NIC's own address when the current one differs (`ip -d link`: permaddr). */
  readonly permaddr?: string;
  readonly operstate: string;
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
}

export interface AgentStatus {
  readonly uptime: number;
  /** systemctl is-system-running. */
  readonly system: string;
  readonly units: Readonly<Record<string, UnitState>>;
  readonly links: readonly LinkState[];
  /** sha256 of /etc/resolv.conf and of the clearnet resolver file. */
  readonly resolvConf: string;
  readonly clearnetResolvConf: string;
  /** sha256 of `nft list table inet leakless` without counters, or "absent". */
  readonly ruleset: string;
  /** Every table the kernel holds (family name). */
  readonly tables: readonly string[];
  /** Highest "Bootstrapped N%" tor logged. */
  readonly torBootstrap: number;
  readonly htpdate: { readonly done: boolean; readonly success: boolean };
  readonly sysctl: Readonly<Record<string, string>>;
  /** What leakless-test-settings decided (its state file). */
  readonly settings: unknown;
}

export interface HttpOutcome {
  readonly ok: boolean;
  readonly stage: string;
  readonly status?: number;
  readonly body?: string;
  readonly error?: string;
  readonly ms: number;
}

export interface SenderResult {
  readonly label: string;
  readonly token: string;
  readonly attempts: number;
  /** TCP: connected; UDP: the datagram left the socket. */
  readonly sent: number;
  readonly refused: number;
}

export interface AgentReply {
  readonly id: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: string;
}

export type AgentEvent =
  | { readonly ev: 'hello'; readonly uptime: number; readonly settings: unknown }
  /** A journal line of a watched unit, with its monotonic time (µs since boot). */
  | { readonly ev: 'log'; readonly unit: string; readonly line: string; readonly mono: number }
  | { readonly ev: 'error'; readonly error: string };

/** The units the agent reports and follows. */
export const WATCHED_UNITS = [
  'leakless-firewall.service',
  'leakless-netns.service',
  'leakless-test-settings.service',
  'NetworkManager.service',
  'leakless-pretor-time.service',
  'tor@default.service',
  'leakless-htpdate.service',
] as const;

export const LATE_MARKER = 'LEAKLESS-LAB-LATE';

/** The virtio-serial port of the lab agent; the guest sees /dev/virtio-ports/leakless.lab. */
export const LAB_PORT = 'leakless.lab';

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOSTNAME = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const TOKEN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const LABEL = /^[^\x00-\x1f\x7f]{1,80}$/u;
const PATH = /^\/[!-~]{0,200}$/;
const NAMESPACE = /^[a-z][a-z0-9-]{0,14}$/;
const WINDOW = TOKEN;

class Invalid extends Error {}
const fail = (field: string, why: string): never => {
  throw new Invalid(`${field}: ${why}`);
};

function obj(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, 'expected an object');
  return v as Record<string, unknown>;
}
function only(o: Record<string, unknown>, field: string, keys: readonly string[]): void {
  const extra = Object.keys(o).filter((k) => !keys.includes(k));
  if (extra.length) fail(field, `unknown field ${extra.join(', ')}`);
}
function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(field, `expected a whole number from ${min} to ${max}`);
  return v as number;
}
function str(v: unknown, field: string, re: RegExp, what: string): string {
  if (typeof v !== 'string' || !re.test(v)) fail(field, `expected ${what}`);
  return v as string;
}
const ipv4 = (v: unknown, field: string) => str(v, field, IPV4, 'an IPv4 address');
const port = (v: unknown, field: string) => int(v, field, 1, 65_535);

function ids(v: unknown, field: string): Ids {
  const o = obj(v, field);
  only(o, field, ['uid', 'gid']);
  // never root: whatever the agent runs on behalf of the host runs as an ordinary uid
  return { uid: int(o.uid, `${field}.uid`, 1, 2 ** 31 - 2), gid: int(o.gid, `${field}.gid`, 1, 2 ** 31 - 2) };
}

function sender(v: unknown, field: string): SenderSpec {
  const o = obj(v, field);
  only(o, field, ['label', 'as', 'proto', 'host', 'port', 'token']);
  if (o.proto !== 'tcp' && o.proto !== 'udp') fail(`${field}.proto`, 'expected tcp or udp');
  return {
    label: str(o.label, `${field}.label`, LABEL, 'printable text'),
    as: ids(o.as, `${field}.as`),
    proto: o.proto as 'tcp' | 'udp',
    host: ipv4(o.host, `${field}.host`),
    port: port(o.port, `${field}.port`),
    token: str(o.token, `${field}.token`, TOKEN, 'a token [A-Za-z0-9._-]'),
  };
}

function senders(v: unknown, field: string): SenderSpec[] {
  if (!Array.isArray(v) || v.length < 1 || v.length > 8) fail(field, 'expected 1 to 8 senders');
  return (v as unknown[]).map((s, i) => sender(s, `${field}[${i}]`));
}

function via(v: unknown, field: string): HttpVia {
  const o = obj(v, field);
  if (o.kind === 'direct') {
    only(o, field, ['kind']);
    return { kind: 'direct' };
  }
  if (o.kind === 'socks') {
    only(o, field, ['kind', 'address', 'port']);
    return { kind: 'socks', address: ipv4(o.address, `${field}.address`), port: port(o.port, `${field}.port`) };
  }
  if (o.kind === 'netns') {
    only(o, field, ['kind', 'namespace', 'port']);
    return { kind: 'netns', namespace: str(o.namespace, `${field}.namespace`, NAMESPACE, 'a namespace name'), port: port(o.port, `${field}.port`) };
  }
  return fail(`${field}.kind`, 'expected socks, netns or direct');
}

/** One line from the host: a command, or the reason it is refused. */
export function parseCommand(
  line: string,
): { readonly ok: true; readonly cmd: AgentCommand } | { readonly ok: false; readonly id?: number; readonly error: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { ok: false, error: 'not JSON' };
  }
  const id = typeof (raw as { id?: unknown })?.id === 'number' ? (raw as { id: number }).id : undefined;
  try {
    const o = obj(raw, 'command');
    const cid = int(o.id, 'id', 0, 2 ** 31);
    const keys = (...k: string[]) => only(o, String(o.op), ['id', 'op', ...k]);
    let req: AgentRequest;
    switch (o.op) {
      case 'status':
      case 'kill-tor':
      case 'restart-firewall':
      case 'analyze':
        keys();
        req = { op: o.op };
        break;
      case 'http': {
        keys('as', 'via', 'host', 'port', 'path', 'timeoutMs');
        const host = typeof o.host === 'string' && IPV4.test(o.host) ? o.host : str(o.host, 'host', HOSTNAME, 'a host name or IPv4 address');
        req = {
          op: 'http',
          as: ids(o.as, 'as'),
          via: via(o.via, 'via'),
          host,
          port: port(o.port, 'port'),
          path: str(o.path, 'path', PATH, 'an absolute path of printable characters'),
          timeoutMs: int(o.timeoutMs, 'timeoutMs', 100, 120_000),
        };
        break;
      }
      case 'lookup':
        keys('as', 'name');
        req = { op: 'lookup', as: ids(o.as, 'as'), name: str(o.name, 'name', HOSTNAME, 'a host name') };
        break;
      case 'senders-start':
        keys('window', 'senders', 'attempts', 'gapMs');
        req = {
          op: 'senders-start',
          window: str(o.window, 'window', WINDOW, 'a window name'),
          senders: senders(o.senders, 'senders'),
          attempts: int(o.attempts, 'attempts', 1, 10_000),
          gapMs: int(o.gapMs, 'gapMs', 10, 10_000),
        };
        break;
      case 'senders-stop':
        keys('window');
        req = { op: 'senders-stop', window: str(o.window, 'window', WINDOW, 'a window name') };
        break;
      case 'shutdown':
        keys('senders');
        req = { op: 'shutdown', senders: senders(o.senders, 'senders') };
        break;
      default:
        return { ok: false, ...(id !== undefined ? { id } : {}), error: `op: unknown operation ${JSON.stringify(o.op)}` };
    }
    return { ok: true, cmd: { ...req, id: cid } };
  } catch (e) {
    if (e instanceof Invalid) return { ok: false, ...(id !== undefined ? { id } : {}), error: e.message };
    throw e;
  }
}

/**
 * A sender (bash, run as the sender's uid by setpriv): ATTEMPTS tries, GAP
 * seconds apart, each a TCP connection or one UDP datagram carrying TOKEN;
 * prints one summary line, also when stopped early (SIGTERM). bash's
 * /dev/tcp and /dev/udp are plain sockets: what the firewall sees from any
 * program of that uid. Arguments are positional, never interpolated.
 *   bash -c SENDER_SH sender PROTO HOST PORT TOKEN ATTEMPTS GAP
 */
export const SENDER_SH = `proto=$1 host=$2 port=$3 token=$4 n=$5 gap=$6
i=0 sent=0 refused=0
report() { echo "sender token=$token attempts=$i sent=$sent refused=$refused"; exit 0; }
trap report TERM INT
while [ "$i" -lt "$n" ]; do
  i=$((i+1))
  if [ "$proto" = tcp ]; then
    if timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "%s\\n" "$3" >&3' sender "$host" "$port" "$token" 2>/dev/null; then sent=$((sent+1)); else refused=$((refused+1)); fi
  else
    if (printf '%s\\n' "$token" > "/dev/udp/$host/$port") 2>/dev/null; then sent=$((sent+1)); else refused=$((refused+1)); fi
  fi
  sleep "$gap" & wait $!
done
report
`;

export function parseSenderLine(label: string, line: string): SenderResult | undefined {
  const m = /^sender token=(\S+) attempts=(\d+) sent=(\d+) refused=(\d+)$/.exec(line.trim());
  return m ? { label, token: m[1]!, attempts: Number(m[2]), sent: Number(m[3]), refused: Number(m[4]) } : undefined;
}

/**
 * The hash by which "the ruleset is unchanged" is judged, everywhere (the
 * agent's status, the late probes): `nft list table inet leakless` with the
 * counters removed, or "absent". One definition, in bash, because the last
 * probe runs when nothing but the shell is left.
 */
export const RULESET_HASH_SH = `if listing=$(nft list table inet leakless 2>/dev/null); then
  printf '%s\\n' "$listing" | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/g; s/[[:space:]]+$//' | grep -v '^$' | sha256sum | cut -c1-64
else
  echo absent
fi
`;

/**
 * The late probe (bash), for when the agent is gone: systemd-shutdown's last
 * hook, after every process was killed and the file systems were remounted
 * read-only (and, with stage "setup", by the agent before powering off, as
 * the baseline). It prints one line on the console (and stdout): the stage, the
 * uptime, the ruleset hash, the IPv4 addresses still configured, and each
 * sender's counts (5 tries, 0.1 s apart).
 *   LATE_SH with positional arguments: STAGE [UID GID PROTO HOST PORT TOKEN]...
 */
export const LATE_SH = `stage=$1; shift
up=$(cut -d' ' -f1 /proc/uptime)
table=$(${RULESET_HASH_SH})
addrs=$(ip -4 -o addr show scope global 2>/dev/null | awk '{printf "%s=%s,", $2, $4}')
out="${LATE_MARKER} stage=$stage uptime=$up table=$table addrs=\${addrs:-none}"
while [ "$#" -ge 6 ]; do
  r=$(setpriv --reuid="$1" --regid="$2" --clear-groups -- bash -c "$SENDER" sender "$3" "$4" "$5" "$6" 5 0.1 2>/dev/null | tail -n 1)
  out="$out | \${r:-sender token=$6 attempts=0 sent=0 refused=0}"
  shift 6
done
printf '%s\\n' "$out"
printf '%s\\n' "$out" > /dev/console 2>/dev/null || true
`;

const SAFE_ARG = /^[A-Za-z0-9._-]+$/;

/**
 * The whole late probe as one executable file: the sender's text in a quoted
 * here-document, the arguments (checked by parseCommand: digits, IPv4
 * addresses, tokens) in single quotes, then LATE_SH.
 */
export function lateScript(stage: string, senders: readonly SenderSpec[]): string {
  const args = [stage, ...senders.flatMap((s) => [s.as.uid, s.as.gid, s.proto, s.host, s.port, s.token])].map(String);
  const bad = args.find((a) => !SAFE_ARG.test(a));
  if (bad !== undefined) throw new Error(`late probe: unsafe argument ${JSON.stringify(bad)}`);
  return [
    '#!/bin/bash',
    `# leakless lab boot: late probe (${stage}); written at run time by the lab agent, gone at power-off`,
    "read -r -d '' SENDER <<'LEAKLESS_SENDER'",
    SENDER_SH.trimEnd(),
    'LEAKLESS_SENDER',
    'export SENDER',
    `set -- ${args.map((a) => `'${a}'`).join(' ')}`,
    LATE_SH,
  ].join('\n');
}

export interface LateReport {
  readonly stage: string;
  readonly uptime: number;
  readonly table: string;
  readonly addrs: string;
  readonly senders: readonly SenderResult[];
}

/** Every late line in a serial console log. */
export function parseLateLines(serial: string): LateReport[] {
  const out: LateReport[] = [];
  for (const line of serial.split(/\r?\n/)) {
    const i = line.indexOf(`${LATE_MARKER} `);
    if (i < 0) continue;
    const [head, ...rest] = line
      .slice(i + LATE_MARKER.length + 1)
      .trim()
      .split(' | ');
    const m = /^stage=(\S+) uptime=([\d.]+) table=(\S+) addrs=(\S+)$/.exec(head ?? '');
    if (!m) continue;
    out.push({
      stage: m[1]!,
      uptime: Number(m[2]),
      table: m[3]!,
      addrs: m[4]!,
      senders: rest.map((r) => parseSenderLine('late', r)).filter((r): r is SenderResult => r !== undefined),
    });
  }
  return out;
}

// @leakless/htpdate: the consented pre-Tor time check, the root
// clock-setting helper and htpdate through Tor (docs/threat-model.md#time), as bundled Node tools, their config file and their systemd units.
import { readFileSync } from 'node:fs';
import {
  UNITS,
  emission,
  loadTemplate,
  parseUnit,
  sha256,
  unitOfPath,
  unitValues,
  unitWords,
  type Emission,
  type GeneratedFile,
  type Policy,
  type RuntimeAssertion,
  type StaticAssertion,
  type SystemUser,
} from '@leakless/policy';
import { confLines, parseTimeConf, type TimeConfig } from './runtime/config.js';
import { htpdateUnitSeconds, pretorUnitSeconds } from './runtime/limits.js';
import { CONFIG_FILE, HTPDATE_UNIT, TOOL_PATHS, UNIT_DIR, clauseOf, timeConfigOf } from './settings.js';
import { SHEBANG, bundleFile } from './bundle.js';

export { EXIT } from './runtime/exit-codes.js';
export type { Outcome } from './runtime/exit-codes.js';
export { parseTimeConf, confLines } from './runtime/config.js';
export type { TimeConfig, PreTorConfig, HtpConfig } from './runtime/config.js';
export { connectivityRequest, parsePlainHttpUrl, headRequest } from './runtime/http.js';
export { CONFIG_FILE, HTPDATE_UNIT, TOOL_PATHS, CA_FILE, timeConfigOf } from './settings.js';

export const name = 'htpdate';

type ToolName = keyof typeof TOOL_PATHS;

/** The built bundle of a tool (dist/tools/<tool>.cjs, made by `npm run build`; bundle.test.ts fails when it is stale). */
export function bundledTool(tool: ToolName, dir?: string): string {
  const file = bundleFile(tool, dir);
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new Error(`@leakless/htpdate: the ${tool} tool is not built (${file} is missing); run \`npm run build\` (tsc -b, then the htpdate bundles)`);
  }
}

const renderConf = loadTemplate<{ lines: readonly { key: string; value: string; clause: string }[] }>(import.meta.url, 'time.conf.ejs', ['lines']);
const renderPretorUnit = loadTemplate<{ user: string; torUnit: string; htpdateUnit: string; networkManager: string; tool: string; timeoutStartSec: number }>(
  import.meta.url,
  'pretor-time.service.ejs',
  ['user', 'torUnit', 'htpdateUnit', 'networkManager', 'tool', 'timeoutStartSec'],
);
const renderHtpdateUnit = loadTemplate<{
  user: string;
  socksPort: string;
  poolCount: number;
  torUnit: string;
  pretorUnit: string;
  tool: string;
  torGid: number;
  allowedAddresses: string;
  controlSocket: string;
  bootstrapTimeout: number;
  timeoutStartSec: number;
}>(import.meta.url, 'htpdate.service.ejs', [
  'user',
  'socksPort',
  'poolCount',
  'torUnit',
  'pretorUnit',
  'tool',
  'torGid',
  'allowedAddresses',
  'controlSocket',
  'bootstrapTimeout',
  'timeoutStartSec',
]);

export function renderTimeConf(policy: Policy, cfg: TimeConfig): string {
  let pool = 0;
  const lines = confLines(cfg).map((l) => ({ ...l, clause: l.key === 'htp-pool' ? `time.htpdate.pools[${pool++}]` : clauseOf(policy, l.key) }));
  return renderConf({ lines });
}

/** Capabilities each unit may keep: drop to the unprivileged user, set the clock. */
export const UNIT_CAPABILITIES = ['CAP_SETGID', 'CAP_SETUID', 'CAP_SYS_TIME'] as const;
const HARDENING: readonly [string, string][] = [
  ['NoNewPrivileges', 'yes'],
  ['PrivateDevices', 'yes'],
  ['PrivateTmp', 'yes'],
  ['ProtectHome', 'yes'],
  ['ProtectSystem', 'full'],
];

interface Parts {
  readonly cfg: TimeConfig;
  readonly pretorUnit: string | undefined;
  readonly files: GeneratedFile[];
}

function parts(policy: Policy): Parts {
  const cfg = timeConfigOf(policy);
  const t = policy.document.time;
  const pretorUnit = policy.preTorCheckUnit;
  const tool = (tool: ToolName, clause: string): GeneratedFile => ({ path: TOOL_PATHS[tool], content: bundledTool(tool), mode: 0o755, clause });
  const files: GeneratedFile[] = [
    { path: CONFIG_FILE, content: renderTimeConf(policy, cfg), mode: 0o644, clause: 'time' },
    tool('htpdate', 'time.htpdate'),
    tool('set-clock', 'time (the root clock-setting helper)'),
    {
      path: `${UNIT_DIR}/${HTPDATE_UNIT}`,
      content: renderHtpdateUnit({
        user: t.htpdate.user,
        socksPort: t.htpdate.socksPort,
        poolCount: t.htpdate.pools.length,
        torUnit: policy.torUnit,
        pretorUnit: pretorUnit ?? '',
        tool: TOOL_PATHS.htpdate,
        torGid: policy.torUser.gid,
        allowedAddresses: cfg.htp.socks.address,
        controlSocket: cfg.torControl.socket,
        bootstrapTimeout: cfg.htp.bootstrapTimeoutSeconds,
        timeoutStartSec: htpdateUnitSeconds(cfg.htp),
      }),
      mode: 0o644,
      clause: 'time.htpdate',
    },
  ];
  if (pretorUnit && cfg.pretor) {
    files.push(tool('pretor-time', 'time.preTorCheck'), {
      path: `${UNIT_DIR}/${pretorUnit}`,
      content: renderPretorUnit({
        user: t.preTorCheck.user,
        torUnit: policy.torUnit,
        htpdateUnit: HTPDATE_UNIT,
        networkManager: UNITS.networkManager,
        tool: TOOL_PATHS['pretor-time'],
        timeoutStartSec: pretorUnitSeconds(cfg.pretor),
      }),
      mode: 0o644,
      clause: 'time.preTorCheck',
    });
  }
  return { cfg, pretorUnit, files };
}

function staticAssertions(p: Parts): StaticAssertion[] {
  const unitPaths = [`${UNIT_DIR}/${HTPDATE_UNIT}`, ...(p.pretorUnit ? [`${UNIT_DIR}/${p.pretorUnit}`] : [])];
  const toolPaths: readonly string[] = Object.values(TOOL_PATHS);
  const tools = p.files.filter((f) => toolPaths.includes(f.path));
  return [
    {
      id: 'htpdate.config-matches-policy',
      statement: 'time.conf, read by the tools’ own parser, holds exactly the policy’s time settings',
      check: ({ tree, policy }) => {
        const text = tree.read(CONFIG_FILE);
        if (text === undefined) return { ok: false, detail: `${CONFIG_FILE} missing` };
        let got: TimeConfig;
        try {
          got = parseTimeConf(text);
        } catch (e) {
          return { ok: false, detail: `${CONFIG_FILE}: ${(e as Error).message}` };
        }
        const want = timeConfigOf(policy);
        const same = JSON.stringify(got) === JSON.stringify(want);
        return { ok: same, detail: same ? `${CONFIG_FILE} parses to the policy's values` : `${CONFIG_FILE} differs from the policy` };
      },
    },
    {
      id: 'htpdate.tools-bundled',
      statement: `each time tool is its built single-file bundle, executable, run by ${SHEBANG.slice(2)}`,
      check: ({ tree }) => {
        const bad = tools.filter((f) => tree.read(f.path) !== f.content || tree.mode(f.path) !== 0o755 || !f.content.startsWith(`${SHEBANG}\n`));
        return { ok: tools.length > 0 && bad.length === 0, detail: bad.length ? `${bad[0]!.path} is not the bundle (or not 0755)` : `${tools.length} tools` };
      },
    },
    {
      id: 'htpdate.units-hardened',
      statement:
        'the time units keep only CAP_SETUID/SETGID/SYS_TIME and have the sandboxing of docs/threat-model.md#time-units (ProtectSystem=full, PrivateTmp, PrivateDevices, ProtectHome, NoNewPrivileges)',
      check: ({ tree }) => {
        for (const path of unitPaths) {
          const text = tree.read(path);
          if (text === undefined) return { ok: false, detail: `${path} missing` };
          const u = parseUnit(text);
          const caps = [...unitWords(u, 'Service', 'CapabilityBoundingSet')].sort();
          if (caps.join(' ') !== UNIT_CAPABILITIES.join(' ')) return { ok: false, detail: `${path}: CapabilityBoundingSet=${caps.join(' ')}` };
          const missing = HARDENING.find(([k, v]) => unitValues(u, 'Service', k).join() !== v);
          if (missing) return { ok: false, detail: `${path}: ${missing[0]} is not ${missing[1]}` };
          if (unitWords(u, 'Service', 'RestrictAddressFamilies').includes('AF_INET6')) return { ok: false, detail: `${path}: allows AF_INET6` };
          if (path.endsWith(HTPDATE_UNIT)) {
            const allow = [...unitWords(u, 'Service', 'IPAddressAllow')].sort().join(' ');
            const want = p.cfg.htp.socks.address;
            if (unitValues(u, 'Service', 'IPAddressDeny').join() !== 'any' || allow !== want)
              return { ok: false, detail: `${path}: IP not limited to ${want}` };
          }
        }
        return { ok: true, detail: `${unitPaths.length} units hardened` };
      },
    },
    {
      id: 'htpdate.ordering',
      statement: 'htpdate runs after tor and waits for its bootstrap; the pre-Tor check runs before tor',
      check: ({ tree, policy }) => {
        const h = parseUnit(tree.read(unitPaths[0]!) ?? '');
        if (!unitWords(h, 'Unit', 'After').includes(policy.torUnit)) return { ok: false, detail: `${HTPDATE_UNIT} is not After=${policy.torUnit}` };
        if (!unitValues(h, 'Service', 'ExecStartPre').includes(`${TOOL_PATHS.htpdate} wait-bootstrap`))
          return { ok: false, detail: `${HTPDATE_UNIT} does not wait for the bootstrap` };
        if (p.pretorUnit) {
          const pre = parseUnit(tree.read(unitPaths[1]!) ?? '');
          if (!unitWords(pre, 'Unit', 'Before').includes(policy.torUnit)) return { ok: false, detail: `${p.pretorUnit} is not Before=${policy.torUnit}` };
        }
        return { ok: true, detail: `${HTPDATE_UNIT} after ${policy.torUnit} and its bootstrap${p.pretorUnit ? `; ${p.pretorUnit} before it` : ''}` };
      },
    },
    {
      id: 'htpdate.waits-bounded',
      statement:
        'every time unit has a finite TimeoutStartSec above the longest run its tool allows itself (bootstrap wait, every host of the longest pool timing out, the clock setter), so a silent server or a tor that never bootstraps ends in a named failure',
      check: ({ tree }) => {
        let c: TimeConfig;
        try {
          c = parseTimeConf(tree.read(CONFIG_FILE) ?? '');
        } catch (e) {
          return { ok: false, detail: (e as Error).message };
        }
        const want = [htpdateUnitSeconds(c.htp), ...(c.pretor ? [pretorUnitSeconds(c.pretor)] : [])];
        const got: string[] = [];
        for (const [i, path] of unitPaths.entries()) {
          const v = unitValues(parseUnit(tree.read(path) ?? ''), 'Service', 'TimeoutStartSec');
          const secs = v.length === 1 && /^\d+$/.test(v[0]!) ? Number(v[0]) : undefined;
          if (secs === undefined || secs < want[i]!)
            return { ok: false, detail: `${path}: TimeoutStartSec=${v.join(',') || 'unset'}, needs a number ≥ ${want[i]}` };
          got.push(`${path.slice(path.lastIndexOf('/') + 1)} ${secs} s`);
        }
        return { ok: true, detail: got.join(', ') };
      },
    },
    {
      id: 'htpdate.pretor-only-with-consent',
      statement: 'the pre-Tor check (tool, unit, config) exists if and only if time.preTorCheck.enabled',
      check: ({ tree, policy }) => {
        const enabled = policy.document.time.preTorCheck.enabled;
        // by unit name in the unit directories, so a disabled policy is checked against the name an enabled one
        // would use; not an enable link or deb-systemd-helper's state file of the same name (an installed system)
        const isUnit = (x: string) => unitOfPath(x)?.unit === UNITS.preTorTime && !unitOfPath(x)?.dropIn;
        const present = [TOOL_PATHS['pretor-time'], ...tree.paths().filter(isUnit)].filter((x) => tree.read(x) !== undefined);
        const inConf = /^pretor-/m.test(tree.read(CONFIG_FILE) ?? '');
        const ok = enabled ? present.length === 2 && inConf : present.length === 0 && !inConf;
        return { ok, detail: `enabled=${enabled}; ${present.length} pre-Tor files, config ${inConf ? 'has' : 'has no'} pretor-* keys` };
      },
    },
    {
      id: 'htpdate.principals',
      statement: 'the pre-Tor request runs as a clearnet-role user; htpdate runs as a client of the SocksPort it uses',
      check: ({ tree, policy }) => {
        let c: TimeConfig;
        try {
          c = parseTimeConf(tree.read(CONFIG_FILE) ?? '');
        } catch (e) {
          return { ok: false, detail: (e as Error).message };
        }
        const sp = policy.socksPorts.find((s) => s.address === c.htp.socks.address && s.port === c.htp.socks.port);
        if (!sp?.clients.some((u) => u.uid === c.htp.uid))
          return { ok: false, detail: `uid ${c.htp.uid} is not a client of ${c.htp.socks.address}:${c.htp.socks.port}` };
        if (c.pretor && !policy.clearnetUsers.some((u) => u.uid === c.pretor!.uid))
          return { ok: false, detail: `pretor uid ${c.pretor.uid} is not a clearnet user` };
        if (c.htp.uid === 0 || c.pretor?.uid === 0) return { ok: false, detail: 'a network half would run as root' };
        return { ok: true, detail: `htp uid ${c.htp.uid} → SocksPort ${sp.name}${c.pretor ? `; pre-Tor as uid ${c.pretor.uid}` : ''}` };
      },
    },
  ];
}

function runtimeAssertions(p: Parts, users: readonly SystemUser[]): RuntimeAssertion[] {
  return [
    ...p.files.map((f) => ({
      id: `htpdate.file.${f.path}`,
      statement: `${f.path} is installed as emitted`,
      check: { kind: 'file' as const, path: f.path, sha256: sha256(f.content), mode: f.mode },
      scope: 'system' as const,
    })),
    ...users.map((u) => ({
      id: `htpdate.user.${u.name}`,
      statement: `${u.name} exists with uid ${u.uid} gid ${u.gid}`,
      check: { kind: 'user' as const, name: u.name, uid: u.uid, gid: u.gid },
      scope: 'system' as const,
    })),
  ];
}

export function emit(policy: Policy): Emission {
  const p = parts(policy);
  const t = policy.document.time;
  const names = [t.htpdate.user, ...(t.preTorCheck.enabled ? [t.preTorCheck.user] : [])];
  const users: SystemUser[] = names.map((n) => policy.userByName(n)).map((u) => ({ name: u.name, uid: u.uid, gid: u.gid }));
  return emission(name, {
    files: p.files,
    // nodejs runs the bundles (Debian's, Node 18 in bookworm); ca-certificates holds htpdate's trust anchors
    packages: ['nodejs', 'ca-certificates'],
    users,
    units: [HTPDATE_UNIT, ...(p.pretorUnit ? [p.pretorUnit] : [])],
    staticAssertions: staticAssertions(p),
    runtimeAssertions: runtimeAssertions(p, users),
  });
}

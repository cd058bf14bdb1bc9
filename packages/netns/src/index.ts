// @leakless/netns: per-application network namespaces from the policy — a
// tor-only namespace that reaches one SocksPort and nothing else, a clearnet
// namespace routed out through the host that reaches no local service — with
// the systemd unit and script that create them and the launcher that runs an
// application inside one as the desktop user.
import {
  UNITS,
  emission,
  loadTemplate,
  sha256,
  type Emission,
  type GeneratedFile,
  type Policy,
  type ResolvedNamespace,
  type RuntimeAssertion,
} from '@leakless/policy';
import {
  AFTER_IP_FORWARD,
  ETC_NETNS,
  FIREWALL_UNIT,
  GENERIC_HOSTNAME,
  KEPT_ENVIRONMENT,
  LAUNCHER,
  SETUP_SCRIPT,
  UDEV_RULES,
  UNIT,
  UNIT_PATH,
  expectedAddresses,
  expectedRoutes,
  nftFile,
  planNamespaces,
  type NamespacePlan,
  type Setting,
} from './layout.js';
import { staticAssertions } from './assertions.js';

export {
  SETUP_SCRIPT,
  LAUNCHER,
  UNIT,
  UNIT_PATH,
  NFT_DIR,
  UDEV_RULES,
  ETC_NETNS,
  NS_TABLE,
  GENERIC_HOSTNAME,
  FIREWALL_UNIT,
  KEPT_ENVIRONMENT,
  AFTER_IP_FORWARD,
  planNamespace,
  planNamespaces,
  expectedRoutes,
  expectedAddresses,
  nftFile,
} from './layout.js';
export type { Setting, NamespacePlan } from './layout.js';
export { staticAssertions } from './assertions.js';

export const name = 'netns';
const CLAUSE = 'netns.namespaces';
const FORWARDING_CLAUSE = 'netns.namespaces kind clearnet';
const LAUNCHER_CLAUSE = `${CLAUSE} user, sockets`;

const renderSetup = loadTemplate<{
  clause: string;
  unit: string;
  firewallUnit: string;
  plans: readonly NamespacePlan[];
  forwarding: boolean;
  forwardingClause: string;
  afterIpForward: readonly Setting[];
  etcNetns: string;
}>(import.meta.url, 'netns-setup.sh.ejs', ['clause', 'unit', 'firewallUnit', 'plans', 'forwarding', 'forwardingClause', 'afterIpForward', 'etcNetns']);
const renderLauncher = loadTemplate<{
  self: string;
  clause: string;
  unit: string;
  hostname: string;
  names: readonly string[];
  namespaces: readonly ResolvedNamespace[];
  keep: readonly string[];
}>(import.meta.url, 'leakless-netns-exec.sh.ejs', ['self', 'clause', 'unit', 'hostname', 'names', 'namespaces', 'keep']);
const renderUnit = loadTemplate<{ clause: string; names: readonly string[]; firewallUnit: string; script: string; networkPre: string; networkManager: string }>(
  import.meta.url,
  'leakless-netns.service.ejs',
  ['clause', 'names', 'firewallUnit', 'script', 'networkPre', 'networkManager'],
);
const renderTorOnlyResolv = loadTemplate<{ name: string; clause: string }>(import.meta.url, 'resolv-tor-only.conf.ejs', ['name', 'clause']);
const renderUdev = loadTemplate<{ clause: string; namespaces: readonly ResolvedNamespace[] }>(import.meta.url, 'udev-nm-unmanaged.rules.ejs', [
  'clause',
  'namespaces',
]);

export function renderFiles(plans: readonly NamespacePlan[]): GeneratedFile[] {
  const names = plans.map((p) => p.ns.name);
  const files: GeneratedFile[] = [];
  if (plans.length === 0) return files;
  files.push({
    path: SETUP_SCRIPT,
    content: renderSetup({
      clause: CLAUSE,
      unit: UNIT,
      firewallUnit: FIREWALL_UNIT,
      plans,
      forwarding: plans.some((p) => p.ns.kind === 'clearnet'),
      forwardingClause: FORWARDING_CLAUSE,
      afterIpForward: AFTER_IP_FORWARD,
      etcNetns: ETC_NETNS,
    }),
    mode: 0o755,
    clause: CLAUSE,
  });
  files.push({
    path: UNIT_PATH,
    content: renderUnit({
      clause: CLAUSE,
      names,
      firewallUnit: FIREWALL_UNIT,
      script: SETUP_SCRIPT,
      networkPre: UNITS.networkPre,
      networkManager: UNITS.networkManager,
    }),
    mode: 0o644,
    clause: CLAUSE,
  });
  files.push({
    path: LAUNCHER,
    content: renderLauncher({
      self: 'leakless-netns-exec',
      clause: LAUNCHER_CLAUSE,
      unit: UNIT,
      hostname: GENERIC_HOSTNAME,
      names,
      namespaces: plans.map((p) => p.ns),
      keep: KEPT_ENVIRONMENT,
    }),
    mode: 0o755,
    clause: LAUNCHER_CLAUSE,
  });
  files.push({ path: UDEV_RULES, content: renderUdev({ clause: CLAUSE, namespaces: plans.map((p) => p.ns) }), mode: 0o644, clause: CLAUSE });
  for (const p of plans) {
    files.push({
      path: p.nftPath,
      content: nftFile(p),
      mode: 0o644,
      clause: p.ns.clause,
    });
    if (p.resolvConf.kind === 'file')
      files.push({ path: p.resolvConf.path, content: renderTorOnlyResolv({ name: p.ns.name, clause: p.ns.clause }), mode: 0o644, clause: p.ns.clause });
  }
  return files;
}

export function runtimeAssertions(plans: readonly NamespacePlan[], files: readonly GeneratedFile[]): RuntimeAssertion[] {
  if (plans.length === 0) return [];
  const out: RuntimeAssertion[] = [
    { id: 'netns.unit-active', statement: `${UNIT} is active (the namespaces exist)`, check: { kind: 'unit-active', unit: UNIT }, scope: 'system' },
  ];
  if (plans.some((p) => p.ns.kind === 'clearnet'))
    for (const s of AFTER_IP_FORWARD)
      out.push({
        id: `netns.after-ip-forward.${s.key}`,
        statement: `after ${UNIT} wrote ip_forward: ${s.key} = ${s.value}`,
        check: { kind: 'sysctl', key: s.key, expected: s.value },
        scope: 'system',
      });
  for (const p of plans) {
    const u = p.ns.user;
    out.push({
      id: `netns.${p.ns.name}.user`,
      statement: `${p.ns.name}'s applications run as ${u.name} (${u.uid}:${u.gid})`,
      check: { kind: 'user', name: u.name, uid: u.uid, gid: u.gid },
      scope: 'system',
    });
  }
  for (const p of plans) {
    const n = p.ns.name;
    // scope system: the namespaces exist only once the unit has run (the lab runs the same script).
    for (const s of p.nsSysctls)
      out.push({
        id: `netns.${n}.sysctl.${s.key}`,
        statement: `inside ${n}: ${s.key} = ${s.value}`,
        check: { kind: 'sysctl', key: s.key, expected: s.value },
        scope: 'system',
        netns: n,
      });
    for (const s of p.hostSysctls)
      out.push({
        id: `netns.${n}.host-sysctl.${s.key}`,
        statement: `host side of ${n}: ${s.key} = ${s.value}`,
        check: { kind: 'sysctl', key: s.key, expected: s.value },
        scope: 'system',
      });
    out.push({
      id: `netns.${n}.addresses`,
      statement: `inside ${n} a process sees only loopback and its end of the /30, no routable address`,
      check: { kind: 'ip-addresses', expected: expectedAddresses(p) },
      scope: 'system',
      netns: n,
    });
    out.push({
      id: `netns.${n}.routes`,
      statement: p.defaultVia ? `${n} routes only through the host side of its veth` : `${n} has no route beyond its /30 (tor-only)`,
      check: { kind: 'ip-routes', expected: expectedRoutes(p) },
      scope: 'system',
      netns: n,
    });
    if (p.resolvConf.kind === 'file') {
      const f = files.find((x) => x.path === p.resolvConf.path)!;
      out.push({
        id: `netns.${n}.resolv-conf`,
        statement: `${p.resolvConf.path} is the emitted one (no reachable resolver in ${n})`,
        check: { kind: 'file', path: f.path, sha256: sha256(f.content), mode: f.mode },
        scope: 'system',
      });
    }
  }
  return out;
}

export function emit(policy: Policy): Emission {
  const plans = planNamespaces(policy);
  const files = renderFiles(plans);
  return emission(name, {
    files,
    // ip, nft, sysctl, unshare + setpriv + setsid, hostname (Essential), bash (Essential) for the launcher
    packages: plans.length ? ['iproute2', 'nftables', 'procps', 'util-linux'] : [],
    users: plans.map((p) => ({ name: p.ns.user.name, uid: p.ns.user.uid, gid: p.ns.user.gid })),
    units: plans.length ? [UNIT] : [],
    staticAssertions: staticAssertions(policy, plans),
    runtimeAssertions: runtimeAssertions(plans, files),
  });
}

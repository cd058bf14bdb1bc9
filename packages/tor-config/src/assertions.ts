// Static assertions (on the emitted tree or a built rootfs) and runtime
// assertions (lab, booted image) of the tor-config module.
import {
  CLEARNET_RESOLVER_DROPIN,
  PATHS,
  aptSourceFiles,
  parseAptSources,
  checkResult,
  unitDropInDirs,
  sha256,
  type GeneratedFile,
  type Policy,
  type RuntimeAssertion,
  type StaticAssertion,
  type ToolRunner,
  type TreeReader,
} from '@leakless/policy';
import { APT_PROXY_CONF, APT_SOURCES, ENVIRONMENT, TORSOCKS_CONF, aptSocksPort, aptUser, systemSocksPort } from './apps.js';
import { TORRC, TORRC_D_GLOB, controlSocketValue, listenerValue, reachableValue, sandboxValue, transportPluginValue } from './torrc.js';
import { pluginCheck } from './plugin.js';
import { parseDump, runTor, type TorRun } from './verify.js';
import { TOR_CONTROL } from '@leakless/policy/names';

// Several assertions (and the cross-module checks) read tor's effective configuration of the same tree: run tor once per tree.
const dumps = new WeakMap<TreeReader, Promise<TorRun>>();
export function dumpOf(tree: TreeReader, run: ToolRunner): Promise<TorRun> {
  const cached = dumps.get(tree);
  if (cached) return cached;
  const d = runTor('dump', tree, run);
  dumps.set(tree, d);
  return d;
}

/** tor's vendor drop-in directory: the drop-in binding the clearnet resolver file over /etc/resolv.conf is this module's; its name is the policy layer's. */
export function unitDropInDir(policy: Policy): string {
  return `${PATHS.units}/${policy.torUnit}.d`;
}
export const UNIT_DROPIN_NAME = CLEARNET_RESOLVER_DROPIN;

/** Listener options tor must have exactly as the policy says; unset ones must stay unset. */
function expectedListeners(policy: Policy): Record<string, readonly string[]> {
  return {
    SocksPort: policy.socksPorts.map(listenerValue),
    ControlPort: [listenerValue(policy.controlPort)],
    ControlSocket: [controlSocketValue()],
    DNSPort: [listenerValue(policy.dnsPort)],
    TransPort: [listenerValue(policy.transPort)],
    NATDPort: [],
    HTTPTunnelPort: [],
    ORPort: [],
    DirPort: [],
    ExtORPort: [],
    MetricsPort: [],
  };
}

function expectedSettings(policy: Policy): Record<string, readonly string[]> {
  const reach = policy.torReachablePorts ? [reachableValue(policy.torReachablePorts)] : [];
  return {
    VirtualAddrNetworkIPv4: [policy.automapRange],
    AutomapHostsOnResolve: ['1'],
    CookieAuthentication: ['1'],
    CookieAuthFile: [TOR_CONTROL.cookie],
    CookieAuthFileGroupReadable: ['1'],
    Sandbox: [sandboxValue(policy)],
    // Without bridges, a stray "UseBridges 1" alone fails closed (no first hop); crosscheck compares it both ways.
    ...(policy.torBridges ? { UseBridges: ['1'] } : {}),
    Bridge: policy.torBridges?.lines.map((l) => l.torrc) ?? [],
    ClientTransportPlugin: [transportPluginValue(policy) ?? []].flat(),
    AvoidDiskWrites: ['1'],
    ReachableAddresses: reach,
    ReachableORAddresses: reach,
    ReachableDirAddresses: reach,
    ...(policy.document.ipv6.enabled ? {} : { ClientUseIPv6: ['0'] }),
  };
}

/** Compare tor's effective configuration with the policy. Exported for tests. */
export function effectiveConfigProblems(dump: Map<string, string[]>, policy: Policy): string[] {
  const problems: string[] = [];
  const want = { ...expectedListeners(policy), ...expectedSettings(policy) };
  for (const [option, values] of Object.entries(want)) {
    const got = [...(dump.get(option) ?? [])].sort();
    const exp = [...values].sort();
    if (JSON.stringify(got) !== JSON.stringify(exp))
      problems.push(`${option}: tor has [${got.join(' | ') || 'unset'}], the policy says [${exp.join(' | ') || 'unset'}]`);
  }
  return problems;
}

/** key=value lines of a simple env-style file (comments and blanks skipped). */
function assignments(text: string | undefined, sep: RegExp): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of (text ?? '').split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const i = t.search(sep);
    if (i > 0) m.set(t.slice(0, i), t.slice(i).replace(sep, '').trim());
  }
  return m;
}

function appsProblems(tree: TreeReader, policy: Policy): string[] {
  const problems: string[] = [];
  const sys = systemSocksPort(policy);
  const env = tree.read(ENVIRONMENT);
  const ts = tree.read(TORSOCKS_CONF);
  if (!sys) {
    if (env?.includes('SOCKS')) problems.push(`${ENVIRONMENT} names a SocksPort but the desktop user is a client of none`);
    return problems;
  }
  const want = `${sys.address}:${sys.port}`;
  const e = assignments(env, /=/);
  for (const k of ['SOCKS_SERVER', 'SOCKS5_SERVER']) if (e.get(k) !== want) problems.push(`${ENVIRONMENT}: ${k} is ${e.get(k) ?? 'unset'}, expected ${want}`);
  const t = assignments(ts, /\s/);
  if (t.get('TorAddress') !== sys.address || t.get('TorPort') !== String(sys.port))
    problems.push(`${TORSOCKS_CONF}: TorAddress/TorPort ${t.get('TorAddress')}:${t.get('TorPort')}, expected ${want}`);
  if (t.get('AllowInbound') === '1') problems.push(`${TORSOCKS_CONF}: AllowInbound must stay off`);
  return problems;
}

function aptProblems(tree: TreeReader, policy: Policy): string[] {
  const problems: string[] = [];
  const u = aptUser(policy);
  if (!u) return tree.read(APT_PROXY_CONF) ? [`${APT_PROXY_CONF} exists but the policy has no _apt user`] : [];
  const port = aptSocksPort(policy);
  if (!port) return [`_apt (uid ${u.uid}) is a client of no loopback SocksPort: APT could not download anything`];
  if (policy.dnsPort.clients.some((c) => c.uid === u.uid)) problems.push('_apt is a DNSPort client: APT needs no DNS (socks5h), Tails refuses it');
  if (policy.transPort.clients.some((c) => c.uid === u.uid)) problems.push('_apt is a TransPort client: APT must use its SocksPort');
  const conf = tree.read(APT_PROXY_CONF) ?? '';
  const m = /^Acquire::tor::proxy "socks5h:\/\/[^@"]+@([0-9.]+):(\d+)";$/m.exec(conf);
  if (!m) problems.push(`${APT_PROXY_CONF}: no socks5h Acquire::tor::proxy`);
  else if (m[1] !== port.address || Number(m[2]) !== port.port)
    problems.push(`${APT_PROXY_CONF}: proxy ${m[1]}:${m[2]}, expected the ${port.name} SocksPort ${port.address}:${port.port}`);
  return [...problems, ...aptSourceProblems(tree)];
}

// A local repository (file:, copy:, cdrom:) sends nothing; every other source
// must be tor+http(s), or apt would try it in the clear (Tails' APT sources).
const THROUGH_TOR_OR_LOCAL = /^(tor\+https?:\/\/|file:|copy:|cdrom:)/;

/** Every source apt reads (sources.list and sources.list.d, one-line and deb822): none in the clear, and at least one. */
function aptSourceProblems(tree: TreeReader): string[] {
  const problems: string[] = [];
  let entries = 0;
  for (const file of aptSourceFiles(tree.paths())) {
    for (const e of parseAptSources(file, tree.read(file) ?? '')) {
      entries++;
      for (const uri of e.uris) if (!THROUGH_TOR_OR_LOCAL.test(uri)) problems.push(`${file}: not through tor: ${e.types.join(' ')} ${uri}`);
    }
  }
  if (entries === 0) problems.push(`${APT_SOURCES}: no sources`);
  return problems;
}

export function staticAssertions(policy: Policy): StaticAssertion[] {
  return [
    {
      id: 'tor.verify-config',
      statement: "tor --verify-config accepts the emitted torrc with its torrc.d drop-ins and Debian's tor-service-defaults-torrc",
      tools: ['tor', 'sh'],
      async check({ tree, run }) {
        const r = await runTor('verify', tree, run);
        return r.ok ? { ok: /Configuration was valid/.test(r.stdout), detail: 'Configuration was valid' } : { ok: false, detail: r.problem! };
      },
    },
    {
      id: 'tor.effective-config',
      statement:
        "tor's effective configuration (Debian defaults + torrc + drop-ins) has exactly the policy's listeners and the one control socket of privileged clients (no unix SocksPort left from Debian's defaults), automap range, Sandbox, AvoidDiskWrites, cookie auth with the cookie where clients read it, and reachable ports",
      tools: ['tor', 'sh'],
      async check({ tree, run }) {
        const r = await dumpOf(tree, run);
        if (!r.ok) return { ok: false, detail: r.problem! };
        return checkResult(
          effectiveConfigProblems(parseDump(r.stdout), policy),
          `${policy.torListeners.length} listeners and every setting as the policy says`,
        );
      },
    },
    {
      id: 'tor.base-read-only',
      statement: 'the base torrc is writable by root only and ends with the %include of the drop-in directory, so local changes never edit it',
      check({ tree }) {
        const text = tree.read(TORRC);
        const mode = tree.mode(TORRC);
        if (text === undefined || mode === undefined) return { ok: false, detail: `${TORRC} missing` };
        const directives = text
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '' && !l.startsWith('#'));
        const problems: string[] = [];
        if (mode & 0o222 & ~0o200) problems.push(`mode ${mode.toString(8)} lets group or others write it`);
        if (directives.at(-1) !== `%include ${TORRC_D_GLOB}`) problems.push(`last directive is "${directives.at(-1)}", not %include ${TORRC_D_GLOB}`);
        return checkResult(problems, `mode ${mode.toString(8)}, drop-ins included last`);
      },
    },
    {
      id: 'tor.unit-dropin',
      statement: `the only change to ${policy.torUnit} is a read-only bind of the clearnet resolver file over /etc/resolv.conf`,
      check({ tree }) {
        // every directory systemd reads tor's drop-ins from (an administrator's /etc one, the template's), not only ours
        const dirs = unitDropInDirs(policy.torUnit).map((d) => `${d}/`);
        const files = tree.paths().filter((p) => dirs.some((d) => p.startsWith(d) && p.endsWith('.conf')));
        const ours = `${unitDropInDir(policy)}/${UNIT_DROPIN_NAME}`;
        const problems: string[] = [];
        if (files.join() !== ours) problems.push(`drop-ins for ${policy.torUnit}: [${files.join(', ')}] (expected only ${ours})`);
        for (const f of files) {
          const lines = (tree.read(f) ?? '')
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => l !== '' && !l.startsWith('#'));
          const want = ['[Service]', policy.clearnetResolver.bind];
          if (JSON.stringify(lines) !== JSON.stringify(want)) problems.push(`${f}: has [${lines.join(' ; ')}], expected [${want.join(' ; ')}]`);
        }
        return checkResult(problems, `${policy.torUnit} sees ${policy.clearnetResolver.file} as /etc/resolv.conf, nothing else changed`);
      },
    },
    ...(policy.torBridges?.plugin
      ? [
          {
            id: 'tor.transport-plugin',
            statement: `Debian's tor@default can start ${policy.torBridges.plugin.exec}: its AppArmor abstraction lets tor execute it inheriting tor's profile, and no profile of its own exists (NoNewPrivileges=yes refuses a transition)`,
            tools: ['sh', 'cat'],
            check: async ({ tree, run }: { tree: TreeReader; run: ToolRunner }) =>
              checkResult(await pluginCheck(policy, tree, run), `${policy.torBridges!.plugin!.exec} runs inside tor's profile`),
          } satisfies StaticAssertion,
        ]
      : []),
    {
      id: 'tor.apps-socks',
      statement: 'SOCKS_SERVER/SOCKS5_SERVER and torsocks point at the desktop user’s system SocksPort',
      check: ({ tree }) =>
        checkResult(appsProblems(tree, policy), `${ENVIRONMENT} and ${TORSOCKS_CONF} use ${systemSocksPort(policy)?.name ?? 'no'} SocksPort`),
    },
    {
      id: 'tor.apt-through-tor',
      statement:
        'APT downloads as _apt through its own SocksPort (socks5h, no DNS); every source apt reads (sources.list and sources.list.d, one-line and deb822) is tor+http(s) or local',
      check: ({ tree }) => checkResult(aptProblems(tree, policy), `APT uses the ${aptSocksPort(policy)?.name ?? '-'} SocksPort, all sources through tor`),
    },
  ];
}

export function runtimeAssertions(policy: Policy, torrc: GeneratedFile): RuntimeAssertion[] {
  const listening: RuntimeAssertion[] = policy.torListeners.map((l) => ({
    id: `tor.listening.${l.kind}${l.kind === 'socks' ? `.${l.name}` : ''}`,
    statement: `tor listens on ${l.protocol} ${l.address}:${l.port} (${l.clause})`,
    check: { kind: 'listening', protocol: l.protocol, address: l.address, port: l.port },
    scope: 'netns',
  }));
  return [
    ...listening,
    {
      id: 'tor.torrc-unchanged',
      statement: `${TORRC} is the emitted file (mode ${torrc.mode.toString(8)})`,
      check: { kind: 'file', path: TORRC, sha256: sha256(torrc.content), mode: torrc.mode },
      scope: 'system',
    },
    { id: 'tor.unit-active', statement: `${policy.torUnit} is running`, check: { kind: 'unit-active', unit: policy.torUnit }, scope: 'system' },
  ];
}

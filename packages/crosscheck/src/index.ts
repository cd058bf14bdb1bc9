// @leakless/crosscheck: the modules the image is assembled from, in emit
// order, and the checks that span modules. A module reads the policy and
// never another module's output; whether two modules' outputs agree (the
// ports tor listens on and the firewall's grants, resolv.conf and the DNS
// redirect) is checked here, above them, in one place.
import {
  PATHS,
  checkResult,
  emission,
  layoutProblems,
  unitOfPath,
  type LeaklessModule,
  type Policy,
  type CheckResult,
  type StaticAssertion,
  type TreeReader,
} from '@leakless/policy';
import * as sysctl from '@leakless/sysctl';
import * as firewall from '@leakless/firewall';
import * as netns from '@leakless/netns';
import * as htpdate from '@leakless/htpdate';
import * as torConfig from '@leakless/tor-config';
import * as resolver from '@leakless/resolver';
import { bridgeProblems } from './bridges.js';
import { consistencyProblems, namespaceSocksProblems } from './consistency.js';
import { clearnetBinds, missingRequirements } from './units.js';

export { consistencyProblems, namespaceSocksProblems, torListening, reachablePorts, nameservers } from './consistency.js';
export type { TorListening } from './consistency.js';
export { bridgeProblems, torBridges } from './bridges.js';
export type { TorBridge } from './bridges.js';
export { clearnetBinds, missingRequirements } from './units.js';

export const name = 'crosscheck';

/**
 * Where the files are not laid out as Debian packages lay them out
 * (docs/design.md#layout): a file some module ships outside a package
 * location, and in the tree (the emitted one or a built rootfs) a file under
 * /usr/local or a unit or drop-in file in /etc/systemd/system. On a rootfs
 * the links systemctl makes there (enable, mask) are not files: read() gives
 * nothing for a link.
 */
export function debianLayoutProblems(tree: TreeReader, policy: Policy, modules: readonly LeaklessModule[]): string[] {
  const shipped = modules.filter((m) => m.name !== name).flatMap((m) => m.emit(policy).files.map((f) => f.path));
  const problems = layoutProblems(shipped);
  for (const p of tree.paths()) {
    if (tree.read(p) === undefined) continue;
    if (p.startsWith('/usr/local/')) problems.push(`${p}: a file under /usr/local in the tree`);
    else if (p.startsWith(`${PATHS.adminUnits}/`) && unitOfPath(p)) problems.push(`${p}: a unit or drop-in file in ${PATHS.adminUnits} in the tree`);
  }
  return problems;
}

/** The layout assertion over a module set (allModules in the image; tests pass others). */
export function debianLayoutAssertion(policy: Policy, modules: readonly LeaklessModule[]): StaticAssertion {
  return {
    id: 'crosscheck.debian-layout',
    statement:
      'every file the modules ship is in a Debian package location (vendor files under /usr, /etc only where the reading program looks nowhere else); nothing under /usr/local, no unit or drop-in file in /etc/systemd/system',
    check: ({ tree }) => checkResult(debianLayoutProblems(tree, policy, modules), 'every shipped file in a Debian package location'),
  };
}

/** A check on tor's own parse of the tree's torrc (one tor run per tree); a tor that refuses the tree fails it. */
function onTorDump(fn: (dump: Map<string, string[]>, tree: TreeReader) => CheckResult): StaticAssertion['check'] {
  return async ({ tree, run }) => {
    const r = await torConfig.dumpOf(tree, run);
    return r.ok ? fn(torConfig.parseDump(r.stdout), tree) : { ok: false, detail: r.problem! };
  };
}

export function crossModuleAssertions(policy: Policy): StaticAssertion[] {
  const cr = policy.clearnetResolver;
  return [
    {
      id: 'crosscheck.tor-firewall-resolver',
      statement:
        "each port tor really listens on is reachable by exactly its clients in the firewall, udp/53 to resolv.conf's nameserver lands on tor's DNSPort (clients only), tor's automap range is what the firewall sends to its TransPort, and the tor user may leave on exactly the ports tor may pick relays on",
      tools: ['tor', 'sh'],
      check: onTorDump((dump, tree) => checkResult(consistencyProblems(dump, firewall.ruleset(policy), policy, tree), 'torrc, firewall and resolv.conf agree')),
    },
    // The DHCP servers' file (the resolver module) is bound over /etc/resolv.conf
    // by tor-config's and htpdate's unit drop-ins: only the policy's units may.
    {
      id: 'crosscheck.clearnet-resolver-visibility',
      statement: `only ${cr.units.join(' and ')} see ${cr.file} (read-only, over /etc/resolv.conf); no other unit binds anything over /etc/resolv.conf`,
      check({ tree }) {
        const binds = clearnetBinds(tree, cr.file);
        const want = cr.bind;
        const problems: string[] = [];
        for (const b of binds) {
          if (!cr.units.includes(b.unit)) problems.push(`${b.path}: unit ${b.unit} is not allowed clearnet DNS: ${b.line}`);
          else if (b.line !== want) problems.push(`${b.path}: ${b.line} (expected ${want})`);
        }
        for (const u of cr.units) if (!binds.some((b) => b.unit === u && b.line === want)) problems.push(`${u} has no ${want}`);
        return checkResult(problems, `${binds.length} binds, all for ${cr.units.join(', ')}`);
      },
    },
    // The netns module DNATs 127.0.0.1:<port> inside a tor-only namespace to a
    // SocksPort on the host side; tor-config makes tor listen there.
    {
      id: 'crosscheck.netns-socksports',
      statement: 'every DNAT inside a namespace points at a SocksPort tor really listens on (tor’s own parse of the emitted torrc)',
      tools: ['tor', 'sh'],
      check: onTorDump((dump) => {
        const plans = netns.planNamespaces(policy);
        return checkResult(namespaceSocksProblems(dump, plans), `${plans.length} namespaces, every DNAT to a listening SocksPort`);
      }),
    },
    // A unit Requires= another module's unit (netns → firewall): the image must ship it,
    // or the requiring unit never starts (and its enforcement with it).
    {
      id: 'crosscheck.units-required',
      statement: 'every leakless unit another unit Requires= is shipped in the tree',
      check({ tree }) {
        const missing = missingRequirements(tree);
        return checkResult(
          missing.map((m) => `${m.path}: Requires=${m.requires}, which no module ships`),
          'every required leakless unit is shipped',
        );
      },
    },
    // One layout for the image and the packages: what a module ships is where a Debian package would put it.
    debianLayoutAssertion(policy, allModules),
    {
      id: 'crosscheck.tor-bridges',
      statement:
        "tor's effective Bridge, UseBridges and ClientTransportPlugin are tor.bridges; every bridge tor may use is open to the tor user; with pinned bridges nothing else is; UDP beyond DNS only for the tor user and only the policy's ports",
      tools: ['tor', 'sh'],
      check: onTorDump((dump) => {
        const b = policy.torBridges;
        return checkResult(
          bridgeProblems(dump, firewall.ruleset(policy), policy),
          b
            ? `${b.lines.length} ${b.transport} bridge(s)${b.pinned ? ', pinned' : ''}: torrc and firewall agree`
            : 'no bridges in the torrc, no UDP for anyone',
        );
      }),
    },
  ];
}

/** The checks across modules, as a module that emits no files: `leakless check` and the image run them with the rest. */
export const crosscheck: LeaklessModule = { name, emit: (policy) => emission(name, { staticAssertions: crossModuleAssertions(policy) }) };

/** Every module of the image, in emit order, and the cross-module checks last. */
export const allModules: readonly LeaklessModule[] = [sysctl, firewall, netns, htpdate, torConfig, resolver, crosscheck];

// @leakless/tor-config: the base torrc (+ torrc.d drop-in directory), the
// tor@default drop-in, and the files that send programs to their SocksPort
// (SOCKS_SERVER, torsocks, APT through tor).
import { UNITS, emission, loadTemplate, type Emission, type GeneratedFile, type Policy, type SystemUser } from '@leakless/policy';
import {
  APT_PROXY_CONF,
  APT_SOURCES,
  APT_USER,
  ENVIRONMENT,
  TORSOCKS_CONF,
  aptSocksPort,
  aptSources,
  aptUser,
  systemSocksPort,
  type AptSource,
} from './apps.js';
import { runtimeAssertions, staticAssertions } from './assertions.js';
import { listenersAssertion } from './listeners.js';
import { DEBIAN_DEFAULTS_TORRC, TORRC, TORRC_D, TORRC_D_GLOB, torrcSections, type TorrcSection } from './torrc.js';

export { TOR_PROCESS } from './listeners.js';
export {
  TORRC,
  DEBIAN_DEFAULTS_TORRC,
  TORRC_D,
  TORRC_D_GLOB,
  NO_ISOLATION,
  controlSocketValue,
  isolationFlags,
  listenerValue,
  reachableValue,
  sandboxValue,
  torrcSections,
  transportPluginValue,
} from './torrc.js';
export type { TorrcLine, TorrcSection } from './torrc.js';
export {
  APT_USER,
  ENVIRONMENT,
  TORSOCKS_CONF,
  APT_PROXY_CONF,
  APT_SOURCES,
  DEBIAN_MIRROR,
  systemSocksPort,
  aptUser,
  aptSocksPort,
  aptSources,
} from './apps.js';
export type { AptSource } from './apps.js';
export { effectiveConfigProblems, unitDropInDir, UNIT_DROPIN_NAME, dumpOf } from './assertions.js';
export { parseDump, runTor, dropInsOf } from './verify.js';
export type { TorRun } from './verify.js';

export const name = 'tor-config';

const renderTorrc = loadTemplate<{ path: string; defaults: string; dropInDir: string; dropInGlob: string; sections: readonly TorrcSection[] }>(
  import.meta.url,
  'torrc.ejs',
  ['path', 'defaults', 'dropInDir', 'dropInGlob', 'sections'],
);
const renderReadme = loadTemplate<{ dropInDir: string; dropInGlob: string; torrc: string }>(import.meta.url, 'torrc.d-README.ejs', [
  'dropInDir',
  'dropInGlob',
  'torrc',
]);
const renderUnitDropIn = loadTemplate<{ path: string; clause: string; bind: string; nameserver: string }>(import.meta.url, 'tor-unit-dropin.conf.ejs', [
  'path',
  'clause',
  'bind',
  'nameserver',
]);
type PortLocals = { path: string; clause: string; portName: string; address: string; port: number };
const renderEnvironment = loadTemplate<PortLocals>(import.meta.url, 'environment.ejs', ['path', 'clause', 'portName', 'address', 'port']);
const renderTorsocks = loadTemplate<PortLocals>(import.meta.url, 'torsocks.conf.ejs', ['path', 'clause', 'portName', 'address', 'port']);
const renderAptProxy = loadTemplate<PortLocals & { aptUser: string }>(import.meta.url, 'apt-tor.conf.ejs', [
  'path',
  'clause',
  'portName',
  'address',
  'port',
  'aptUser',
]);
const renderSources = loadTemplate<{ path: string; clause: string; sources: readonly AptSource[] }>(import.meta.url, 'sources.list.ejs', [
  'path',
  'clause',
  'sources',
]);

export function torrcFile(policy: Policy): GeneratedFile {
  const content = renderTorrc({ path: TORRC, defaults: DEBIAN_DEFAULTS_TORRC, dropInDir: TORRC_D, dropInGlob: TORRC_D_GLOB, sections: torrcSections(policy) });
  // 0444: the base is never edited in place, not even by tor (SAVECONF); changes go to torrc.d.
  return { path: TORRC, content, mode: 0o444, clause: 'tor' };
}

function appFiles(policy: Policy): GeneratedFile[] {
  const files: GeneratedFile[] = [];
  const sys = systemSocksPort(policy);
  if (sys) {
    const locals = { clause: sys.clause, portName: sys.name, address: sys.address, port: sys.port };
    files.push({ path: ENVIRONMENT, content: renderEnvironment({ path: ENVIRONMENT, ...locals }), mode: 0o644, clause: sys.clause });
    files.push({ path: TORSOCKS_CONF, content: renderTorsocks({ path: TORSOCKS_CONF, ...locals }), mode: 0o644, clause: sys.clause });
  }
  const apt = aptSocksPort(policy);
  if (apt) {
    const locals = { clause: apt.clause, portName: apt.name, address: apt.address, port: apt.port };
    files.push({ path: APT_PROXY_CONF, content: renderAptProxy({ path: APT_PROXY_CONF, aptUser: APT_USER, ...locals }), mode: 0o644, clause: apt.clause });
    files.push({
      path: APT_SOURCES,
      content: renderSources({ path: APT_SOURCES, clause: `${apt.clause}, image.suite`, sources: aptSources(policy) }),
      mode: 0o644,
      clause: apt.clause,
    });
  }
  return files;
}

export function emit(policy: Policy): Emission {
  const torrc = torrcFile(policy);
  // tor's own drop-in; the resolver module writes those of the other units the policy lets see the clearnet resolver
  const dropIn = policy.clearnetResolver.dropIns.find((d) => d.unit === policy.torUnit)!.path;
  const files: GeneratedFile[] = [
    torrc,
    { path: `${TORRC_D}/README`, content: renderReadme({ dropInDir: TORRC_D, dropInGlob: TORRC_D_GLOB, torrc: TORRC }), mode: 0o644, clause: 'tor' },
    {
      path: dropIn,
      content: renderUnitDropIn({
        path: dropIn,
        clause: 'clearnetResolver (Tails resolv-over-clearnet)',
        bind: policy.clearnetResolver.bind,
        nameserver: policy.dnsPort.address,
      }),
      mode: 0o644,
      clause: 'clearnetResolver',
    },
    ...appFiles(policy),
  ];
  const apt = aptUser(policy);
  const users: SystemUser[] = [policy.torUser, ...(apt && aptSocksPort(policy) ? [apt] : [])].map((u) => ({ name: u.name, uid: u.uid, gid: u.gid }));
  return emission(name, {
    files,
    packages: [
      'tor',
      'torsocks',
      ...(aptSocksPort(policy) ? ['apt-transport-tor'] : []),
      ...(policy.torBridges?.plugin ? [policy.torBridges.plugin.package] : []),
    ],
    users,
    units: [UNITS.torWrapper],
    staticAssertions: staticAssertions(policy),
    runtimeAssertions: [...runtimeAssertions(policy, torrc), listenersAssertion(policy)],
  });
}

// @leakless/resolver: /etc/resolv.conf (the DNSPort only), NetworkManager
// kept away from it and from leaking identifiers, and the clearnet resolver
// file that only the policy's allowed units see.
import { emission, loadTemplate, sha256, type Emission, type GeneratedFile, type Policy, type RuntimeAssertion } from '@leakless/policy';
import { NM_DISPATCHER, PROBE_ONION, RESOLV_CONF, bindDropIns, nmFiles, type IniFile } from './settings.js';
import { staticAssertions } from './assertions.js';

export { RESOLV_CONF, NM_CONF_D, NM_CONNECTIONS, NM_DISPATCHER, NM_ETC, PROBE_ONION, stableUuid, nmFiles, bindDropIns } from './settings.js';
export { effectiveNmConfig, nmConfigFiles } from './assertions.js';
export type { IniKey, IniSection, IniFile } from './settings.js';
export { parseIni, mergeIni } from './ini.js';
export type { Ini } from './ini.js';

export const name = 'resolver';

const renderResolv = loadTemplate<{ path: string; clause: string; nameserver: string; dnsPort: number; clearnetFile: string; units: string }>(
  import.meta.url,
  'resolv.conf.ejs',
  ['path', 'clause', 'nameserver', 'dnsPort', 'clearnetFile', 'units'],
);
const renderClearnet = loadTemplate<{ path: string; clause: string; dispatcher: string; units: string }>(import.meta.url, 'resolv-over-clearnet.conf.ejs', [
  'path',
  'clause',
  'dispatcher',
  'units',
]);
const renderIni = loadTemplate<{ file: IniFile }>(import.meta.url, 'nm.ini.ejs', ['file']);
const renderDispatcher = loadTemplate<{ path: string; clause: string; file: string; units: string }>(import.meta.url, 'dispatcher.sh.ejs', [
  'path',
  'clause',
  'file',
  'units',
]);
const renderDropIn = loadTemplate<{ path: string; clause: string; unit: string; bind: string; nameserver: string }>(import.meta.url, 'unit-dropin.conf.ejs', [
  'path',
  'clause',
  'unit',
  'bind',
  'nameserver',
]);

export function emit(policy: Policy): Emission {
  const cr = policy.clearnetResolver;
  const units = cr.units.join(' and ');
  const resolv: GeneratedFile = {
    path: RESOLV_CONF,
    content: renderResolv({
      path: RESOLV_CONF,
      clause: 'tor.dnsPort',
      nameserver: policy.dnsPort.address,
      dnsPort: policy.dnsPort.port,
      clearnetFile: cr.file,
      units,
    }),
    mode: 0o644,
    clause: 'tor.dnsPort',
  };
  const nm = nmFiles(policy).map((f): GeneratedFile => ({ path: f.path, content: renderIni({ file: f }), mode: f.mode, clause: f.clause }));
  const files: GeneratedFile[] = [
    resolv,
    {
      path: cr.file,
      content: renderClearnet({ path: cr.file, clause: 'clearnetResolver', dispatcher: NM_DISPATCHER, units }),
      mode: 0o644,
      clause: 'clearnetResolver',
    },
    ...nm,
    {
      path: NM_DISPATCHER,
      content: renderDispatcher({ path: NM_DISPATCHER, clause: 'clearnetResolver', file: cr.file, units }),
      mode: 0o755,
      clause: 'clearnetResolver',
    },
    ...bindDropIns(policy).map(({ unit, path }): GeneratedFile => {
      return {
        path,
        content: renderDropIn({ path, clause: 'clearnetResolver, time.preTorCheck', unit, bind: cr.bind, nameserver: policy.dnsPort.address }),
        mode: 0o644,
        clause: 'clearnetResolver',
      };
    }),
  ];
  // An ordinary user's lookup goes through resolv.conf and the udp/53 redirect to tor's DNSPort.
  const lookups: RuntimeAssertion[] = policy.dnsPort.clients
    .filter((u) => u.role === 'desktop' || u.role === 'service')
    .map((u) => ({
      id: `resolver.lookup-via-dnsport.${u.name}`,
      statement: `a lookup by ${u.name} through ${RESOLV_CONF} is answered by tor's DNSPort (a .onion name comes back from ${policy.automapRange})`,
      check: { kind: 'resolves-within', uid: u.uid, gid: u.gid, name: PROBE_ONION, range: policy.automapRange },
      scope: 'system',
    }));
  const runtime: RuntimeAssertion[] = [resolv, ...nm].map((f) => ({
    id: `resolver.unchanged.${f.path.split('/').pop()}`,
    statement: `${f.path} is still the emitted file after NetworkManager configured the network`,
    check: { kind: 'file', path: f.path, sha256: sha256(f.content), mode: f.mode },
    scope: 'system',
  }));
  return emission(name, {
    files,
    packages: ['network-manager'],
    staticAssertions: staticAssertions(policy),
    runtimeAssertions: [...runtime, ...lookups],
  });
}

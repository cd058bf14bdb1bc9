// @leakless/sysctl: /usr/lib/sysctl.d (PLPMTUD, IPv6 off, network and kernel
// hardening) and the /usr/lib/modprobe.d blocklist of uncommon network protocols.
import { PATHS, emission, loadTemplate, type Emission, type GeneratedFile, type Policy, type RuntimeAssertion, type StaticAssertion } from '@leakless/policy';
import { FILE_PREFIX, blockedNetworkModules, isPerNetns, sysctlFiles, type SysctlFile, type SysctlSetting } from './settings.js';
import { effectiveSysctl } from './effective.js';
import { parseSysctlConf } from './parse.js';
import { perInterfaceAssertions } from './per-interface.js';

export { sysctlFiles, blockedNetworkModules, isPerNetns, FILE_PREFIX } from './settings.js';
export { effectiveSysctl } from './effective.js';
export type { SysctlFile, SysctlSetting } from './settings.js';
export { parseSysctlConf } from './parse.js';

export const name = 'sysctl';
/**
 * Vendor sysctl.d: systemd-sysctl orders the files of /etc, /run and /usr/lib
 * by name together, so the zz- names keep the last word from /usr/lib too
 * (sysctl.effective-values proves it on the tree and the rootfs); an
 * administrator's /etc file of the same name replaces ours, and the check sees it.
 */
export const SYSCTL_DIR = PATHS.sysctlD;
export const MODPROBE_FILE = `${PATHS.modprobeD}/leakless-uncommon-network-protocols.conf`;
const MODPROBE_CLAUSE = 'docs/threat-model.md#uncommon-protocols (Tails uncommon-network-protocols.conf)';

const renderSysctl = loadTemplate<{ title: string; clause: string; settings: readonly SysctlSetting[] }>(import.meta.url, 'sysctl.conf.ejs', [
  'title',
  'clause',
  'settings',
]);
const renderModprobe = loadTemplate<{ clause: string; modules: typeof blockedNetworkModules }>(import.meta.url, 'modprobe.conf.ejs', ['clause', 'modules']);

function fileOf(f: SysctlFile): GeneratedFile {
  return { path: `${SYSCTL_DIR}/${f.name}`, content: renderSysctl(f), mode: 0o644, clause: f.clause };
}

function staticAssertions(files: readonly SysctlFile[]): StaticAssertion[] {
  const expected = files.flatMap((f) => f.settings.map((st) => ({ file: `${SYSCTL_DIR}/${f.name}`, ...st })));
  return [
    {
      id: 'sysctl.files-parse',
      statement: 'every leakless sysctl.d file is well-formed and sets each key once',
      check: ({ tree }) => {
        const problems: string[] = [];
        const seen = new Map<string, string>();
        for (const f of files) {
          const path = `${SYSCTL_DIR}/${f.name}`;
          const text = tree.read(path);
          if (text === undefined) {
            problems.push(`${path} missing`);
            continue;
          }
          const { entries, errors } = parseSysctlConf(text);
          problems.push(...errors.map((e) => `${path}: ${e}`));
          for (const k of entries.keys()) {
            if (seen.has(k)) problems.push(`${k} set in ${seen.get(k)} and ${path}`);
            seen.set(k, path);
          }
        }
        return { ok: problems.length === 0, detail: problems[0] ?? `${files.length} files, ${seen.size} keys` };
      },
    },
    {
      id: 'sysctl.values',
      statement: 'every policy sysctl has its expected value in the tree (PLPMTUD on, IPv6 off, hardening)',
      check: ({ tree }) => {
        const wrong = expected.filter((e) => parseSysctlConf(tree.read(e.file) ?? '').entries.get(e.key) !== e.value);
        return {
          ok: wrong.length === 0,
          detail: wrong.length ? `${wrong[0]!.key} is not ${wrong[0]!.value} in ${wrong[0]!.file}` : `${expected.length} keys as expected`,
        };
      },
    },
    {
      id: 'sysctl.effective-values',
      statement: 'no other sysctl.d file in the tree or rootfs overrides a policy value (systemd-sysctl order: by file name, last wins)',
      check: ({ tree }) => {
        const effective = effectiveSysctl(tree);
        const wrong = expected.filter((e) => effective.get(e.key)?.value !== e.value);
        const w = wrong[0];
        return {
          ok: wrong.length === 0,
          detail: w
            ? `${w.key} ends up ${effective.get(w.key)?.value ?? 'unset'} (from ${effective.get(w.key)?.file ?? 'nowhere'}), policy says ${w.value}`
            : `${expected.length} keys effective`,
        };
      },
    },
    {
      id: 'sysctl.pmtud',
      statement: 'net.ipv4.tcp_mtu_probing = 1 (the firewall drops ICMP, so PLPMTUD must be on)',
      check: ({ tree }) => {
        const v = parseSysctlConf(tree.read(`${SYSCTL_DIR}/${FILE_PREFIX}pmtud.conf`) ?? '').entries.get('net.ipv4.tcp_mtu_probing');
        return { ok: v === '1', detail: `tcp_mtu_probing = ${v ?? 'unset'}` };
      },
    },
    {
      id: 'sysctl.modules-blocked',
      statement: 'each uncommon network protocol module is blacklisted and its install command fails',
      check: ({ tree }) => {
        const text = tree.read(MODPROBE_FILE) ?? '';
        const lines = new Set(text.split('\n').map((l) => l.trim()));
        const missing = blockedNetworkModules.filter((m) => !lines.has(`install ${m.module} /bin/false`) || !lines.has(`blacklist ${m.module}`));
        return {
          ok: text !== '' && missing.length === 0,
          detail:
            text === '' ? `${MODPROBE_FILE} missing` : missing.length ? `${missing[0]!.module} not blocked` : `${blockedNetworkModules.length} modules blocked`,
        };
      },
    },
  ];
}

function runtimeAssertions(files: readonly SysctlFile[]): RuntimeAssertion[] {
  const settings: RuntimeAssertion[] = files.flatMap((f) =>
    f.settings.map((st) => ({
      id: `sysctl.value.${st.key}`,
      statement: `${st.key} = ${st.value} in force`,
      check: { kind: 'sysctl' as const, key: st.key, expected: st.value },
      scope: isPerNetns(st.key) ? ('netns' as const) : ('system' as const),
    })),
  );
  const modules: RuntimeAssertion[] = blockedNetworkModules.map((m) => ({
    id: `sysctl.module-blocked.${m.module}`,
    statement: `module ${m.module} cannot be loaded`,
    check: { kind: 'module-blocked' as const, module: m.module },
    scope: 'system' as const,
  }));
  return [...settings, ...modules];
}

export function emit(policy: Policy): Emission {
  const files = sysctlFiles(policy);
  return emission(name, {
    files: [
      ...files.map(fileOf),
      { path: MODPROBE_FILE, content: renderModprobe({ clause: MODPROBE_CLAUSE, modules: blockedNetworkModules }), mode: 0o644, clause: MODPROBE_CLAUSE },
    ],
    packages: ['procps', 'kmod'],
    staticAssertions: staticAssertions(files),
    runtimeAssertions: [...runtimeAssertions(files), ...perInterfaceAssertions(files)],
  });
}

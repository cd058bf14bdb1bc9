// Static assertions of the resolver module, evaluated on the emitted tree and
// on a built rootfs (where Debian's own NetworkManager conf.d files and units
// are present and must not undo ours).
import { checkResult, type Policy, type StaticAssertion, type TreeReader } from '@leakless/policy';
import { mergeIni, parseIni } from './ini.js';
import { NM_CONF_D, NM_CONNECTIONS, NM_DISPATCHER, RESOLV_CONF, nmFiles } from './settings.js';

const NM_LIB_CONF_D = '/usr/lib/NetworkManager/conf.d';
const NM_CONF = '/etc/NetworkManager/NetworkManager.conf';

/** NetworkManager.conf, then conf.d files of /usr/lib and /etc sorted by name (an /etc file shadows the same name in /usr/lib). */
export function effectiveNmConfig(tree: TreeReader) {
  const byName = new Map<string, string>();
  for (const dir of [NM_LIB_CONF_D, NM_CONF_D])
    for (const p of tree.paths().filter((x) => x.startsWith(`${dir}/`) && x.endsWith('.conf') && !x.slice(dir.length + 1).includes('/')))
      byName.set(p.slice(dir.length + 1), tree.read(p) ?? '');
  const names = [...byName.keys()].sort();
  return mergeIni([tree.read(NM_CONF) ?? '', ...names.map((n) => byName.get(n)!)]);
}

function resolvConfProblems(tree: TreeReader, policy: Policy): string[] {
  const text = tree.read(RESOLV_CONF);
  if (text === undefined) return [`${RESOLV_CONF} missing`];
  const directives = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'));
  const want = `nameserver ${policy.dnsPort.address}`;
  return JSON.stringify(directives) === JSON.stringify([want]) ? [] : [`${RESOLV_CONF} has [${directives.join(' ; ')}], expected exactly [${want}]`];
}

function nmProblems(tree: TreeReader, policy: Policy): string[] {
  const problems: string[] = [];
  const eff = effectiveNmConfig(tree);
  for (const f of nmFiles(policy).filter((x) => x.path.startsWith(`${NM_CONF_D}/`)))
    for (const s of f.sections)
      for (const k of s.keys) {
        const got = eff.get(s.section)?.get(k.key);
        if (got !== k.value) problems.push(`NetworkManager [${s.section}] ${k.key} is ${got ?? 'unset'}, expected ${k.value}`);
      }
  return problems;
}

function keyfileProblems(tree: TreeReader): string[] {
  const problems: string[] = [];
  const files = tree.paths().filter((p) => p.startsWith(`${NM_CONNECTIONS}/`));
  if (files.length === 0) problems.push(`no profile in ${NM_CONNECTIONS} (no-auto-default=* would leave wired NICs unconfigured)`);
  for (const p of files) {
    const mode = tree.mode(p) ?? 0;
    if (mode & 0o077) problems.push(`${p}: mode ${mode.toString(8)}, NetworkManager ignores keyfiles others can read`);
    const { ini, errors } = parseIni(tree.read(p) ?? '');
    problems.push(...errors.map((e) => `${p}: ${e}`));
    for (const fam of ['ipv4', 'ipv6']) {
      const s = ini.get(fam);
      const dhcp = fam === 'ipv4' ? (s?.get('method') ?? 'auto') === 'auto' : ['auto', 'dhcp'].includes(s?.get('method') ?? 'auto');
      if (dhcp && s?.get('dhcp-send-hostname') !== 'false') problems.push(`${p}: [${fam}] uses DHCP and sends the host name`);
    }
  }
  return problems;
}

export function staticAssertions(policy: Policy): StaticAssertion[] {
  const cr = policy.clearnetResolver;
  return [
    {
      id: 'resolver.resolv-conf',
      statement: `${RESOLV_CONF} names only ${policy.dnsPort.address}, whose udp/53 the firewall redirects to the DNSPort`,
      check: ({ tree }) => checkResult(resolvConfProblems(tree, policy), `nameserver ${policy.dnsPort.address} only`),
    },
    {
      id: 'resolver.networkmanager',
      statement:
        'NetworkManager’s effective config: dns=none, connectivity check off, no DHCP/reverse-DNS hostname, random Wi-Fi MAC for scans and connections, IPv6 privacy addresses',
      check: ({ tree }) => checkResult(nmProblems(tree, policy), 'every NetworkManager key as the policy says'),
    },
    {
      id: 'resolver.dhcp-no-hostname',
      statement: 'every NetworkManager profile the image ships uses DHCP without sending the host name, and none is readable by others',
      check: ({ tree }) => checkResult(keyfileProblems(tree), 'no profile sends the host name'),
    },
    {
      id: 'resolver.dispatcher',
      statement: `the dispatcher that saves DHCP DNS to ${cr.file} is executable and valid POSIX sh, and truncates the file rather than replacing it`,
      tools: ['sh'],
      async check({ tree, run }) {
        const text = tree.read(NM_DISPATCHER);
        const mode = tree.mode(NM_DISPATCHER);
        if (text === undefined || mode === undefined) return { ok: false, detail: `${NM_DISPATCHER} missing` };
        const problems: string[] = [];
        if ((mode & 0o755) !== 0o755 || mode & 0o022) problems.push(`mode ${mode.toString(8)} (NetworkManager runs only root-owned 0755 scripts)`);
        const r = await run('sh', ['-n', '-c', text]);
        if (r.exitCode !== 0) problems.push(`sh -n: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
        const code = text.split('\n').filter((l) => !l.trim().startsWith('#'));
        if (!code.some((l) => l.includes(`f=${cr.file}`))) problems.push(`does not write ${cr.file}`);
        if (code.some((l) => /\b(rm|mv|ln|install|cp)\b/.test(l)))
          problems.push('replaces the file (rm/mv/ln/cp/install): the bind mounts would keep the old inode');
        return checkResult(problems, 'sh -n ok, truncates in place');
      },
    },
  ];
}

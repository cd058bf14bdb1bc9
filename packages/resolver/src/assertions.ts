// Static assertions of the resolver module, evaluated on the emitted tree and
// on a built rootfs (where Debian's own NetworkManager conf.d files and units
// are present and must not undo ours).
import { checkResult, type Policy, type StaticAssertion, type TreeReader } from '@leakless/policy';
import { UNSENT_HOSTNAMES, hostnameIsSent } from '@leakless/policy/names';
import { mergeIni, parseIni } from './ini.js';
import { NM_CONF_D, NM_CONNECTIONS, NM_DISPATCHER, NM_ETC, RESOLV_CONF, nmFiles } from './settings.js';

const NM_ETC_CONF_D = `${NM_ETC}/conf.d`;
/** The static host name NetworkManager reads (through hostnamed, or itself) and sends in DHCP. */
const HOSTNAME = '/etc/hostname';
const NM_RUN_CONF_D = '/run/NetworkManager/conf.d';
/** The base file: the deprecated nm-system-settings.conf when it exists, else NetworkManager.conf. */
const NM_BASE = [`${NM_ETC}/nm-system-settings.conf`, `${NM_ETC}/NetworkManager.conf`];

/** The *.conf names directly in a conf.d directory of the tree, sorted. */
function confNames(tree: TreeReader, dir: string): string[] {
  return tree
    .paths()
    .filter((x) => x.startsWith(`${dir}/`) && x.endsWith('.conf') && !x.slice(dir.length + 1).includes('/'))
    .map((x) => x.slice(dir.length + 1))
    .sort();
}

/**
 * The files NetworkManager 1.42 reads, in its order (nm-config.c
 * read_entire_config): the vendor conf.d of /usr/lib (ours), then /run's, each
 * skipping a name a later directory has, then the base file, then
 * /etc/NetworkManager/conf.d. Each file overrides the keys of the ones before.
 */
export function nmConfigFiles(tree: TreeReader): string[] {
  const etc = confNames(tree, NM_ETC_CONF_D);
  const run = confNames(tree, NM_RUN_CONF_D).filter((n) => !etc.includes(n));
  const lib = confNames(tree, NM_CONF_D).filter((n) => !etc.includes(n) && !run.includes(n));
  const base = NM_BASE.find((p) => tree.read(p) !== undefined);
  return [
    ...lib.map((n) => `${NM_CONF_D}/${n}`),
    ...run.map((n) => `${NM_RUN_CONF_D}/${n}`),
    ...(base ? [base] : []),
    ...etc.map((n) => `${NM_ETC_CONF_D}/${n}`),
  ];
}

export function effectiveNmConfig(tree: TreeReader) {
  return mergeIni(nmConfigFiles(tree).map((p) => tree.read(p) ?? ''));
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

/** The keyfile plugin reads profiles from all three; one in /etc or /run replaces ours of the same UUID. */
const PROFILE_DIRS = [NM_CONNECTIONS, `${NM_ETC}/system-connections`, '/run/NetworkManager/system-connections'];

function keyfileProblems(tree: TreeReader): string[] {
  const problems: string[] = [];
  if (!tree.paths().some((p) => p.startsWith(`${NM_CONNECTIONS}/`)))
    problems.push(`no profile in ${NM_CONNECTIONS} (no-auto-default=* would leave wired NICs unconfigured)`);
  const files = tree.paths().filter((p) => PROFILE_DIRS.some((d) => p.startsWith(`${d}/`)));
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
        'NetworkManager’s effective config: dns=none, connectivity check off, no DHCP/reverse-DNS hostname, random MAC for Wi-Fi scans and for every Wi-Fi and wired connection, IPv6 privacy addresses',
      check: ({ tree }) => checkResult(nmProblems(tree, policy), 'every NetworkManager key as the policy says'),
    },
    {
      id: 'resolver.dhcp-no-hostname',
      statement:
        'every NetworkManager profile (ours in /usr/lib, any in /etc or /run) uses DHCP without sending the host name, and ours is not readable by others',
      check: ({ tree }) => checkResult(keyfileProblems(tree), 'no profile sends the host name'),
    },
    {
      id: 'resolver.hostname-unsent',
      statement: `the static host name is one NetworkManager never sends in DHCP (${UNSENT_HOSTNAMES[0]} or below it), so a profile made after boot, which may send it, sends nothing that identifies the machine`,
      check: ({ tree }) => {
        // the built image has /etc/hostname (the image writes it); the emitted tree leaves it to the image, which writes image.hostname
        const file = tree.read(HOSTNAME);
        const name = file === undefined ? policy.document.image.hostname : file.trim();
        const where = file === undefined ? 'image.hostname' : HOSTNAME;
        return hostnameIsSent(name)
          ? {
              ok: false,
              detail: `${where} is ${JSON.stringify(name)}: NetworkManager sends it in the DHCP requests of any profile without dhcp-send-hostname=false`,
            }
          : { ok: true, detail: `${where} is ${JSON.stringify(name)}, never sent` };
      },
    },
    {
      id: 'resolver.dispatcher',
      statement: `the dispatcher that saves DHCP DNS to ${cr.file} is executable and valid POSIX sh, truncates the file rather than replacing it, and no /etc script of its name replaces it`,
      tools: ['sh'],
      async check({ tree, run }) {
        const text = tree.read(NM_DISPATCHER);
        const mode = tree.mode(NM_DISPATCHER);
        if (text === undefined || mode === undefined) return { ok: false, detail: `${NM_DISPATCHER} missing` };
        const problems: string[] = [];
        // nm-dispatcher runs /etc/NetworkManager/dispatcher.d/NAME instead of ours (a link to /dev/null disables it)
        const shadow = `${NM_ETC}/dispatcher.d/${NM_DISPATCHER.slice(NM_DISPATCHER.lastIndexOf('/') + 1)}`;
        if (tree.mode(shadow) !== undefined) problems.push(`${shadow} replaces it`);
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

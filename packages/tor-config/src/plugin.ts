// Whether Debian's tor@default can start the policy's pluggable transport.
// Found by reading Debian's tor package (bookworm): tor@default.service sets
// NoNewPrivileges=yes and AppArmorProfile=-system_tor, and the profile's
// abstraction has `/usr/bin/obfs4proxy Pix` and `/usr/bin/snowflake-client
// Pix`: the plugin runs under its own profile if one exists, else inside
// tor's. Under no_new_privs the kernel refuses a transition to another
// profile, so the plugin starts only while it has no profile of its own
// (bookworm's obfs4proxy and snowflake-client ship none; Tails sets
// NoNewPrivileges=no because its lyrebird does). Read from the tree when it
// is a root filesystem, else from the build host's packages.
import type { Policy, ToolRunner, TreeReader, TransportPlugin } from '@leakless/policy';

export const APPARMOR_DIR = '/etc/apparmor.d';
export const TOR_ABSTRACTION = `${APPARMOR_DIR}/abstractions/tor`;

/** The permission tor's abstraction gives the plugin's path (`Pix`, `ix` …), or undefined when it names it not at all. */
export function execPermission(abstraction: string, exec: string): string | undefined {
  for (const line of abstraction.split('\n')) {
    const m = /^\s*(\S+)\s+([A-Za-z]+),\s*$/.exec(line);
    if (m && m[1] === exec) return m[2];
  }
  return undefined;
}

/** Profile files (outside abstractions/ and tunables/) whose text attaches a profile to the plugin's path. */
export function ownProfiles(files: readonly { path: string; content: string }[], exec: string): string[] {
  const attach = new RegExp(`^\\s*(profile\\s+\\S+\\s+)?${exec.replace(/[/.]/g, '\\$&')}\\s+(flags=\\([^)]*\\)\\s*)?\\{`, 'm');
  return files.filter((f) => attach.test(f.content)).map((f) => f.path);
}

/** Why tor@default could not start the plugin; [] when it can. */
export function pluginProblems(abstraction: string | undefined, profiles: readonly string[], plugin: TransportPlugin): string[] {
  if (abstraction === undefined) return [`${TOR_ABSTRACTION} missing: install Debian's tor package`];
  const perm = execPermission(abstraction, plugin.exec);
  const problems: string[] = [];
  // i (inherit), with P before it: the fallback when no profile of its own exists.
  if (perm === undefined) problems.push(`${TOR_ABSTRACTION} does not let tor execute ${plugin.exec}`);
  else if (!/^[Pp]?ix$/.test(perm))
    problems.push(`${TOR_ABSTRACTION}: ${plugin.exec} ${perm} leaves tor's profile, which NoNewPrivileges=yes of tor@default refuses`);
  for (const p of profiles) problems.push(`${p} gives ${plugin.exec} a profile of its own: under NoNewPrivileges=yes the exec is refused`);
  return problems;
}

const LIST_PROFILES = `cd ${APPARMOR_DIR} 2>/dev/null || exit 0
for f in $(find . -type f ! -path './abstractions/*' ! -path './tunables/*' ! -path './local/*' | sort); do printf '\\0%s\\0' "$f"; cat "$f"; done`;

/** The abstraction and every profile file, from the tree if it has them, else from the host. */
export async function apparmorFiles(
  tree: TreeReader,
  run: ToolRunner,
): Promise<{ abstraction: string | undefined; files: { path: string; content: string }[] }> {
  const inTree = tree.read(TOR_ABSTRACTION);
  if (inTree !== undefined) {
    const files = tree
      .paths()
      .filter((p) => p.startsWith(`${APPARMOR_DIR}/`) && !/^\/etc\/apparmor\.d\/(abstractions|tunables|local)\//.test(p))
      .map((path) => ({ path, content: tree.read(path) ?? '' }));
    return { abstraction: inTree, files };
  }
  const a = await run('cat', [TOR_ABSTRACTION]);
  const l = await run('sh', ['-c', LIST_PROFILES]);
  const parts = l.stdout.split('\0').slice(1);
  const files: { path: string; content: string }[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) files.push({ path: `${APPARMOR_DIR}/${parts[i]!.replace(/^\.\//, '')}`, content: parts[i + 1]! });
  return { abstraction: a.exitCode === 0 ? a.stdout : undefined, files };
}

export async function pluginCheck(policy: Policy, tree: TreeReader, run: ToolRunner): Promise<string[]> {
  const plugin = policy.torBridges?.plugin;
  if (!plugin) return [];
  const { abstraction, files } = await apparmorFiles(tree, run);
  return pluginProblems(abstraction, ownProfiles(files, plugin.exec), plugin);
}

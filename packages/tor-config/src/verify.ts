// Running the real tor on the emitted files. The torrc includes
// /etc/tor/torrc.d/*.conf; to check the tree (not the build host's /etc) the
// files are copied into a temporary directory and that one %include line is
// pointed at the copy of torrc.d. Everything runs through the injected
// ToolRunner (one `sh -c`), so the module itself has no side effects.
import type { ToolRunner, TreeReader } from '@leakless/policy';
import { DEBIAN_DEFAULTS_TORRC, TORRC, TORRC_D, TORRC_D_GLOB } from './torrc.js';

const PLACEHOLDER = '__LEAKLESS_TORRC_D__';

// $1 mode (verify|dump), $2 torrc, $3 defaults content or "-host-", then name/content pairs of drop-ins.
const SCRIPT = `set -eu
mode=$1; torrc=$2; defaults=$3; shift 3
d=$(mktemp -d "\${TMPDIR:-/tmp}/leakless-torrc.XXXXXX")
trap 'rm -rf "$d"' EXIT
mkdir "$d/torrc.d"
printf '%s' "$torrc" | sed "s|${PLACEHOLDER}|$d/torrc.d|g" > "$d/torrc"
while [ $# -gt 1 ]; do printf '%s' "$2" > "$d/torrc.d/$1"; shift 2; done
if [ "$defaults" = -host- ]; then
  df=${DEBIAN_DEFAULTS_TORRC}
  [ -r "$df" ] || { echo "$df missing: install Debian's tor package" >&2; exit 3; }
else
  df=$d/defaults; printf '%s' "$defaults" > "$df"
fi
case $mode in
  verify) tor --verify-config --defaults-torrc "$df" -f "$d/torrc" ;;
  dump) tor --dump-config full --defaults-torrc "$df" -f "$d/torrc" ;;
esac`;

export interface TorRun {
  readonly ok: boolean;
  /** Set when the run could not happen or tor failed: one line saying why. */
  readonly problem?: string;
  readonly stdout: string;
}

/** The emitted drop-ins (*.conf directly under torrc.d), as tor's glob would pick them. */
export function dropInsOf(tree: TreeReader): { name: string; content: string }[] {
  return tree
    .paths()
    .filter((p) => p.startsWith(`${TORRC_D}/`) && p.endsWith('.conf') && !p.slice(TORRC_D.length + 1).includes('/'))
    .map((p) => ({ name: p.slice(TORRC_D.length + 1), content: tree.read(p) ?? '' }));
}

/**
 * Run tor on the tree's torrc, its drop-ins and Debian's defaults file (the
 * tree's own copy when it is a built rootfs, else the build host's).
 */
export async function runTor(mode: 'verify' | 'dump', tree: TreeReader, run: ToolRunner): Promise<TorRun> {
  const torrc = tree.read(TORRC);
  if (torrc === undefined) return { ok: false, problem: `${TORRC} missing from the tree`, stdout: '' };
  const includes = torrc.split('\n').filter((l) => l.trim().startsWith('%include'));
  if (includes.length !== 1 || includes[0]!.trim() !== `%include ${TORRC_D_GLOB}`)
    return { ok: false, problem: `${TORRC} must have exactly one %include, of ${TORRC_D_GLOB} (found: ${includes.join(' | ') || 'none'})`, stdout: '' };
  const relocated = torrc.replace(`%include ${TORRC_D_GLOB}`, `%include ${PLACEHOLDER}/*.conf`);
  const defaults = tree.read(DEBIAN_DEFAULTS_TORRC) ?? '-host-';
  const pairs = dropInsOf(tree).flatMap((f) => [f.name, f.content]);
  const r = await run('sh', ['-c', SCRIPT, 'leakless-tor-check', mode, relocated, defaults, ...pairs]);
  if (r.exitCode === 0) return { ok: true, stdout: r.stdout };
  const last =
    (r.stderr.trim() || r.stdout.trim())
      .split('\n')
      .filter((l) => !/\[notice\]/.test(l))
      .pop() ?? '';
  return { ok: false, problem: `tor --${mode === 'verify' ? 'verify-config' : 'dump-config'} failed (exit ${r.exitCode}): ${last}`, stdout: r.stdout };
}

/** `tor --dump-config full` output → option → values (options without a value are unset). */
export function parseDump(stdout: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const m = /^([A-Za-z][A-Za-z0-9]*) (.+)$/.exec(line.trimEnd());
    if (!m) continue;
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

// Running nft for the tests without privilege: `unshare -rn` gives a throwaway
// user+network namespace in which nft can load and list tables (docs/design.md#nft-check).
import { spawnSync } from 'node:child_process';

export interface Ran {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function run(cmd: string, args: readonly string[], input = ''): Ran {
  const r = spawnSync(cmd, [...args], { input, encoding: 'utf8', timeout: 30_000 });
  if (r.error) return { exitCode: 127, stdout: '', stderr: String(r.error.message) };
  return { exitCode: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** Load files in order in one fresh namespace, then list the table. */
export function loadAndList(files: readonly string[], table = 'inet leakless'): { loads: Ran[]; listing: Ran } {
  // One shell in one namespace, files passed through the environment so no
  // quoting of rule text is involved.
  const script = [
    'i=0',
    'for f in "$@"; do i=$((i+1)); printf "%s" "$f" > "$TMPD/$i.nft"; nft -f "$TMPD/$i.nft"; echo "load $i $?" >&2; done',
    `nft list table ${table}`,
  ].join('\n');
  const tmp = run('mktemp', ['-d']).stdout.trim();
  const r = spawnSync('unshare', ['-rn', 'sh', '-c', script, 'sh', ...files], { encoding: 'utf8', env: { ...process.env, TMPD: tmp }, timeout: 30_000 });
  run('rm', ['-rf', tmp]);
  const loads = [...(r.stderr ?? '').matchAll(/^load (\d+) (\d+)$/gm)].map((m) => ({ exitCode: Number(m[2]), stdout: '', stderr: r.stderr }));
  return { loads, listing: { exitCode: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' } };
}

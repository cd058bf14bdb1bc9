// Which unit binds what over /etc/resolv.conf, read from every unit directory of a tree.
import type { TreeReader } from '@leakless/policy';

const UNIT_DIRS = ['/etc/systemd/system/', '/usr/lib/systemd/system/', '/lib/systemd/system/', '/run/systemd/system/'];

/** Every systemd unit or drop-in line that binds a file over /etc/resolv.conf or names the clearnet file. */
export function clearnetBinds(tree: TreeReader, file: string): { unit: string; path: string; line: string }[] {
  const out: { unit: string; path: string; line: string }[] = [];
  for (const p of tree.paths()) {
    const dir = UNIT_DIRS.find((d) => p.startsWith(d));
    if (!dir) continue;
    const rel = p.slice(dir.length);
    const unit = rel.includes('/') ? rel.split('/')[0]!.replace(/\.d$/, '') : rel;
    for (const raw of (tree.read(p) ?? '').split('\n')) {
      const line = raw.trim();
      if (line.startsWith('#') || line.startsWith(';')) continue;
      if (line.includes(file) || /^Bind(ReadOnly)?Paths=.*:\/etc\/resolv\.conf\b/.test(line)) out.push({ unit, path: p, line });
    }
  }
  return out;
}

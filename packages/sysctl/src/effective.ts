// What systemd-sysctl will actually set from a tree: every *.conf in the
// sysctl.d directories, a name in an earlier directory masking the same name
// in a later one, applied in lexical order of the file name, last write wins.
// Evaluated on the built rootfs this catches a packaged file that silently
// overrides a policy value.
import type { TreeReader } from '@leakless/policy';
import { parseSysctlConf } from './parse.js';

const DIRS = ['/etc/sysctl.d', '/run/sysctl.d', '/usr/local/lib/sysctl.d', '/usr/lib/sysctl.d', '/lib/sysctl.d'];

export function effectiveSysctl(tree: TreeReader): Map<string, { value: string; file: string }> {
  const byName = new Map<string, string>();
  for (const dir of DIRS) {
    for (const p of tree.paths()) {
      const name = p.slice(dir.length + 1);
      if (p.startsWith(`${dir}/`) && !name.includes('/') && name.endsWith('.conf') && !byName.has(name)) byName.set(name, p);
    }
  }
  const files = [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
  const out = new Map<string, { value: string; file: string }>();
  for (const file of [...files, '/etc/sysctl.conf']) {
    const text = tree.read(file);
    if (text === undefined) continue;
    for (const [key, value] of parseSysctlConf(text).entries) out.set(key.replace(/\//g, '.'), { value, file });
  }
  return out;
}

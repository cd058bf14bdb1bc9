// Reading sysctl.d files back (for the static assertions, which must work on
// a tree someone may have edited, not only on what emit() returned).
export function parseSysctlConf(text: string): { entries: Map<string, string>; errors: string[] } {
  const entries = new Map<string, string>();
  const errors: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const m = /^-?([a-z0-9_.*/-]+)\s*=\s*(.*)$/.exec(line);
    if (!m) errors.push(`line ${i + 1}: not "key = value": ${line}`);
    else if (entries.has(m[1]!)) errors.push(`line ${i + 1}: ${m[1]} set twice`);
    else entries.set(m[1]!, m[2]!.trim());
  });
  return { entries, errors };
}

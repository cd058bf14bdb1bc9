// Just enough of systemd's unit-file syntax to check what was emitted:
// sections of `Key=value` lines, comments and blank lines skipped, repeated
// keys kept in order (systemd's list semantics are not needed here).
export type UnitFile = ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;

export function parseUnitFile(text: string): UnitFile {
  const out = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[([A-Za-z]+)\]$/.exec(line);
    if (s) {
      section = new Map();
      out.set(s[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq <= 0) throw new Error(`not a unit-file line: ${line}`);
    const k = line.slice(0, eq);
    section.set(k, [...(section.get(k) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

export function directive(unit: UnitFile, section: string, key: string): readonly string[] {
  return unit.get(section)?.get(key) ?? [];
}

/** Whitespace-separated words of every value of a list directive (After=, CapabilityBoundingSet=). */
export function words(unit: UnitFile, section: string, key: string): string[] {
  return directive(unit, section, key).flatMap((v) => v.split(/\s+/).filter(Boolean));
}

// The one reader of systemd unit files and drop-ins, so every check reads a
// unit the way systemd does (systemd.syntax(7), systemd.unit(5)): a static
// check that missed systemd's rules could pass a unit whose drop-in quietly
// reset Before=network-pre.target.
//   - `[Section]` headers; a section named twice continues where it left off;
//   - `Key=value`, white space around both trimmed; `#` and `;` start comments;
//   - a line ending in a backslash continues on the next one (joined by a space);
//   - a key assigned again adds to its list; an empty assignment resets it;
//   - drop-ins apply on top of the unit file in order (parseUnit(text, base));
//   - a line systemd would ignore (no `=`, or outside a section) is ignored:
//     a check that wants a directive then finds it missing.

/** section → key → values in the order assigned, after systemd's resets. */
export type UnitFile = ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;

function logicalLines(text: string): string[] {
  const out: string[] = [];
  let pending: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || line.startsWith(';')) continue; // also inside a continuation, as systemd does
    const joined = pending === undefined ? line : `${pending} ${line}`;
    if (joined.endsWith('\\')) pending = joined.slice(0, -1).trimEnd();
    else {
      pending = undefined;
      out.push(joined);
    }
  }
  if (pending !== undefined) out.push(pending);
  return out;
}

/** Parse one unit file or drop-in; with `base`, apply it on top of what is already in effect. */
export function parseUnit(text: string, base?: UnitFile): UnitFile {
  const out = new Map<string, Map<string, string[]>>();
  for (const [name, keys] of base ?? []) out.set(name, new Map([...keys].map(([k, v]) => [k, [...v]])));
  let section: Map<string, string[]> | undefined;
  for (const line of logicalLines(text)) {
    if (line === '') continue;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = out.get(header[1]!) ?? new Map();
      out.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    section.set(key, value === '' ? [] : [...(section.get(key) ?? []), value]);
  }
  return out;
}

/** A unit file with its drop-ins applied in the given order (sort them by file name first, as systemd does). */
export function parseUnitWithDropIns(unit: string, dropIns: readonly string[]): UnitFile {
  return dropIns.reduce<UnitFile>((u, d) => parseUnit(d, u), parseUnit(unit));
}

/** Every value assigned to a key, one per assignment (ExecStart= lines, IPAddressDeny=). */
export function unitValues(u: UnitFile, section: string, key: string): readonly string[] {
  return u.get(section)?.get(key) ?? [];
}

/** The white-space separated words of a list directive (After=, Requires=, CapabilityBoundingSet=). */
export function unitWords(u: UnitFile, section: string, key: string): readonly string[] {
  return unitValues(u, section, key).flatMap((v) => v.split(/\s+/).filter(Boolean));
}

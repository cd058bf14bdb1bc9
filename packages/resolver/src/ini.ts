// A reader for NetworkManager's INI-style files (conf.d, keyfiles), enough to
// check what the emitted files say: sections, key=value, # comments.
export type Ini = Map<string, Map<string, string>>;

export function parseIni(text: string): { ini: Ini; errors: string[] } {
  const ini: Ini = new Map();
  const errors: string[] = [];
  let section: Map<string, string> | undefined;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const s = /^\[([^\]]+)\]$/.exec(line);
    if (s) {
      section = ini.get(s[1]!) ?? new Map();
      ini.set(s[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) errors.push(`line ${i + 1}: not key=value: ${line}`);
    else if (!section) errors.push(`line ${i + 1}: key outside a section`);
    else section.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return { ini, errors };
}

/** NetworkManager merges conf.d files in name order; a later file wins per key. */
export function mergeIni(texts: readonly string[]): Ini {
  const out: Ini = new Map();
  for (const t of texts)
    for (const [sec, keys] of parseIni(t).ini) {
      const m = out.get(sec) ?? new Map<string, string>();
      for (const [key, v] of keys) m.set(key, v);
      out.set(sec, m);
    }
  return out;
}

// apt's sources, read the way apt reads them: the image builder takes its
// mirrors from them, and tor-config checks that every one goes through Tor.
// apt reads /etc/apt/sources.list and, in sources.list.d, the one-line *.list
// and the deb822 *.sources files; a source in either is fetched, so a check
// that reads only one of them misses a plain-http mirror left in the other.

export const APT_SOURCES_LIST = '/etc/apt/sources.list';
export const APT_SOURCES_D = '/etc/apt/sources.list.d';

export interface AptSourceEntry {
  /** deb, deb-src or both (deb822 allows several). */
  readonly types: readonly string[];
  readonly uris: readonly string[];
  readonly suites: readonly string[];
  readonly components: readonly string[];
}

const TYPES = ['deb', 'deb-src'];

function parseDeb822(text: string): AptSourceEntry[] {
  const out: AptSourceEntry[] = [];
  for (const stanza of text.split(/\n[ \t]*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const raw of stanza.split('\n')) {
      if (/^\s*#/.test(raw) || raw.trim() === '') continue;
      if (/^[ \t]/.test(raw) && last) {
        fields.set(last, `${fields.get(last)} ${raw.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
      if (!m) continue;
      last = m[1]!.toLowerCase();
      fields.set(last, m[2]!.trim());
    }
    const list = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
    const types = list('types').filter((t) => TYPES.includes(t));
    if (types.length === 0) continue;
    if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    out.push({ types, uris: list('uris'), suites: list('suites'), components: list('components') });
  }
  return out;
}

function parseOneLine(text: string): AptSourceEntry[] {
  const out: AptSourceEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw
      .replace(/#.*$/, '')
      .replace(/\[[^\]]*\]/, ' ')
      .trim();
    const [type, uri, suite, ...components] = line.split(/\s+/);
    if (!type || !TYPES.includes(type) || !uri || !suite) continue;
    out.push({ types: [type], uris: [uri], suites: [suite], components });
  }
  return out;
}

/** The enabled deb and deb-src entries of a sources file: deb822 if its name ends in .sources, one-line otherwise. */
export function parseAptSources(name: string, content: string): AptSourceEntry[] {
  return name.endsWith('.sources') ? parseDeb822(content) : parseOneLine(content);
}

/** The files apt reads sources from, of these paths: sources.list, and the *.list and *.sources of sources.list.d (apt ignores other names there). */
export function aptSourceFiles(paths: readonly string[]): string[] {
  const inDir = new RegExp(`^${APT_SOURCES_D}/[A-Za-z0-9_.-]+\\.(list|sources)$`);
  return paths.filter((p) => p === APT_SOURCES_LIST || inDir.test(p)).sort();
}

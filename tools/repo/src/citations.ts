// Citations that point outside the repository. A reader of the code, of an
// emitted file in the image or of the docs must be able to follow every
// reference without anything but a clone: "see the spec, section 2" or "the
// build notes, 7.2" or "issue 7" sends them to documents they do not have.
// What the repo cites instead is a docs/ anchor (docs/design.md#fail-closed)
// or a policy path (tor.dnsPort). Public standards (RFC 9110 §5.6.7) and
// upstream trackers (Tails #20536) are fine: anyone can look them up.

export interface ForeignPattern {
  readonly id: string;
  readonly re: RegExp;
  /** What it points at, for the failure message. */
  readonly what: string;
}

// Each pattern is matched per line.
export const FOREIGN: readonly ForeignPattern[] = [
  { id: 'spec', re: /\bSPEC(?:\s*§|\s+\d|'s\b|\s+clause)/, what: 'the product specification (not in the repo)' },
  { id: 'build-notes', re: /\bbuild-toolchain\b/, what: 'the build-toolchain notes (not in the repo)' },
  { id: 'tails-notes', re: /tails-network-policy/, what: 'the Tails policy notes (not in the repo)' },
  { id: 'peer-notes', re: /\bpeers\.md\b/, what: 'the peer-systems notes (not in the repo)' },
  { id: 'style-notes', re: /style-anchors/, what: 'the style notes (not in the repo)' },
  { id: 'reference', re: /\breference\s*(?:§|\/)/, what: 'a reference document (not in the repo)' },
  { id: 'shared', re: /\bshared\/(?:reference|SPEC|hooks)\b/, what: 'the shared/ folder (not in the repo)' },
  { id: 'issue', re: /\bissues?\s+#?\d+\b/i, what: 'a project issue (not in the repo)' },
  { id: 'tails-section', re: /\bTails\s*§\s*\d/, what: 'a section of the Tails notes (not in the repo)' },
];

/** A section sign followed by a number, unless it is an RFC's section (RFC 9112 §5.2). */
const SECTION = /§\s*\d/g;
const RFC_BEFORE = /RFC\s*\d+\s*$/;

export interface Finding {
  readonly path: string;
  readonly line: number;
  readonly pattern: string;
  readonly text: string;
}

export function foreignCitationsInLine(line: string): string[] {
  const hits = FOREIGN.filter((p) => p.re.test(line)).map((p) => p.id);
  if (hits.length === 0) {
    for (const m of line.matchAll(SECTION)) {
      if (!RFC_BEFORE.test(line.slice(0, m.index))) {
        hits.push('section');
        break;
      }
    }
  }
  return hits;
}

export function foreignCitations(path: string, text: string): Finding[] {
  const out: Finding[] = [];
  text.split('\n').forEach((line, i) => {
    for (const pattern of foreignCitationsInLine(line)) out.push({ path, line: i + 1, pattern, text: line.trim().slice(0, 160) });
  });
  return out;
}

/**
 * Files left out of the scan: the lockfile (registry metadata, no prose) and
 * this check's own patterns and tests, which are exactly the strings it refuses.
 */
export const NOT_SCANNED: readonly string[] = ['package-lock.json', 'tools/repo/src/citations.ts', 'tools/repo/src/citations.test.ts'];

export function formatFinding(f: Finding): string {
  return `${f.path}:${f.line}: [${f.pattern}] ${f.text}`;
}

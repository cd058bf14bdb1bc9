// docs/ anchors: which ones a Markdown file defines (explicit <a id> and
// heading slugs, as GitHub renders them) and which ones the repository cites
// (docs/<file>.md#<anchor> anywhere; relative links in Markdown). A citation of
// an anchor that does not exist is as useless as one of a missing document.
import { posix } from 'node:path';

/** GitHub's heading slug: lower case, punctuation dropped, spaces to hyphens. */
export function headingSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/<[^>]*>/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** Lines outside fenced code blocks (``` or ~~~), with their numbers. */
function proseLines(md: string): { line: string; n: number }[] {
  const out: { line: string; n: number }[] = [];
  let fence: string | undefined;
  md.split('\n').forEach((line, i) => {
    const f = /^\s*(```|~~~)/.exec(line)?.[1];
    if (f && (fence === undefined || fence === f)) {
      fence = fence === undefined ? f : undefined;
      return;
    }
    if (fence === undefined) out.push({ line, n: i + 1 });
  });
  return out;
}

/** Every anchor a Markdown document defines: explicit ids, and heading slugs (-1, -2 … for repeats). */
export function anchorsOf(md: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { line } of proseLines(md)) {
    for (const m of line.matchAll(/<[a-z]+\s[^>]*\bid="([^"]+)"/gi)) anchors.add(m[1]!);
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) {
      const base = headingSlug(h[1]!);
      const k = seen.get(base) ?? 0;
      anchors.add(k === 0 ? base : `${base}-${k}`);
      seen.set(base, k + 1);
    }
  }
  return anchors;
}

export interface Citation {
  /** Where the citation is. */
  readonly from: string;
  readonly line: number;
  /** The cited document, relative to the repository root. */
  readonly doc: string;
  readonly anchor?: string;
}

// docs/<name>.md#<anchor> in any file (code comments, templates, emitted
// files, nft comments), but not inside a URL or a longer path. An anchor ends
// before sentence punctuation.
const DOC_REF = /(?<![\w/.-])docs\/([A-Za-z0-9_/-]+\.md)(?:#([A-Za-z0-9_.[\]-]*[A-Za-z0-9_\]]))?/g;
// Relative Markdown links: [text](../CONTRIBUTING.md), [text](design.md#anchor), [text](#anchor).
const MD_LINK = /\]\(([^)\s]*)\)/g;

export function citationsIn(path: string, text: string): Citation[] {
  const out: Citation[] = [];
  const isDoc = path.startsWith('docs/') && path.endsWith('.md');
  const lines = isDoc ? proseLines(text) : text.split('\n').map((line, i) => ({ line, n: i + 1 }));
  for (const { line, n } of lines) {
    for (const m of line.matchAll(DOC_REF)) out.push({ from: path, line: n, doc: `docs/${m[1]}`, ...(m[2] ? { anchor: m[2] } : {}) });
    if (!path.endsWith('.md')) continue;
    // a link inside `code` is text, not a link
    for (const m of line.replace(/`[^`]*`/g, '').matchAll(MD_LINK)) {
      const target = m[1]!;
      if (/^[a-z]+:/i.test(target) || target === '') continue;
      const [file, anchor] = target.split('#', 2) as [string, string | undefined];
      const doc = file === '' ? path : posix.normalize(posix.join(posix.dirname(path), decodeURI(file)));
      out.push({ from: path, line: n, doc, ...(anchor && doc.endsWith('.md') ? { anchor } : {}) });
    }
  }
  return out;
}

/** Every cited document or anchor that does not exist, as "from:line: doc#anchor (why)". */
/**
 * Files whose citations are not checked: this check's own examples, and the
 * introduction of policy.md, whose relative links are written for docs/ (they
 * are checked there, in the generated file).
 */
export const NOT_CHECKED: readonly string[] = ['package-lock.json', 'tools/repo/src/anchors.test.ts', 'tools/repo/src/policy-intro.md'];

export function brokenCitations(texts: ReadonlyMap<string, string>): string[] {
  const anchors = new Map<string, Set<string>>();
  const anchorsFor = (doc: string) => {
    const known = anchors.get(doc);
    if (known) return known;
    const a = anchorsOf(texts.get(doc) ?? '');
    anchors.set(doc, a);
    return a;
  };
  const problems = new Set<string>();
  for (const [path, text] of texts) {
    for (const c of citationsIn(path, text)) {
      const where = `${c.from}:${c.line}: ${c.doc}${c.anchor ? `#${c.anchor}` : ''}`;
      if (!texts.has(c.doc)) problems.add(`${where} (no such file)`);
      else if (c.anchor !== undefined && !anchorsFor(c.doc).has(c.anchor)) problems.add(`${where} (no such anchor)`);
    }
  }
  return [...problems];
}

import { describe, expect, it } from 'vitest';
import { anchorsOf, brokenCitations, citationsIn, headingSlug, NOT_CHECKED } from './anchors.js';
import { repoTexts } from './repo-files.js';

describe('anchors', () => {
  it('slugs headings the way GitHub does', () => {
    expect(headingSlug('Hostile local programs: attacks and their tests')).toBe('hostile-local-programs-attacks-and-their-tests');
    expect(headingSlug('`@leakless/policy`')).toBe('leaklesspolicy');
    expect(headingSlug('A BIOS and UEFI hybrid ISO')).toBe('a-bios-and-uefi-hybrid-iso');
  });

  it('collects explicit ids and heading slugs, not headings inside code blocks', () => {
    const a = anchorsOf('# Top\n<a id="fail-closed"></a>\n## Top\n```\n# not a heading\n```\n');
    expect([...a].sort()).toEqual(['fail-closed', 'top', 'top-1']);
  });

  it('finds docs/ citations in code and relative links in Markdown, without trailing punctuation', () => {
    expect(citationsIn('x.ts', "// see docs/design.md#fail-closed. And docs/policy.md#tor.dnsPort.\nclause: 'docs/threat-model.md#ipv6: no IPv6'")).toEqual([
      { from: 'x.ts', line: 1, doc: 'docs/design.md', anchor: 'fail-closed' },
      { from: 'x.ts', line: 1, doc: 'docs/policy.md', anchor: 'tor.dnsPort' },
      { from: 'x.ts', line: 2, doc: 'docs/threat-model.md', anchor: 'ipv6' },
    ]);
    expect(citationsIn('docs/a.md', 'see [b](b.md#x), [here](#y), [c](../CONTRIBUTING.md), [web](https://example.org/docs/x.md#z) and `[a](b)`')).toEqual([
      { from: 'docs/a.md', line: 1, doc: 'docs/b.md', anchor: 'x' },
      { from: 'docs/a.md', line: 1, doc: 'docs/a.md', anchor: 'y' },
      { from: 'docs/a.md', line: 1, doc: 'CONTRIBUTING.md' },
    ]);
  });

  it('reports a missing anchor and a missing document', () => {
    const texts = new Map([
      ['docs/a.md', '<a id="here"></a>\n# Title\n'],
      ['src/x.ts', '// docs/a.md#here docs/a.md#title docs/a.md#gone docs/none.md#x'],
    ]);
    expect(brokenCitations(texts)).toEqual(['src/x.ts:1: docs/a.md#gone (no such anchor)', 'src/x.ts:1: docs/none.md#x (no such file)']);
  });
});

describe('the repository', () => {
  it('cites only docs/ anchors that exist', () => {
    const texts = repoTexts(undefined, (p) => !NOT_CHECKED.includes(p));
    expect(texts.has('docs/design.md')).toBe(true);
    expect(brokenCitations(texts)).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import { foreignCitations, foreignCitationsInLine, formatFinding, NOT_SCANNED } from './citations.js';
import { repoTexts } from './repo-files.js';

describe('a citation that points outside the repository', () => {
  it.each([
    ['// The module contract (SPEC §3). A module is', 'spec'],
    ["clause: 'SPEC 2.3: ct state invalid dropped'", 'spec'],
    ["// SPEC §2's Beyond-Tails items", 'spec'],
    ['/** The policy clause (or SPEC clause) this rule implements */', 'spec'],
    ['// -100 = dstnat (build-toolchain §7.2).', 'build-notes'],
    ['# see shared/reference/tails-network-policy.md §9–10', 'tails-notes'],
    ['# (peers.md §3.8); the firewall, not torsocks', 'peer-notes'],
    ['# hardening (reference §5.3): drop to clearnet', 'reference'],
    ['// htpdate through Tor (reference/x.md', 'reference'],
    ['// The firewall, proven with real packets (issue 3): the emitted', 'issue'],
    ["clause: 'Issue 7: leakless boot runs the self-test'", 'issue'],
    ['(Tails §1.14 gap)', 'tails-section'],
    ['# §5.2). The request runs unprivileged', 'section'],
  ])('is found: %s', (line, pattern) => {
    expect(foreignCitationsInLine(line)).toContain(pattern);
  });

  it.each([
    ['// obs-fold and bare CR/LF are refused (RFC 9112 §5.2 allows rejecting them)'],
    ['// RFC 9110 §5.6.7 IMF-fixdate, the only form a server may generate.'],
    ['//   node pool-servers.mjs SPEC.json'],
    ['// SPEC: { dir, listen: { address, port } }'],
    ['const YAML11_SPECIAL = /^(y|n)$/i;'],
    ["clause: 'docs/threat-model.md#ct-state-invalid: ct state invalid dropped'"],
    ['# the rules stay until the kernel stops (Tails #20536).'],
    ['// tissue 5 and reissue 6 are words, not issues'],
  ])('is not a false alarm: %s', (line) => {
    expect(foreignCitationsInLine(line)).toEqual([]);
  });

  it('is reported with its file and line', () => {
    expect(foreignCitations('a/b.ts', 'ok\n// (SPEC §5) lab\n').map(formatFinding)).toEqual(['a/b.ts:2: [spec] // (SPEC §5) lab']);
  });
});

describe('the repository', () => {
  // Code, comments, templates, emitted files (chroot-includes/) and docs: a
  // reader with nothing but a clone can follow every reference.
  it('cites nothing outside itself: every citation is a docs/ anchor or a policy path', () => {
    const texts = repoTexts(undefined, (p) => !NOT_SCANNED.includes(p));
    const findings = [...texts].flatMap(([path, text]) => foreignCitations(path, text));
    expect(findings.map(formatFinding)).toEqual([]);
  });
});

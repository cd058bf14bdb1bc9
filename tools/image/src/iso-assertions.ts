// The runtime assertions a built ISO carries, read from the ISO itself (its
// module squashfs), so a boot knows how many results a complete self-test
// must report for the scopes that boot can evaluate: a boot without a network
// leaves out the active probes (scope network), a lab boot runs them all.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { parseSelftestDocument, type SelftestDocument } from '@leakless/selftest';
import { RUNTIME_ASSERTIONS_PATH } from './iso-plan.js';
import { MODULE_LAYER } from './iso-recipes.js';

export async function isoAssertions(iso: string): Promise<SelftestDocument> {
  const dir = await mkdtemp(join(tmpdir(), 'lk-iso-assertions-'));
  try {
    const layer = join(dir, MODULE_LAYER);
    const x = await execa('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', `/live/${MODULE_LAYER}`, layer], { reject: false, all: true });
    if (x.exitCode !== 0) throw new Error(`xorriso could not extract /live/${MODULE_LAYER} from ${iso}: ${String(x.all).trim().split('\n').pop()}`);
    const r = await execa('unsquashfs', ['-cat', layer, RUNTIME_ASSERTIONS_PATH.slice(1)], { reject: false, stripFinalNewline: false });
    if (r.exitCode !== 0) throw new Error(`${iso} carries no ${RUNTIME_ASSERTIONS_PATH}: ${r.stderr.trim()}`);
    return parseSelftestDocument(r.stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** How many results a complete self-test reports with or without its active probes. */
export function expectedResults(doc: SelftestDocument, network: boolean): number {
  return doc.assertions.filter((a) => network || a.scope !== 'network').length;
}

import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from './main.js';
import { BOOT_HELP } from './boot.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) }, out, err };
}

describe('leakless boot --lab: bad input is refused before anything starts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lk-boot-'));
  const iso = join(dir, 'x.iso');
  writeFileSync(iso, '');
  const cases: [string[], RegExp][] = [
    [['--fail-closed'], /^--fail-closed needs --lab$/],
    [['--config', 'x.yaml'], /^--config needs --lab$/],
    [['--lab', '--firmware', 'both'], /^--firmware with --lab: bios or uefi/],
    [['--lab', '--stall', '30'], /^--lab sets its own time limits/],
    [['--lab', '--memory', '4096'], /^--lab sets its own time limits/],
  ];
  for (const [args, msg] of cases) {
    it(`${args.join(' ')}: one line naming the flag, exit 2`, async () => {
      const c = capture();
      expect(await main(['boot', '--iso', iso, ...args], c.io)).toBe(2);
      expect(c.err).toHaveLength(1);
      expect(c.err[0]).toMatch(new RegExp(msg.source.replace(/^\^/, '')));
      expect(c.out).toEqual([]);
    });
  }
  it('the help names --lab, the fw_cfg channel and the report', () => {
    expect(BOOT_HELP).toContain('leakless boot --lab');
    expect(BOOT_HELP).toContain('docs/threat-model.md#test-settings-fw-cfg');
    expect(BOOT_HELP).toContain('dist/lab/boot-capture.{md,json}');
  });
  it('cleans up', () => rmSync(dir, { recursive: true, force: true }));
});

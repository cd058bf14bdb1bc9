import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootIso, STALL_LIMIT_MS } from './boot.js';

const dir = mkdtempSync(join(tmpdir(), 'lk-boot-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A QEMU double that writes to the serial log file bootIso gives it (-serial file:PATH). */
function fakeQemu(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\nprev=; serial=\nfor a in "$@"; do [ "$prev" = -serial ] && serial=\${a#file:}; prev=$a; done\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}
const iso = join(dir, 'x.iso');
writeFileSync(iso, '');

describe('the stall limit', () => {
  it('is derived from measured boots (longest TCG silence 73.6 s) with margin, far below the 600 s timeout', () => {
    expect(STALL_LIMIT_MS).toBeGreaterThanOrEqual(2 * 73_600);
    expect(STALL_LIMIT_MS).toBeLessThanOrEqual(300_000);
  });

  it('a guest whose serial console goes silent (GRUB, then nothing) is stopped at the limit, with the reason', async () => {
    const qemu = fakeQemu('qemu-hangs', `printf 'SeaBIOS (version 1.16.2)\\r\\nBooting \`leakless 0.1.0 (default)'"'"'\\r\\n' >> "$serial"\nexec sleep 60`);
    const t = Date.now();
    const r = await bootIso({ iso, firmware: 'bios', accel: 'kvm', timeoutMs: 60_000, stallMs: 1500, qemu, logDir: join(dir, 'hang') });
    expect(Date.now() - t).toBeLessThan(6000);
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(
      /^stopped: the serial console was silent for 1\.\ds \(stall limit 1\.5s\) under KVM; the guest hangs after "Booting `leakless 0\.1\.0 \(default\)'"$/,
    );
    expect(r.serialTail.at(-1)).toBe("Booting `leakless 0.1.0 (default)'");
    expect(r.longestSilenceMs).toBeGreaterThan(1500);
  });

  it('a guest that keeps printing is not stopped, however long it takes', async () => {
    const qemu = fakeQemu('qemu-talks', `i=0\nwhile [ $i -lt 12 ]; do echo "line $i" >> "$serial"; sleep 0.25; i=$((i+1)); done\nexit 3`);
    const r = await bootIso({ iso, firmware: 'bios', accel: 'tcg', timeoutMs: 60_000, stallMs: 1500, qemu, logDir: join(dir, 'talk') });
    expect(r.reason).toMatch(/^QEMU exited \(3\) before the self-test reported/);
    expect(r.ms).toBeGreaterThan(2500);
    expect(r.longestSilenceMs).toBeLessThan(1500);
  });
});

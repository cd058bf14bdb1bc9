// The accelerator probe on this machine, for real: Debian's kernel fetched
// with apt-get download into a fresh cache, booted under TCG (which must
// reach its panic line: this is what proves the probe can see a kernel boot)
// and under KVM (whatever the answer, it comes within the probe's time limit,
// with a reason); the kernel is then reused from the cache. What `auto`
// picks here is printed for the closing note, not asserted: machines differ.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootProbeKernel, chooseAccel, ensureProbeKernel, probeKvm, PROBE_TIMEOUT_MS, type CacheEntry } from '@leakless/image';
import { needRoot, needTool, skipUnless } from '@leakless/testing';
import { printFigures } from './shared.js';

const skip = skipUnless(
  'the real accelerator probe',
  needRoot('apt-get download into the cache'),
  needTool('qemu-system-x86_64', ['--version'], 'npm run e2e installs it (tools/leakless/install-deps.sh e2e)'),
  needTool('apt-get', ['--version']),
  needTool('dpkg-deb', ['--version']),
);

describe.skipIf(skip).sequential('the accelerator probe on this machine', () => {
  const cache = mkdtempSync(join(tmpdir(), 'lk-probe-cache-'));
  afterAll(() => rmSync(cache, { recursive: true, force: true }));
  const figures: Record<string, string> = {};
  let kernel = '';

  it('fetches Debian’s kernel with apt-get download into the cache, as one cache entry', async () => {
    const t = Date.now();
    kernel = await ensureProbeKernel({ cacheDir: cache });
    figures['probe kernel fetch (cold)'] = `${((Date.now() - t) / 1000).toFixed(1)} s`;
    const dirs = readdirSync(cache).filter((d) => !d.startsWith('.'));
    expect(dirs).toHaveLength(1);
    const entry = JSON.parse(readFileSync(join(cache, dirs[0]!, 'entry.json'), 'utf8')) as CacheEntry;
    expect(entry.kind).toBe('probe-kernel');
    expect(entry.inputs).toMatchObject({ package: expect.stringMatching(/^linux-image-\d/) as unknown as string });
    expect(entry.content.files.map((f) => f.path)).toEqual(['vmlinuz']);
    expect(entry.content.bytes).toBeGreaterThan(4_000_000);
    figures['probe kernel'] = `${String(entry.inputs.package)} ${String(entry.inputs.version)}, ${(entry.content.bytes / 1e6).toFixed(1)} MB`;
    const t2 = Date.now();
    expect(await ensureProbeKernel({ cacheDir: cache })).toBe(kernel);
    figures['probe kernel (cached, digest verified)'] = `${((Date.now() - t2) / 1000).toFixed(2)} s`;
  });

  it('under TCG the kernel reaches its panic line within the probe’s limit', async () => {
    const b = await bootProbeKernel({ kernel, accel: 'tcg' });
    figures['TCG probe boot'] = `${(b.ms / 1000).toFixed(1)} s: ${b.reason}`;
    expect(b.booted, `${b.reason}\n${b.tail.join('\n')}`).toBe(true);
    expect(b.ms).toBeLessThan(PROBE_TIMEOUT_MS);
  });

  it('under KVM: a verdict with its reason, within the probe’s limit', async () => {
    const v = await probeKvm({ kernel });
    figures['KVM probe'] = `${(v.ms / 1000).toFixed(1)} s: ${v.usable ? 'usable' : 'unusable'}: ${v.reason}`;
    expect(v.reason.length).toBeGreaterThan(10);
    expect(v.ms).toBeLessThan(PROBE_TIMEOUT_MS + 10_000);
    // auto follows the verdict, and fakemachine never runs without a KVM that boots Linux
    const d = await chooseAccel({ forDebos: true, kernel });
    figures['auto picks'] = `${d.accel} (${d.accelReason}); debos ${d.debos.mode} (${d.debos.reason})`;
    expect(d.accel).toBe(v.usable ? 'kvm' : 'tcg');
    if (!v.usable) expect(d.debos.mode).toBe('host');
  });

  afterAll(() => {
    printFigures('accelerator probe figures', figures);
  });
});

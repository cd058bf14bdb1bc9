import { describe, expect, it } from 'vitest';
import { decide, median, queryPool, shuffled, type PoolResult } from './htp.js';

const hosts = Array.from({ length: 13 }, (_, i) => `h${i}.example`);
const identity = (n: number): number => n - 1; // Fisher–Yates with j = i: keeps the order

describe('queryPool (per-pool failure ratio, Tails 0.34)', () => {
  it('tries hosts in random order until one answers', async () => {
    const tried: string[] = [];
    const r = await queryPool(
      hosts,
      0.34,
      async (h) => {
        tried.push(h);
        if (tried.length < 3) throw new Error('down');
        return 1500;
      },
      identity,
    );
    expect(r).toEqual({
      ok: true,
      host: 'h2.example',
      offsetMs: 1500,
      failures: [
        { host: 'h0.example', error: 'down' },
        { host: 'h1.example', error: 'down' },
      ],
    });
  });
  it('succeeds after 4 failures of 13 (4/13 ≤ 0.34) and gives up at the 5th (5/13 > 0.34)', async () => {
    let n = 0;
    const fiveDown = await queryPool(
      hosts,
      0.34,
      async () => {
        if (++n <= 5) throw new Error('down');
        return 0;
      },
      identity,
    );
    expect(fiveDown.ok).toBe(false);
    expect(n).toBe(5);
    n = 0;
    const fourDown = await queryPool(
      hosts,
      0.34,
      async () => {
        if (++n <= 4) throw new Error('down');
        return 7;
      },
      identity,
    );
    expect(fourDown).toMatchObject({ ok: true, offsetMs: 7 });
  });
  it('fails when every host of a small pool fails', async () => {
    const r = await queryPool(['only.example'], 1, async () => Promise.reject(new Error('x')));
    expect(r.ok).toBe(false);
  });
  it('shuffles with the injected random source (a CSPRNG by default)', () => {
    expect(shuffled([1, 2, 3, 4], () => 0)).toEqual([2, 3, 4, 1]);
    const seen = new Set(Array.from({ length: 200 }, () => shuffled(hosts)[0]));
    expect(seen.size).toBeGreaterThan(5);
  });
});

describe('median and the decision', () => {
  const ok = (offsetMs: number): PoolResult => ({ ok: true, host: 'x', offsetMs, failures: [] });
  it('median of odd and even counts', () => {
    expect(median([30, -5, 10])).toBe(10);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow();
  });
  it('one lying pool cannot move the clock', () => {
    expect(decide([ok(3_600_000), ok(2_000), ok(2_500)], 1000)).toEqual({ kind: 'change', medianMs: 2_500 });
  });
  it('no change under the threshold, in either direction', () => {
    expect(decide([ok(-900), ok(-200), ok(950)], 1000)).toEqual({ kind: 'no-change', medianMs: -200 });
    expect(decide([ok(-1500), ok(-1200), ok(950)], 1000)).toEqual({ kind: 'change', medianMs: -1200 });
  });
  it('a pool that failed aborts, naming the pool', () => {
    const d = decide([ok(1), { ok: false, failures: [{ host: 'a', error: 'down' }] }, ok(2)], 1000);
    expect(d).toMatchObject({ kind: 'pool-failed', pool: 2 });
  });
});

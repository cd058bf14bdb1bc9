// Without root the lab skips loudly; under CI=true it fails instead.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { labUnavailable, skipLab } from './prereq.js';

describe('lab prerequisites', () => {
  const ci = process.env.CI;
  afterEach(() => {
    vi.restoreAllMocks();
    if (ci === undefined) delete process.env.CI;
    else process.env.CI = ci;
  });

  it('not root: a reason, a loud skip, and a failure under CI=true', () => {
    vi.spyOn(process, 'getuid').mockReturnValue(1000);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(labUnavailable()).toMatch(/not root/);
    delete process.env.CI;
    expect(skipLab('the lab')).toBe(true);
    expect(warn.mock.calls.flat().join(' ')).toMatch(/SKIPPING the lab: not root/);
    process.env.CI = 'true';
    expect(() => skipLab('the lab')).toThrow(/CI=true and the lab cannot run: not root/);
  });
});

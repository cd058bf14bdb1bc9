// Without root the lab skips loudly; under CI=true it fails instead.
import { skipUnless } from '@leakless/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { labNeeds } from './prereq.js';

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
    expect(labNeeds().filter(Boolean).join('; ')).toMatch(/not root/);
    delete process.env.CI;
    expect(skipUnless('the lab', ...labNeeds())).toBe(true);
    expect(warn.mock.calls.flat().join(' ')).toMatch(/SKIPPING the lab cannot run: not root/);
    process.env.CI = 'true';
    expect(() => skipUnless('the lab', ...labNeeds())).toThrow(/CI=true and the lab cannot run: not root/);
  });

  it('a missing tool is named', () => {
    expect(labNeeds('no-such-tool-leakless').filter(Boolean).join('; ')).toMatch(/no-such-tool-leakless is not usable \(ENOENT/);
  });
});

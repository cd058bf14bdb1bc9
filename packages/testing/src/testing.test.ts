import { afterEach, describe, expect, it, vi } from 'vitest';
import { needTool, skipUnless } from './index.js';

describe('skipUnless', () => {
  const ci = process.env.CI;
  afterEach(() => {
    if (ci === undefined) delete process.env.CI;
    else process.env.CI = ci;
    vi.restoreAllMocks();
  });
  it('runs when nothing is missing', () => {
    expect(skipUnless('x', undefined, needTool('sh', ['-c', 'exit 0']))).toBe(false);
  });
  it('skips loudly on a developer machine', () => {
    delete process.env.CI;
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(skipUnless('the lab', 'not root', needTool('no-such-tool-leakless'))).toBe(true);
    expect(warn.mock.calls[0]![0]).toMatch(/SKIPPING the lab cannot run: not root; no-such-tool-leakless is not usable \(ENOENT/);
  });
  it('fails under CI=true', () => {
    process.env.CI = 'true';
    expect(() => skipUnless('the lab', 'not root')).toThrow(/CI=true and the lab cannot run: not root/);
  });
});

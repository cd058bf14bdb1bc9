import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { defaultProfilePath, readDefaultPolicy } from './profile.js';
import { hostToolRunner } from './tool-runner.js';

describe('the shipped default profile', () => {
  it('is inside the package, not a path back into the repository', () => {
    const pkg = new URL('..', import.meta.url).pathname;
    expect(defaultProfilePath().startsWith(pkg)).toBe(true);
    expect(defaultProfilePath()).not.toContain('image-config');
  });

  it('is the repository’s image-config/default.yaml (rebuild with `npm run build` after editing it)', () => {
    expect(readFileSync(defaultProfilePath(), 'utf8')).toBe(readFileSync(new URL('../../../image-config/default.yaml', import.meta.url), 'utf8'));
  });

  it('validates', async () => {
    const r = await readDefaultPolicy();
    expect(r.ok && r.policy.name).toBe('default');
  });
});

describe('hostToolRunner', () => {
  it('returns the exit code and output, feeds the input, and reports a missing command as 127', async () => {
    expect(await hostToolRunner('sh', ['-c', 'cat; echo err >&2; exit 3'], { input: 'in\n' })).toEqual({ exitCode: 3, stdout: 'in', stderr: 'err' });
    expect(await hostToolRunner('true', [])).toEqual({ exitCode: 0, stdout: '', stderr: '' });
    expect(await hostToolRunner('no-such-tool-leakless', [])).toMatchObject({ exitCode: 127, stderr: expect.stringContaining('ENOENT') });
  });
});

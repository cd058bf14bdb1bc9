// The saved image repository's index carries the archive's Priority and
// Section: a rebuild's mmdebstrap picks its required set by them.
import { describe, expect, it } from 'vitest';
import { archiveOverrides } from './saved-repo.js';

describe("the archive's overrides", () => {
  const lists = [
    'Package: apt\nVersion: 2.6.2\nPriority: required\nSection: admin\nDescription: x\n y\n',
    'Package: tor\nSection: net\nPriority: optional\n',
    'Package: apt\nPriority: important\nSection: admin\n',
    'Package: not-in-the-image\nPriority: required\nSection: misc\n',
    'Package: no-priority\nSection: misc\n',
  ].join('\n');
  it('are read per package of the image, the first index that lists it winning', () => {
    expect(archiveOverrides(lists, new Set(['apt', 'tor', 'no-priority']))).toEqual(
      new Map([
        ['apt', { priority: 'required', section: 'admin' }],
        ['tor', { priority: 'optional', section: 'net' }],
      ]),
    );
  });
});

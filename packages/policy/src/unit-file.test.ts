import { describe, expect, it } from 'vitest';
import { parseUnit, parseUnitWithDropIns, unitValues, unitWords } from './unit-file.js';

describe('parseUnit: systemd unit-file syntax', () => {
  it('keeps every assignment of a key in order, and splits list directives into words', () => {
    const u = parseUnit('[Unit]\nAfter=a.service b.service\nAfter=c.target\n[Service]\nExecStart=/bin/x -f y\nExecStart=/bin/z\n');
    expect(unitWords(u, 'Unit', 'After')).toEqual(['a.service', 'b.service', 'c.target']);
    expect(unitValues(u, 'Service', 'ExecStart')).toEqual(['/bin/x -f y', '/bin/z']);
    expect(unitValues(u, 'Service', 'ExecStop')).toEqual([]);
    expect(unitValues(u, 'Install', 'WantedBy')).toEqual([]);
  });

  it('resets a list on an empty assignment, within a file and across drop-ins', () => {
    expect(unitWords(parseUnit('[Unit]\nBefore=a.target b.target\nBefore=\nBefore=c.target\n'), 'Unit', 'Before')).toEqual(['c.target']);
    const u = parseUnitWithDropIns('[Unit]\nBefore=network-pre.target\nAfter=x\n', ['[Unit]\nBefore=\n', '[Unit]\nAfter=y\n']);
    expect(unitWords(u, 'Unit', 'Before')).toEqual([]);
    expect(unitWords(u, 'Unit', 'After')).toEqual(['x', 'y']);
    // the base is not changed by applying a drop-in on top of it
    const base = parseUnit('[Unit]\nAfter=x\n');
    parseUnit('[Unit]\nAfter=\n', base);
    expect(unitWords(base, 'Unit', 'After')).toEqual(['x']);
  });

  it('continues a section named twice, trims white space, skips comments, joins continuation lines', () => {
    const u = parseUnit(
      [
        '# c',
        '[Unit]',
        'Requires = a.service ',
        '; also a comment',
        '[Service]',
        'Type=oneshot',
        '[Unit]',
        'Requires=b.service',
        'After=one \\',
        '# inside',
        '  two',
        '',
      ].join('\n'),
    );
    expect(unitWords(u, 'Unit', 'Requires')).toEqual(['a.service', 'b.service']);
    expect(unitWords(u, 'Unit', 'After')).toEqual(['one', 'two']);
    expect(unitValues(u, 'Service', 'Type')).toEqual(['oneshot']);
  });

  it('ignores the lines systemd ignores (no "=", outside a section), so a check finds the directive missing', () => {
    const u = parseUnit('Before=outside.target\n[Unit]\nBefore network-pre.target\nWants=network-pre.target\n');
    expect(unitWords(u, 'Unit', 'Before')).toEqual([]);
    expect(unitWords(u, 'Unit', 'Wants')).toEqual(['network-pre.target']);
  });
});

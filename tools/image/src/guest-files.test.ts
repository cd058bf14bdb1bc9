import { describe, expect, it } from 'vitest';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseUnit, unitValues, PATHS } from '@leakless/policy';
import {
  bundleGuest,
  LAB_AGENT_PROGRAM,
  LAB_AGENT_UNIT,
  labAgentUdevRule,
  labAgentUnit,
  labGuestFiles,
  TEST_SETTINGS_PROGRAM,
  TEST_SETTINGS_UNIT,
  testSettingsUnit,
} from './guest-files.js';
import { LAB_PORT } from './lab-agent.js';
import { SELFTEST_NETWORK_VAR, SELFTEST_WITHOUT_NETWORK, TEST_SETTINGS_PATHS } from './test-channel.js';
import { selftestUnit } from './iso-plan.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('the image’s side of the lab boot', () => {
  it('bundles the reader and the agent for Debian’s nodejs: one file each, no build path, the same bytes every time', () => {
    for (const entry of ['test-settings', 'lab-agent'] as const) {
      const b = bundleGuest(entry);
      expect(b.startsWith(`#!${PATHS.node}\n`)).toBe(true);
      expect(b).not.toContain(repo);
      expect(b).not.toMatch(/require\("(esbuild|execa|zod|yaml|ejs)"\)/);
      expect(bundleGuest(entry)).toBe(b);
    }
  });

  it('neither unit runs on real hardware; the agent also needs the port and accepted settings', () => {
    const reader = parseUnit(testSettingsUnit());
    expect(unitValues(reader, 'Unit', 'ConditionVirtualization')).toEqual(['vm']);
    expect(unitValues(reader, 'Service', 'ExecStart')).toEqual([TEST_SETTINGS_PROGRAM]);
    // tor and the time tools start after the settings are decided
    expect(unitValues(reader, 'Unit', 'Before').join(' ')).toMatch(/tor@default\.service.*leakless-pretor-time\.service.*leakless-htpdate\.service/);
    const agent = parseUnit(labAgentUnit());
    expect(unitValues(agent, 'Unit', 'ConditionVirtualization')).toEqual(['vm']);
    expect(unitValues(agent, 'Unit', 'ConditionPathExists')).toEqual([`/dev/virtio-ports/${LAB_PORT}`, TEST_SETTINGS_PATHS.agentFlag]);
    expect(unitValues(agent, 'Service', 'ExecStart')).toEqual([LAB_AGENT_PROGRAM]);
    expect(labAgentUdevRule()).toContain(`ATTR{name}=="${LAB_PORT}"`);
    expect(labAgentUdevRule()).toContain(`ENV{SYSTEMD_WANTS}+="${LAB_AGENT_UNIT}"`);
  });

  it('the self-test runs its active probes only with destinations from the test settings, never blind', () => {
    const u = parseUnit(selftestUnit());
    expect(unitValues(u, 'Service', 'Environment')).toEqual([`"${SELFTEST_NETWORK_VAR}=${SELFTEST_WITHOUT_NETWORK}"`]);
    expect(unitValues(u, 'Service', 'EnvironmentFile')).toEqual([`-${TEST_SETTINGS_PATHS.selftestEnv}`]);
    expect(unitValues(u, 'Service', 'ExecStart')[0]).toMatch(new RegExp(` \\$${SELFTEST_NETWORK_VAR}$`));
    expect(unitValues(u, 'Unit', 'After').join(' ')).toContain(TEST_SETTINGS_UNIT);
    expect(SELFTEST_WITHOUT_NETWORK.split(' ')).toEqual(['--scope', 'system', '--scope', 'netns']);
  });

  it('are image files with explicit modes, next to the self-test’s unit and rule', () => {
    const files = labGuestFiles('/u', '/r');
    expect(files.map((f) => [f.path, f.mode.toString(8)])).toEqual([
      [TEST_SETTINGS_PROGRAM, '755'],
      ['/u/leakless-test-settings.service', '644'],
      [LAB_AGENT_PROGRAM, '755'],
      ['/u/leakless-lab-agent.service', '644'],
      ['/r/99-leakless-lab-agent.rules', '644'],
    ]);
  });
});

// The boot lab's places for guests booting at once: each slot its own /24
// inside the policy's LAN ranges, so no guest's broadcast reaches another's
// capture; a slot that would leave the LAN ranges is refused, not used.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Policy, readPolicyFile } from '@leakless/policy';
import { skipUnless } from '@leakless/testing';
import { buildLab, labNeeds, must, teardownLab } from '../lab/index.js';
import { guestLan, ipv6Addresses, ipv6Off } from './lab.js';

const policyFile = join(import.meta.dirname, '..', '..', '..', 'image-config', 'default.yaml');

describe('boot lab slots', () => {
  it('gives each slot its own /24 next to the lab LAN, with router, resolver and a DHCP range inside it', async () => {
    const loaded = await readPolicyFile(policyFile);
    if (!loaded.ok) throw new Error('default policy invalid');
    const policy: Policy = loaded.policy;
    const lans = [0, 1, 2, 3].map((i) => guestLan(policy, '192.168.77.0/24', i));
    expect(lans.map((l) => l.subnet)).toEqual(['192.168.78.0/24', '192.168.79.0/24', '192.168.80.0/24', '192.168.81.0/24']);
    expect(lans[1]).toEqual({
      subnet: '192.168.79.0/24',
      router: '192.168.79.1',
      resolver: '192.168.79.53',
      dhcpFirst: '192.168.79.100',
      dhcpLast: '192.168.79.199',
    });
    // slot 1 next to 192.168.254.0/24 would be 192.169.0.0/24, outside the policy's 192.168.0.0/16: refused
    expect(() => guestLan(policy, '192.168.254.0/24', 1)).toThrow(/not inside lan\.ipv4Ranges/);
  });
});

describe.skipIf(skipUnless('the boot lab without IPv6 (e2e/src/bootlab/lab.test.ts)', ...labNeeds()))('the boot lab without IPv6', () => {
  it('switches IPv6 off on every interface of every lab namespace, also on one made afterwards (the taps)', async () => {
    const loaded = await readPolicyFile(policyFile);
    if (!loaded.ok) throw new Error('default policy invalid');
    const lab = await buildLab(loaded.policy);
    try {
      // the one lab topology keeps IPv6 on (its veths carry 2001:db8:2::/64): what the boot lab switches off
      expect((await ipv6Addresses(lab.created)).some((a) => a.startsWith(`${lab.lan} lan-inet `))).toBe(true);
      await ipv6Off(lab.created);
      await must('ip', ['-n', lab.lan, 'link', 'add', 'lk6a', 'type', 'veth', 'peer', 'name', 'lk6b']);
      for (const dev of ['lk6a', 'lk6b']) await must('ip', ['-n', lab.lan, 'link', 'set', dev, 'up']);
      expect(await ipv6Addresses(lab.created)).toEqual([]);
    } finally {
      await teardownLab(lab);
    }
  });
});

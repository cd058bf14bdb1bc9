// Who holds the Tor ports: the check the self-test runs against `ss -p`
// (a squatter on a Tor port while tor is down is seen). Proven with Debian's
// tor and a squatter in the lab: e2e/src/lab/selftest-checks.test.ts.
import { defaultPolicy } from '@leakless/policy/testing';
import { describe, expect, it } from 'vitest';
import { emit, TOR_PROCESS } from './index.js';

const policy = defaultPolicy();

describe('tor.listeners', () => {
  it('names every Tor listener of the policy, held by tor, and allows only the DHCP client beside them off loopback', () => {
    const a = emit(policy).runtimeAssertions.filter((x) => x.check.kind === 'listeners');
    expect(a.map((x) => [x.id, x.scope])).toEqual([['tor.listeners', 'netns']]);
    const check = a[0]!.check as Extract<(typeof a)[0]['check'], { kind: 'listeners' }>;
    expect(check.held).toEqual(policy.torListeners.map((l) => ({ protocol: l.protocol, address: l.address, port: l.port, process: TOR_PROCESS })));
    expect(check.held.length).toBeGreaterThanOrEqual(6);
    expect(check.allowed.map((x) => `${x.protocol}/${x.port}`)).toEqual(['udp/68']);
  });
});

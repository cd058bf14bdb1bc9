// Who holds the Tor ports (docs/threat-model.md#hostile-local-programs-tests):
// a listener on tor's address and port proves nothing if it is not tor's. A
// program that bound a Tor port first (tor down, restarting, or never
// started) would be a fake SocksPort or ControlPort to every client the
// firewall sends there. So the check is the set of every listening socket:
// each policy listener held by the process named tor, nothing else outside
// loopback but what the system needs (NetworkManager's DHCP client).
import type { Policy, RuntimeAssertion } from '@leakless/policy';

/** The process name of Debian's tor (its comm, as `ss -p` prints it). */
export const TOR_PROCESS = 'tor';

export function listenersAssertion(policy: Policy): RuntimeAssertion {
  return {
    id: 'tor.listeners',
    statement: `the ${policy.torListeners.length} Tor ports are held by ${TOR_PROCESS}, and nothing else listens outside loopback but the DHCP client`,
    check: {
      kind: 'listeners',
      held: policy.torListeners.map((l) => ({ protocol: l.protocol, address: l.address, port: l.port, process: TOR_PROCESS })),
      allowed: [{ protocol: 'udp', port: 68, why: 'NetworkManager’s DHCP client (bound to the leased address)' }],
    },
    scope: 'netns',
  };
}

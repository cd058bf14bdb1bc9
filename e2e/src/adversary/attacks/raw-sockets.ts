// Raw and packet sockets. A raw IPv4 socket still goes through the output
// hook, so the firewall judges it by its sender's uid; a packet socket writes
// Ethernet frames below IP, where no nftables inet rule ever looks. Both need
// CAP_NET_RAW in the user namespace that owns the network namespace, which
// the desktop user and unnamed uids do not have, not even inside an
// unprivileged user namespace of their own (docs/threat-model.md#hostile-local-programs-tests).
import type { Attack } from '../framework.js';
import { captured, carrying, describePacket, jsonOf, runAs } from '../tools.js';

const ATTACKER = new URL('./py/attacker.py', import.meta.url);

interface SocketTry {
  readonly ok: boolean;
  readonly error: string | null;
}

const raw: Attack = {
  id: 'raw-and-packet-sockets',
  title:
    'send to the Internet from a raw IPv4 socket (protocol 253) and from a packet socket (an Ethernet frame carrying IPv4/UDP), directly and inside an unprivileged user namespace (unshare -r)',
  refusal:
    'no CAP_NET_RAW: both sockets are refused at creation (EPERM), also in a user namespace, which does not own the network namespace; a raw IPv4 packet would still meet the per-uid firewall',
  weakness: {
    id: 'cap-net-raw',
    what: 'the attacker holds CAP_NET_RAW (as from a setcap’d interpreter): the packet socket’s frame bypasses every IP rule',
  },
  tools: ['unshare'],
  async run(env) {
    await env.loadFirewall();
    const caps = env.variant === 'weakness' ? ['net_raw'] : [];
    const dst = env.lab.addresses.internet4[0];
    const tries: string[] = [];
    const { packets } = await captured(env, async () => {
      for (const userns of [false, true]) {
        // the weakness is a capability in the sut's own user namespace; a fresh user namespace would not carry it over
        if (userns && caps.length) continue;
        for (const mode of ['raw', 'packet'] as const) {
          const tok = `${env.token}-${mode}${userns ? '-userns' : ''}`;
          const input = mode === 'raw' ? { dst, proto: 253, token: tok } : { iface: env.lab.uplink, src: env.lab.addresses.sutLan, dst, token: tok };
          const r = userns
            ? await runAs(env, env.attacker, 'sut', ATTACKER, [mode], { input: JSON.stringify(input), wrap: ['unshare', '-r'] })
            : await runAs(env, env.attacker, 'sut', ATTACKER, [mode], { input: JSON.stringify(input), caps });
          // a kernel without unprivileged user namespaces refuses the namespace itself: refused all the same
          if (userns && r.exitCode !== 0 && /^unshare:/m.test(r.stderr)) {
            tries.push(`${mode} in a user namespace: ${r.stderr.trim().split('\n')[0]}`);
            continue;
          }
          const res = jsonOf<{ result: SocketTry }>(r, `the ${mode} socket`).result;
          tries.push(`${mode}${userns ? ' in a user namespace' : ''}: ${res.ok ? 'sent' : res.error}`);
        }
      }
    });
    const wire = carrying(packets, env.token);
    const evidence = `${tries.join('; ')}; ${wire.length ? `on the wire: ${wire.map(describePacket).slice(0, 2).join('; ')}` : 'nothing on the wire'}`;
    return { outcome: wire.length ? 'succeeded' : 'refused', evidence, facts: { tries } };
  },
};

export const attacks: readonly Attack[] = [raw];

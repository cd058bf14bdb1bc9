// What a hostile program could announce to the LAN: the name-service and
// discovery chatter that identifies a machine (DHCP, NetBIOS, mDNS, LLMNR,
// SSDP) and IPv6 link-local and multicast, which no IPv4 rule sees.
// Everything but the policy's LAN ranges is refused, lan.blockedServices
// refuses NetBIOS-ns even inside them, and the first rule of every chain
// refuses IPv6 (docs/threat-model.md#lan, #ipv6).
import { run } from '../../lab/index.js';
import type { Attack, AttackEnv, Weakness } from '../framework.js';
import { captured, carrying, describePacket, jsonOf, runAs } from '../tools.js';
import { ipv6Accepted, lanServiceUnblocked, lanWidened } from '../weaknesses.js';

const ATTACKER = new URL('./py/attacker.py', import.meta.url);

interface Send {
  readonly family: 4 | 6;
  readonly dst: string;
  readonly port: number;
  readonly scope?: string;
  readonly broadcast?: boolean;
  readonly ttl?: number;
}

interface Chatter {
  readonly id: string;
  readonly title: string;
  readonly refusal: string;
  readonly weakness: Weakness;
  sends(env: AttackEnv): Promise<readonly Send[]>;
}

const multicastOpen = lanWidened('lan-covers-multicast', 'the LAN exception also covers 224.0.0.0/4 (multicast)', ['224.0.0.0/4']);

interface AddrInfo {
  readonly local?: string;
  readonly scope?: string;
  readonly tentative?: boolean;
}

/** The link-local IPv6 address of `dev` in `where`, once its duplicate address detection is over (a tentative address is no source). */
async function linkLocal(env: AttackEnv, where: 'sut' | 'lan', dev: string): Promise<string> {
  let last = '';
  // bounded: DAD takes about a second after the link comes up
  for (let i = 0; i < 30; i++) {
    const r = await run(env.lab, where, 'ip', ['-j', '-6', 'addr', 'show', 'dev', dev, 'scope', 'link']);
    // ip -j prints an empty object for every address the filter leaves out
    const infos = (JSON.parse(r.stdout || '[]') as { addr_info?: AddrInfo[] }[]).flatMap((x) => x.addr_info ?? []);
    const ll = infos.find((a) => a.scope === 'link' && a.local?.startsWith('fe80:'));
    if (ll?.local && !ll.tentative) return ll.local;
    last = ll?.local ? `${ll.local} still tentative` : `none (${r.stderr.trim() || r.stdout.trim().slice(0, 120)})`;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`no usable link-local address on ${where} ${dev}: ${last}`);
}

const chatters: readonly Chatter[] = [
  {
    id: 'chatter-dhcp',
    title: 'broadcast a DHCP request (udp/67 to 255.255.255.255): host name, client id and vendor class to every DHCP server on the link',
    refusal: 'the limited broadcast is outside lan.ipv4Ranges: refused by the final reject (docs/threat-model.md#lan)',
    weakness: lanWidened('lan-covers-broadcast', 'the LAN exception also covers 255.255.255.255', ['255.255.255.255']),
    sends: async () => [{ family: 4, dst: '255.255.255.255', port: 67, broadcast: true }],
  },
  {
    id: 'chatter-netbios',
    title: 'announce a NetBIOS name (udp/137) to the LAN broadcast address and to the LAN router',
    refusal: 'lan.blockedServices refuses udp/137 to the LAN before the LAN exception (Tails #11944; docs/threat-model.md#lan)',
    weakness: lanServiceUnblocked('netbios-allowed', 'lan.blockedServices no longer refuses udp/137', 137),
    sends: async (env) => [
      { family: 4, dst: env.lab.addresses.lanBroadcast, port: 137, broadcast: true },
      { family: 4, dst: env.lab.addresses.lanRouter, port: 137 },
    ],
  },
  {
    id: 'chatter-mdns',
    title: 'announce the host on mDNS (udp/5353 to 224.0.0.251)',
    refusal: 'multicast is outside lan.ipv4Ranges: refused by the final reject (docs/threat-model.md#lan)',
    weakness: multicastOpen,
    sends: async () => [{ family: 4, dst: '224.0.0.251', port: 5353, ttl: 1 }],
  },
  {
    id: 'chatter-llmnr',
    title: 'ask the link for a name over LLMNR (udp/5355 to 224.0.0.252)',
    refusal: 'multicast is outside lan.ipv4Ranges: refused by the final reject (docs/threat-model.md#lan)',
    weakness: multicastOpen,
    sends: async () => [{ family: 4, dst: '224.0.0.252', port: 5355, ttl: 1 }],
  },
  {
    id: 'chatter-ssdp',
    title: 'search for UPnP devices over SSDP (udp/1900 to 239.255.255.250), which answers with the router’s public address',
    refusal: 'multicast is outside lan.ipv4Ranges: refused by the final reject (docs/threat-model.md#lan)',
    weakness: multicastOpen,
    sends: async () => [{ family: 4, dst: '239.255.255.250', port: 1900, ttl: 2 }],
  },
  {
    id: 'ipv6-link-local-multicast',
    title:
      'IPv6 on the link, which the kernel keeps unless told otherwise: the LAN router’s link-local address, all-nodes, mDNS, LLMNR and SSDP over IPv6 multicast',
    refusal: 'the first rule of the output chain refuses all IPv6, whatever follows; never the sysctl alone (docs/threat-model.md#ipv6)',
    weakness: ipv6Accepted,
    sends: async (env) => {
      const scope = env.lab.uplink;
      // the sut needs a link-local source of its own, or the kernel refuses the sends before the firewall is asked
      await linkLocal(env, 'sut', scope);
      const router = await linkLocal(env, 'lan', 'lan-sut');
      return [
        { family: 6, dst: router, port: 9999, scope },
        { family: 6, dst: 'ff02::1', port: 9999, scope, ttl: 1 },
        { family: 6, dst: 'ff02::fb', port: 5353, scope, ttl: 1 },
        { family: 6, dst: 'ff02::1:3', port: 5355, scope, ttl: 1 },
        { family: 6, dst: 'ff02::c', port: 1900, scope, ttl: 1 },
      ];
    },
  },
];

function chatterAttack(c: Chatter): Attack {
  return {
    id: c.id,
    title: c.title,
    refusal: c.refusal,
    weakness: c.weakness,
    async run(env) {
      await env.loadFirewall();
      const atk = `${env.token}-atk`;
      const sends = (await c.sends(env)).map((s) => ({ ...s, token: atk }));
      const { result, packets } = await captured(env, async () => {
        const r = await runAs(env, env.attacker, 'sut', ATTACKER, ['datagram'], { input: JSON.stringify({ sends }) });
        return jsonOf<{ result: { dst: string; port: number; ok: boolean; error: string | null }[] }>(r, 'the sends').result;
      });
      const wire = carrying(packets, atk);
      const tried = result.map((x) => `${x.dst}:${x.port} ${x.ok ? 'sent' : x.error}`).join(', ');
      if (wire.length)
        return { outcome: 'succeeded', evidence: `${tried}; on the wire: ${wire.map(describePacket).slice(0, 3).join('; ')}`, facts: { left: wire.length } };
      // a send the kernel could not even route would prove nothing about the firewall
      const unroutable = result.filter((x) => x.error === 'ENETUNREACH' || x.error === 'EADDRNOTAVAIL' || x.error === 'EINVAL');
      if (unroutable.length) return { outcome: 'inconclusive', evidence: `${tried}: the kernel could not route it, so the firewall was never asked` };
      return { outcome: 'refused', evidence: `${tried}; nothing on the wire` };
    },
  };
}

export const attacks: readonly Attack[] = chatters.map(chatterAttack);

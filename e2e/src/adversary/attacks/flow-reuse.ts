// Riding another user's flow (docs/threat-model.md#flow-ownership). Conntrack
// keys a UDP flow by addresses and ports: once the clearnet user's DNS query
// (the pre-Tor check) or tor's (a bridge name, through the LAN resolver) has
// its answer, a program that binds the same source port and sends to the same
// server is "established". The attacker does not know the port, so it sweeps
// the whole ephemeral range; refused sends never reach the wire, so the sweep
// is silent. Also: the same flow ridden with a datagram too large for one
// packet (the kernel fragments it), and root's ping ridden with its echo id.
import type { Policy, User } from '@leakless/policy';
import { type Listener, type ProbeResult, runProbes, startListener } from '../../lab/index.js';
import type { Attack, AttackEnv, AttackResult } from '../framework.js';
import { captured, carrying, describePacket, jsonOf, runAs } from '../tools.js';
import { tailsRuleOrder } from '../weaknesses.js';

const ATTACKER = new URL('./py/attacker.py', import.meta.url);
/** Linux's default ephemeral range: where the victim's port is, and what a blind attacker sweeps. */
const EPHEMERAL = { first: 32768, last: 60999 } as const;

interface Victim {
  readonly key: string;
  readonly what: string;
  readonly user: (p: Policy) => User;
  /** The server the victim asks, and where its listener runs. */
  readonly server: (env: AttackEnv) => { ns: string; addr: string };
}

const victims: readonly Victim[] = [
  {
    key: 'clearnet-dns',
    what: 'the clearnet user’s DNS query to an Internet resolver (the pre-Tor check)',
    user: (p) => {
      const u = p.clearnetUsers[0];
      if (!u) throw new Error('the policy has no clearnet user');
      return u;
    },
    server: (env) => ({ ns: env.lab.inet, addr: env.lab.addresses.internet4[0] }),
  },
  {
    key: 'tor-dns',
    what: 'tor’s DNS query to the LAN resolver (a bridge name), which lan.blockedServices refuses everyone else',
    user: (p) => p.torUser,
    server: (env) => ({ ns: env.lab.lan, addr: env.lab.addresses.lanRouter }),
  },
];

/** The victim asks once from a port the kernel picks, gets its answer and closes: a flow to ride. */
async function victimQuery(env: AttackEnv, v: Victim, server: { addr: string }): Promise<ProbeResult> {
  const u = v.user(env.policy);
  const [r] = await runProbes(env.lab, { ns: env.lab.sut, uid: u.uid, gid: u.gid }, [
    { id: 'victim', kind: 'udp', family: 4, dst: server.addr, port: 53, token: `${env.token}-victim`, timeout: 2, sport: 0 },
  ]);
  return r!;
}

async function resolver(env: AttackEnv, v: Victim): Promise<{ listener: Listener; addr: string }> {
  const s = v.server(env);
  return { listener: await startListener(env.lab, s.ns, [{ id: 'resolver', proto: 'udp', addr: s.addr, port: 53 }]), addr: s.addr };
}

const settle = () => new Promise((r) => setTimeout(r, 300));

function arrivals(l: Listener, token: string) {
  return l.events().filter((e) => e.token?.startsWith(token));
}

/** Control failures: the victim's flow must exist, in the range the attacker sweeps, and the attacker must have bound its port. */
function victimProblem(r: ProbeResult): string | undefined {
  if (!r.ok) return `the victim's query got no answer (${r.error ?? '?'}): there was no flow to ride`;
  if (r.sport === null || r.sport < EPHEMERAL.first || r.sport > EPHEMERAL.last) return `the victim's port ${r.sport} is outside the swept range`;
  return undefined;
}

interface Sweep {
  readonly swept: number;
  readonly bound: number;
  readonly sent: number;
  readonly sentPorts: readonly number[];
  readonly errors: Readonly<Record<string, number>>;
  readonly ms: number;
}

function sweepAttack(v: Victim): Attack {
  return {
    id: `flow-reuse-${v.key}`,
    title: `ride ${v.what}: sweep all ${EPHEMERAL.last - EPHEMERAL.first + 1} ephemeral source ports towards the same server once it has answered`,
    refusal:
      'the flow belongs to the victim (ct mark stamped by its first packet); an original-direction packet from another uid is dropped before the established accept (docs/threat-model.md#flow-ownership)',
    weakness: tailsRuleOrder,
    async run(env): Promise<AttackResult> {
      await env.loadFirewall();
      const { listener, addr } = await resolver(env, v);
      const victim = await victimQuery(env, v, { addr });
      const problem = victimProblem(victim);
      if (problem) return { outcome: 'inconclusive', evidence: problem };
      env.progress(`victim flow from port ${victim.sport}; sweeping`);
      const atk = `${env.token}-atk`;
      const { result, packets } = await captured(env, async () => {
        const r = await runAs(env, env.attacker, 'sut', ATTACKER, ['sweep'], {
          input: JSON.stringify({ dst: addr, dport: 53, first: EPHEMERAL.first, last: EPHEMERAL.last, token: atk }),
          timeoutMs: 60_000,
        });
        await settle();
        return jsonOf<{ uid: number; result: Sweep }>(r, 'the sweep').result;
      });
      const wire = carrying(packets, atk);
      const got = arrivals(listener, atk);
      const facts = { victimPort: victim.sport, swept: result.swept, bound: result.bound, sent: result.sent, sweepMs: result.ms, errors: result.errors };
      const summary = `swept ${result.swept} ports (${result.bound} bound) in ${result.ms} ms`;
      if (wire.length || got.length)
        return {
          outcome: 'succeeded',
          evidence: `${summary}: ${wire.length} packet(s) left (${wire.map(describePacket).slice(0, 2).join('; ')}), ${got.length} reached the resolver at ${addr}`,
          facts,
        };
      // the victim's port was free to bind once the victim closed it: every bound port was refused
      if (result.bound < result.swept - 100)
        return { outcome: 'inconclusive', evidence: `${summary}: too few ports bound to have covered the victim's`, facts };
      return {
        outcome: 'refused',
        evidence: `${summary}: nothing left, nothing reached the resolver (sendto: ${Object.entries(result.errors)
          .map(([k, n]) => `${k} ×${n}`)
          .join(', ')}); the victim's port was ${victim.sport}`,
        facts,
      };
    },
  };
}

const fragment: Attack = {
  id: 'flow-reuse-fragmented',
  title: `ride tor's DNS flow to an Internet resolver with one 3000-byte datagram from its port, which the kernel sends as fragments`,
  refusal:
    'ownership is judged on the whole datagram before fragmentation, so no fragment of another uid’s datagram leaves (docs/threat-model.md#flow-ownership); forging a fragment needs a raw socket (see raw-and-packet-sockets)',
  weakness: tailsRuleOrder,
  async run(env) {
    await env.loadFirewall();
    const v: Victim = { ...victims[1]!, server: (e) => ({ ns: e.lab.inet, addr: e.lab.addresses.internet4[0] }) };
    const { listener, addr } = await resolver(env, v);
    const victim = await victimQuery(env, v, { addr });
    if (!victim.ok || victim.sport === null) return { outcome: 'inconclusive', evidence: `the victim's query got no answer (${victim.error ?? '?'})` };
    const atk = `${env.token}-atk`;
    const { result, packets } = await captured(env, async () => {
      const r = await runAs(env, env.attacker, 'sut', ATTACKER, ['datagram'], {
        input: JSON.stringify({ sends: [{ family: 4, dst: addr, port: 53, sport: victim.sport, size: 3000, token: atk }] }),
      });
      await settle();
      return jsonOf<{ result: { ok: boolean; error: string | null }[] }>(r, 'the datagram').result[0]!;
    });
    // a non-first fragment carries no header the capture can tie to the attacker: count every IPv4 packet to the resolver but the victim's
    const toResolver = packets.filter((p) => p.family === 4 && p.dst === addr);
    const got = arrivals(listener, atk);
    const evidence = `a 3000-byte datagram from the victim's port ${victim.sport}: sendto ${result.ok ? 'ok' : result.error}; ${toResolver.length} IPv4 packet(s) to ${addr} on the wire, ${got.length} datagram(s) reassembled at the resolver`;
    if (got.length || toResolver.length) return { outcome: 'succeeded', evidence, facts: { packets: toResolver.length } };
    return { outcome: 'refused', evidence };
  },
};

const echo: Attack = {
  id: 'echo-id-reuse',
  title:
    'ride root’s ICMP echo flow to the LAN router: a ping socket (no privilege) bound to the same echo id, sending to the same host once root has its reply',
  refusal:
    'the echo flow is root’s (ct mark); an echo request on it from another uid is dropped before the established accept (docs/threat-model.md#flow-ownership). No local principal may ping beyond the LAN, so this is the only kind of echo flow there is to ride',
  weakness: tailsRuleOrder,
  async run(env) {
    await env.loadFirewall();
    const root = env.policy.users.find((u) => u.role === 'admin');
    if (!root) throw new Error('the policy has no admin user');
    const dst = env.lab.addresses.lanRouter;
    const id = 24680;
    const [victim] = await runProbes(env.lab, { ns: env.lab.sut, uid: root.uid, gid: root.gid }, [
      { id: 'victim', kind: 'icmp', family: 4, dst, token: `${env.token}-victim`, timeout: 2, sport: id },
    ]);
    if (!victim?.ok || victim.sport !== id)
      return { outcome: 'inconclusive', evidence: `root's ping with echo id ${id} got no reply (${victim?.error ?? '?'}): no flow to ride` };
    const atk = `${env.token}-atk`;
    const { result, packets } = await captured(env, async () => {
      const r = await runAs(env, env.attacker, 'sut', ATTACKER, ['ping'], { input: JSON.stringify({ id, dst, token: atk, timeout: 1 }) });
      return jsonOf<{ result: { sent: boolean; reply: boolean; id?: number; error: string | null } }>(r, 'the ping').result;
    });
    const wire = carrying(packets, atk);
    const evidence = `echo id ${result.id ?? id} to ${dst}: ${result.sent ? `sent${result.reply ? ', answered' : ''}` : `not sent (${result.error})`}; ${wire.length} echo request(s) on the wire${wire.length ? ` (${describePacket(wire[0]!)})` : ''}`;
    if (result.id !== undefined && result.id !== id) return { outcome: 'inconclusive', evidence: `${evidence}: the attacker did not get root's echo id` };
    if (wire.length) return { outcome: 'succeeded', evidence };
    // refused by this host before it left, not lost on the way
    return { outcome: result.error === 'EPERM' ? 'refused' : 'inconclusive', evidence };
  },
};

export const attacks: readonly Attack[] = [...victims.map(sweepAttack), fragment, echo];

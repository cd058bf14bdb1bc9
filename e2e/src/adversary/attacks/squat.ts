// Port squatting while tor is down (at boot before tor starts, after a crash,
// during a restart): every local Tor port is above 1024, so any local program
// may listen on it first, and the clients the firewall lets dial that port
// (root to the ControlPort, _apt and htp to their SocksPorts, the browser's
// namespace to its SocksPort …) then talk to the squatter. The suite shows
// that squatting is possible and who would be exposed; what keeps them safe
// is that only tor answers on a Tor port (docs/threat-model.md#flow-ownership).
// A datagram a client sends still reaches the squatter (the DNSPort's
// clients' queries): the firewall cannot choose who receives; the report
// lists them as disclosed. Privileged clients' own checks of the listener
// (SAFECOOKIE, a control socket) are their modules' business.
import { nthAddress, parseCidr4 } from '@leakless/policy';
import { type Proc, runProbes, type Sender, startServer } from '../../lab/index.js';
import type { ProbeSpec } from '../../lab/probes.js';
import type { Attack, AttackEnv } from '../framework.js';
import { tailsRuleOrder } from '../weaknesses.js';

const ATTACKER = new URL('./py/attacker.py', import.meta.url);

interface Bind {
  readonly proto: 'tcp' | 'udp';
  readonly addr: string;
  readonly port: number;
}

interface SquatEvent {
  readonly ev: 'ready' | 'accept' | 'data' | 'dgram';
  readonly bound?: readonly Bind[];
  readonly failed?: readonly (Bind & { error: string })[];
  readonly addr?: string;
  readonly port?: number;
}

interface ClientProbe {
  /** Who dials: a policy user, or a namespace. */
  readonly who: string;
  readonly sender: Sender;
  readonly spec: ProbeSpec;
  readonly listener: string;
}

/** Every client of every Tor listener but the attacker itself, dialling the way it really does (udp/53 through the redirect, automap through the TransPort). */
function clients(env: AttackEnv): ClientProbe[] {
  const p = env.policy;
  const out: ClientProbe[] = [];
  const automapHost = nthAddress(parseCidr4(p.automapRange), 10 * 256 + 20);
  for (const l of p.torListeners) {
    const target =
      l.kind === 'dns'
        ? { kind: 'udp' as const, dst: l.address, port: 53 }
        : l.kind === 'trans'
          ? { kind: 'tcp' as const, dst: automapHost, port: 80 }
          : { kind: l.protocol, dst: l.address, port: l.port };
    const spec = (who: string): ProbeSpec => ({
      id: `${who} → ${l.clause}`,
      family: 4,
      ...target,
      token: `${env.token}-${who}-${l.clause}`,
      timeout: 1.5,
    });
    if (l.netns !== undefined) {
      const guest = env.lab.guests.get(l.netns);
      if (!guest) throw new Error(`no lab namespace for ${l.netns}`);
      const d = p.desktopUser;
      out.push({ who: `netns:${l.netns}`, sender: { ns: guest, uid: d.uid, gid: d.gid }, spec: spec(`netns:${l.netns}`), listener: l.clause });
      continue;
    }
    for (const c of l.clients.filter((u) => u.uid !== env.attacker.uid))
      out.push({ who: c.name, sender: { ns: env.lab.sut, uid: c.uid, gid: c.gid }, spec: spec(c.name), listener: l.clause });
  }
  return out;
}

const squat: Attack = {
  id: 'squat-tor-ports',
  title:
    'while tor is down, listen on every Tor port (SocksPorts, ControlPort, DNSPort, TransPort, the browser’s SocksPort on the namespace’s host side) and answer every client that dials it',
  refusal:
    'binding is possible (the ports are above 1024); only tor (uid 0, which binds them, or the tor user) answers on a Tor port, so no client completes a handshake or gets an answer (docs/threat-model.md#flow-ownership)',
  weakness: tailsRuleOrder,
  timeoutMs: 90_000,
  async run(env) {
    await env.loadFirewall();
    const binds: Bind[] = env.policy.torListeners.map((l) => ({ proto: l.protocol, addr: l.address, port: l.port }));
    const events: SquatEvent[] = [];
    let squatter: Proc | undefined;
    try {
      squatter = await startServer(
        env.lab,
        'sut',
        { helper: ATTACKER, args: ['squat', JSON.stringify({ binds, seconds: 60 })] },
        {
          as: { uid: env.attacker.uid, gid: env.attacker.gid },
          label: `squatter as uid ${env.attacker.uid}`,
          ready: (line) => line.includes('"ready"'),
          onLine: (line) => events.push(JSON.parse(line) as SquatEvent),
        },
      );
      const ready = events.find((e) => e.ev === 'ready')!;
      const bound = ready.bound ?? [];
      const failed = ready.failed ?? [];
      env.progress(`squatting ${bound.length}/${binds.length} Tor ports`);
      const tries = clients(env);
      const bySender = new Map<string, ClientProbe[]>();
      for (const c of tries) bySender.set(`${c.sender.ns}/${c.sender.uid}`, [...(bySender.get(`${c.sender.ns}/${c.sender.uid}`) ?? []), c]);
      const results = (
        await Promise.all(
          [...bySender.values()].map(async (cs) =>
            (
              await runProbes(
                env.lab,
                cs[0]!.sender,
                cs.map((c) => c.spec),
              )
            ).map((r, i) => ({ c: cs[i]!, r })),
          ),
        )
      ).flat();
      await new Promise((r) => setTimeout(r, 300));
      const exposed = results.filter((x) => x.r.ok).map((x) => `${x.c.who} → ${x.c.listener}`);
      const notListening = results.filter((x) => x.r.error === 'ECONNREFUSED').map((x) => `${x.c.who} → ${x.c.listener}`);
      const disclosed = [...new Set(events.filter((e) => e.ev === 'dgram').map((e) => `${e.addr}:${e.port}`))];
      const facts = { bound: bound.length, failed, clients: tries.length, exposed, disclosed };
      const head = `squatted ${bound.length}/${binds.length} Tor ports as uid ${env.attacker.uid}${failed.length ? ` (could not bind ${failed.map((f) => `${f.addr}:${f.port} ${f.error}`).join(', ')})` : ''}; ${tries.length} client connections`;
      if (exposed.length) return { outcome: 'succeeded', evidence: `${head}; answered by the squatter: ${exposed.join(', ')}`, facts };
      if (failed.length || notListening.length)
        return {
          outcome: 'inconclusive',
          evidence: `${head}; the squatter was not listening where clients dialled (${notListening.join(', ') || 'bind failures'})`,
          facts,
        };
      return {
        outcome: 'refused',
        evidence: `${head}; none answered (handshakes and answers dropped)${disclosed.length ? `; datagrams that still reached it: ${disclosed.join(', ')}` : ''}`,
        facts,
      };
    } finally {
      await squatter?.stop();
    }
  },
};

export const attacks: readonly Attack[] = [squat];

// The oracle's attribution (no root: packets and results are made up here,
// the lab proves the same under load in oracle-load.test.ts). The case that
// went wrong: on a busy machine _apt's refused connect released its
// kernel-chosen source port at once, debian-tor's allowed connection to the
// same server got the same port, and the first matching probe (_apt) was
// blamed for debian-tor's packets: "LEAK: 5 packet(s) left the sut".
import { readPolicyFile } from '@leakless/policy';
import { describe, expect, it } from 'vitest';
import type { CapturedPacket } from './capture.js';
import type { Principal, Probe, Target } from './matrix.js';
import type { LabFacts } from './oracle.js';
import type { ProbeResult } from './probes.js';
import { attribute, judge, type MatrixRun } from './run.js';

const loaded = await readPolicyFile(new URL('../../../image-config/default.yaml', import.meta.url).pathname);
if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
const policy = loaded.policy;
const facts: LabFacts = { sutAddresses: ['192.168.77.2'] };

const uid = (id: string, n: number, role: 'service' | 'tor-daemon'): Principal => ({ kind: 'uid', id, uid: n, gid: n, role, ns: 'sut' });
const web: Target = {
  class: 'internet-v4',
  kind: 'tcp',
  family: 4,
  dst: '198.51.100.10',
  port: 80,
  listener: 'inet:tcp/80',
  external: true,
  label: 'tcp/80',
};
const apt: Probe = { id: '_apt → web', principal: uid('_apt', 42, 'service'), target: web };
const tor: Probe = { id: 'debian-tor → web', principal: uid('debian-tor', 106, 'tor-daemon'), target: web };
const probes = [apt, tor];
const tokenOf = new Map([
  [apt.id, 'lk0-0'],
  [tor.id, 'lk0-1'],
]);

const syn = (sport: number, token?: string): CapturedPacket => ({
  family: 4,
  proto: 6,
  src: '192.168.77.2',
  dst: web.dst,
  sport,
  dport: 80,
  tcpFlags: token ? 0x18 : 0x02,
  ethertype: 0x0800,
  ...(token ? { token } : {}),
});

function run(results: Record<string, Omit<ProbeResult, 'id' | 'ms'>>, packets: CapturedPacket[], tokens: string[]): MatrixRun {
  const res = new Map(Object.entries(results).map(([id, r]) => [id, { id, ms: 1, ...r }]));
  return { label: 'test', probes, results: res, tokens: new Set(tokens), packets: attribute(probes, res, packets, tokenOf), tokenOf, wallMs: 1 };
}

// Control run: both reach the server.
const control = run(
  { [apt.id]: { sport: 21000, assigned: 21000, ok: true, error: null }, [tor.id]: { sport: 21001, assigned: 21001, ok: true, error: null } },
  [syn(21000), syn(21001)],
  ['lk0-0', 'lk0-1'],
);

describe('attribution', () => {
  it('with a port of its own each, debian-tor’s packets are debian-tor’s and _apt’s refusal is a pass', () => {
    const r = run(
      { [apt.id]: { sport: 22000, assigned: 22000, ok: false, error: 'ECONNREFUSED' }, [tor.id]: { sport: 22001, assigned: 22001, ok: true, error: null } },
      [syn(22001), syn(22001, 'lk0-1')],
      ['lk0-1'],
    );
    const j = judge(policy, facts, r, control);
    expect(j.oracleFailures).toEqual([]);
    expect(j.verdicts.map((v) => [v.probe.id, v.outcome])).toEqual([
      [apt.id, 'pass'],
      [tor.id, 'pass'],
    ]);
  });

  it('a port two probes report is a collision: inconclusive, never a verdict on either (the old matrix blamed _apt)', () => {
    const r = run(
      // what the kernel did when it picked the ports: the same one for both
      { [apt.id]: { sport: 51117, assigned: 22010, ok: false, error: 'ECONNREFUSED' }, [tor.id]: { sport: 51117, assigned: 22011, ok: true, error: null } },
      [syn(51117), syn(51117, 'lk0-1')],
      ['lk0-1'],
    );
    const j = judge(policy, facts, r, control);
    expect(j.verdicts.find((v) => v.probe.id === apt.id)!.outcome).not.toBe('violation');
    expect(j.verdicts.map((v) => v.outcome)).toEqual(['inconclusive', 'inconclusive']);
    expect(j.oracleFailures.join('\n')).toMatch(/own source port 22010/);
    expect(r.packets.filter((p) => p.collision).length).toBe(2);
    expect(j.invariants.find((i) => i.id === 'attributed')!.ok).toBe(false);
  });

  it('a packet on one probe’s port carrying another probe’s token is a collision too', () => {
    const r = run(
      { [apt.id]: { sport: 22020, assigned: 22020, ok: false, error: 'ECONNREFUSED' }, [tor.id]: { sport: 22021, assigned: 22021, ok: true, error: null } },
      [syn(22021, 'lk0-0')],
      ['lk0-1'],
    );
    expect(r.packets[0]!.collision).toEqual([tor.id, apt.id]);
    expect(judge(policy, facts, r, control).oracleFailures.length).toBe(2);
  });

  it('a real leak on the refused probe’s own port is a violation, not hidden behind the allowed probe', () => {
    const r = run(
      { [apt.id]: { sport: 22030, assigned: 22030, ok: true, error: null }, [tor.id]: { sport: 22031, assigned: 22031, ok: true, error: null } },
      [syn(22030), syn(22030, 'lk0-0'), syn(22031)],
      ['lk0-0', 'lk0-1'],
    );
    const j = judge(policy, facts, r, control);
    expect(j.oracleFailures).toEqual([]);
    expect(j.verdicts.find((v) => v.probe.id === apt.id)).toMatchObject({ outcome: 'violation', onWire: 2 });
  });
});

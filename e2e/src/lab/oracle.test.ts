// The oracle and the compiler are written independently; here they must agree
// on every cell of the matrix (the compiler's side through its AST evaluator).
// Runs without root: no namespace is made, only the lab's addresses are used.

import { ruleset, unnamedUid } from '@leakless/firewall';
import { accepted, evaluateHook, evaluateOutput, type Packet, type Table } from '@leakless/nft';
import { addressIn, type Policy, type PolicyDocument, parseCidr4, parsePolicy, readPolicyFile } from '@leakless/policy';
import { describe, expect, it } from 'vitest';
import { antiTests } from './anti.js';
import { buildMatrix, type Probe } from './matrix.js';
import { expectation, type LabFacts } from './oracle.js';
import { type LabNetwork, labAddresses } from './topology.js';

const loaded = await readPolicyFile(new URL('../../../image-config/default.yaml', import.meta.url).pathname);
if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
const defaultDoc = loaded.policy.document;

function policyOf(edit: (d: PolicyDocument) => void = () => {}): Policy {
  const doc = structuredClone(defaultDoc);
  edit(doc);
  const r = parsePolicy(doc);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.policy;
}

function paperLab(policy: Policy): LabNetwork {
  return {
    sut: 'sut',
    lan: 'lan',
    inet: 'inet',
    uplink: 'uplink0',
    guests: new Map(policy.namespaces.map((n) => [n.name, `g-${n.name}`])),
    addresses: labAddresses(policy),
  };
}

/** The compiler's verdict for a probe, from its AST. */
function compiled(t: Table, policy: Policy, lab: LabNetwork, probe: Probe): boolean {
  const tg = probe.target;
  const p = probe.principal;
  const local = (a: string) => addressIn(a, parseCidr4('127.0.0.0/8')) || a === lab.addresses.sutLan || policy.namespaces.some((n) => n.hostAddress === a);
  const guestNs = policy.namespaces.find((n) => n.guestAddress === tg.dst);
  const oif = local(tg.dst) ? 'lo' : guestNs ? guestNs.hostVeth : 'uplink0';
  const protocol = tg.kind === 'tcp' || tg.kind === 'tcp-invalid' ? 'tcp' : tg.kind === 'icmp' ? 'icmp' : tg.kind === 'raw' ? tg.proto! : 'udp';
  const family = tg.family === 6 ? 'ipv6' : 'ipv4';
  const base = {
    family,
    daddr: tg.dst,
    protocol,
    ...(tg.port !== undefined ? { dport: tg.port } : {}),
    ...(protocol === 'tcp' ? { tcpFlags: tg.kind === 'tcp-invalid' ? ('other' as const) : ('syn' as const) } : {}),
  } as const;
  if (p.kind === 'uid') {
    if (tg.kind === 'udp-closed')
      return accepted(evaluateOutput(t, { family: 'ipv4', oif: 'uplink0', daddr: tg.dst, protocol: 'icmp', ctState: 'related' }).decision);
    const pk: Packet = { ...base, oif, skuid: p.uid, ctState: tg.kind === 'tcp-invalid' ? 'invalid' : 'new' };
    return accepted(evaluateOutput(t, pk).decision);
  }
  const from =
    p.kind === 'netns'
      ? { iif: p.netns.hostVeth, saddr: p.netns.guestAddress }
      : { iif: 'uplink0', saddr: p.from === 'lan' ? lab.addresses.lanRouter : lab.addresses.transitInet };
  const pk: Packet = { ...base, ...from, ...(local(tg.dst) ? {} : { oif: guestNs ? guestNs.hostVeth : 'uplink0' }), ctState: 'new' };
  return accepted(evaluateHook(t, local(tg.dst) ? 'input' : 'forward', pk));
}

function disagreements(policy: Policy, t: Table): string[] {
  const lab = paperLab(policy);
  const facts: LabFacts = { sutAddresses: [lab.addresses.sutLan, ...policy.namespaces.map((n) => n.hostAddress)] };
  return buildMatrix(policy, lab, unnamedUid(policy))
    .map((probe) => ({ probe, oracle: expectation(policy, facts, probe.principal, probe.target).allow, compiler: compiled(t, policy, lab, probe) }))
    .filter((x) => x.oracle !== x.compiler)
    .map((x) => `${x.probe.id}: oracle ${x.oracle ? 'allow' : 'deny'}, compiler ${x.compiler ? 'allow' : 'deny'}`);
}

describe('oracle vs compiler', () => {
  it('agree on every cell of the default matrix', () => {
    const policy = policyOf();
    expect(buildMatrix(policy, paperLab(policy), unnamedUid(policy)).length).toBeGreaterThan(250);
    expect(disagreements(policy, ruleset(policy))).toEqual([]);
  });

  it('agree for a policy in allowlist mode with other ports and uids', () => {
    const policy = policyOf((d) => {
      d.loopback.mode = 'allowlist';
      d.loopback.allowedTcpPorts = [8080];
      d.tor.socksPorts[1]!.port = 19062;
      d.users.find((u) => u.name === 'htp')!.uid = 150;
    });
    expect(disagreements(policy, ruleset(policy))).toEqual([]);
  });

  it('agree when tor may only reach some ports (tor.reachablePorts)', () => {
    const policy = policyOf((d) => {
      d.tor.reachablePorts = [443, 9001];
    });
    expect(disagreements(policy, ruleset(policy))).toEqual([]);
  });

  it('disagree on every planted leak (so the lab has a cell to catch it in)', () => {
    const policy = policyOf();
    for (const a of antiTests) expect(disagreements(policy, a.plant(ruleset(policy), policy)).length, a.id).toBeGreaterThan(0);
  });
});

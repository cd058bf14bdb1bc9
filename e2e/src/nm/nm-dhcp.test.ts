// What the LAN learns from the image's NetworkManager (docs/threat-model.md#lan):
// Debian's NetworkManager 1.42, run in the lab with the emitted conf.d files,
// the emitted wired profile and the image's /etc/hostname. The LAN's capture
// of the DHCP requests of the shipped profile, and of a profile created after
// boot with nmcli in the running NetworkManager (as a user's Wi-Fi or a second
// wired profile would be), must carry no host name and never the NIC's own
// MAC, also when root changes the transient host name after boot (1.42
// sends only the static one). The anti-test runs the same with the settings
// this replaced (no ethernet.cloned-mac-address, the former host name
// "amnesia") and must see both on the wire, so the test can fail.
import { fileURLToPath } from 'node:url';
import * as resolver from '@leakless/resolver';
import { type Policy, readPolicyFile } from '@leakless/policy';
import { skipUnless } from '@leakless/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labNeeds } from '../lab/index.js';
import { DHCP_TYPE, type DhcpClientPacket, identifies, parseDhcpClientFrame } from './dhcp.js';
import { NIC, NIC_MAC, type NmSetup, startNmLab } from './nm-lab.js';

const skip = skipUnless('the NetworkManager lab (e2e/src/nm)', ...labNeeds('NetworkManager', 'nmcli', 'dbus-daemon', 'dnsmasq', 'tcpdump'));
/** The host name the image had before: identifying (every leakless and Tails system says it). */
const FORMER_HOSTNAME = 'amnesia';
const timings: Record<string, number> = {};

let policy: Policy;
let emitted: NmSetup;

interface Run {
  readonly shipped: DhcpClientPacket[];
  readonly later: DhcpClientPacket[];
  /** The profile made after boot as NetworkManager holds it: ipv4.dhcp-send-hostname and ipv4.dhcp-hostname. */
  readonly laterSettings: { readonly sendHostname: string; readonly dhcpHostname: string };
}
/** The first DISCOVER of each profile in each run, for the log. */
const seen: Record<string, string> = {};

const discovers = (ps: readonly DhcpClientPacket[]) => ps.filter((p) => p.messageType === DHCP_TYPE.discover);
const describePacket = (p: DhcpClientPacket) =>
  `type ${p.messageType} from ${p.srcMac} chaddr ${p.chaddr} host name ${p.hostname ?? '-'} FQDN ${p.fqdn ?? '-'} client id ${p.clientId ?? '-'}`;

/** At least one DISCOVER (silence cannot pass), and every one as `ok` says. */
function expectDiscovers(ps: readonly DhcpClientPacket[], ok: (p: DhcpClientPacket) => boolean): void {
  const d = discovers(ps);
  expect(d.length, 'DISCOVERs seen by the LAN').toBeGreaterThan(0);
  expect(d.every(ok), d.map(describePacket).join('; ')).toBe(true);
}

/** NetworkManager from `setup`: the shipped profile comes up, then a profile made with nmcli comes up; the LAN's DHCP client packets of each. */
async function play(setup: NmSetup, label: string): Promise<Run> {
  const t0 = Date.now();
  const lab = await startNmLab(setup);
  try {
    await lab.waitActive('leakless-wired');
    const shipped = (await lab.boot.stop()).map(parseDhcpClientFrame).filter((p): p is DhcpClientPacket => p !== undefined);
    const cap2 = await lab.capture();
    const add = await lab.nmcli(['connection', 'add', 'type', 'ethernet', 'con-name', 'later', 'ifname', NIC]);
    if (add.exitCode !== 0) throw new Error(`nmcli connection add: ${add.stderr.trim()}`);
    const up = await lab.nmcli(['-w', '30', 'connection', 'up', 'later'], 40_000);
    if (up.exitCode !== 0) throw new Error(`nmcli connection up later: ${up.stderr.trim()}`);
    await lab.waitActive('later');
    const later = (await cap2.stop()).map(parseDhcpClientFrame).filter((p): p is DhcpClientPacket => p !== undefined);
    const setting = async (key: string) => {
      const r = await lab.nmcli(['-g', key, 'connection', 'show', 'later']);
      if (r.exitCode !== 0) throw new Error(`nmcli connection show later: ${r.stderr.trim()}`);
      return r.stdout.trim();
    };
    const laterSettings = { sendHostname: await setting('ipv4.dhcp-send-hostname'), dhcpHostname: await setting('ipv4.dhcp-hostname') };
    for (const [name, ps] of [
      ['shipped', shipped],
      ['later', later],
    ] as const)
      seen[`${label}/${name}`] = discovers(ps).map(describePacket)[0] ?? 'no DISCOVER';
    return { shipped, later, laterSettings };
  } finally {
    await lab.teardown();
    timings[label] = Date.now() - t0;
  }
}

describe.skipIf(skip)('what the LAN learns from NetworkManager (Debian 1.42, in the lab)', () => {
  beforeAll(async () => {
    const r = await readPolicyFile(fileURLToPath(new URL('../../../image-config/default.yaml', import.meta.url)));
    if (!r.ok) throw new Error('default policy invalid');
    policy = r.policy;
    const files = resolver.emit(policy).files;
    const under = (dir: string) =>
      Object.fromEntries(files.filter((f) => f.path.startsWith(`${dir}/`)).map((f) => [f.path.slice(dir.length + 1), f.content] as const));
    emitted = { confD: under(resolver.NM_CONF_D), connections: under(resolver.NM_CONNECTIONS), hostname: policy.document.image.hostname };
  });
  afterAll(() => {
    if (Object.keys(timings).length) console.log(`NetworkManager lab timings (ms): ${JSON.stringify(timings)}`);
    for (const [k, v] of Object.entries(seen)) console.log(`DISCOVER ${k}: ${v}`);
  });

  it('the emitted settings: neither the shipped profile nor one made after boot sends a host name or the NIC’s MAC', async () => {
    expect(Object.keys(emitted.confD).length, 'the resolver emits NetworkManager conf.d files').toBeGreaterThan(0);
    const run = await play(emitted, 'emitted');
    // the profile made after boot is one that sends the host name (NetworkManager's defaults): only the name keeps it off the wire
    expect(run.laterSettings).toEqual({ sendHostname: 'yes', dhcpHostname: '' });
    // control: the LAN saw both profiles ask (silence cannot pass), each from a MAC of its own
    expect(discovers(run.shipped).length, 'DISCOVERs of the shipped profile').toBeGreaterThan(0);
    expect(discovers(run.later).length, 'DISCOVERs of the profile made after boot').toBeGreaterThan(0);
    for (const p of [...run.shipped, ...run.later]) expect(identifies(p, NIC_MAC, [FORMER_HOSTNAME]), describePacket(p)).toBeUndefined();
    // a new random MAC for each activation: the two profiles are not linkable by it either
    const macs = (ps: readonly DhcpClientPacket[]) => new Set(ps.map((p) => p.srcMac));
    expect([...macs(run.later)].some((m) => macs(run.shipped).has(m))).toBe(false);
  }, 120_000);

  it('a transient host name changed after boot (hostname(1) as root) is not sent either: NetworkManager 1.42 sends only the static one', async () => {
    const run = await play({ ...emitted, transientHostname: FORMER_HOSTNAME }, 'transient');
    expect(discovers(run.later).length).toBeGreaterThan(0);
    for (const p of [...run.shipped, ...run.later]) expect(identifies(p, NIC_MAC, [FORMER_HOSTNAME]), describePacket(p)).toBeUndefined();
  }, 120_000);

  it('anti-test: without ethernet.cloned-mac-address and with the former host name, the profile made after boot sends both', async () => {
    const weaker: NmSetup = {
      ...emitted,
      confD: Object.fromEntries(Object.entries(emitted.confD).map(([n, c]) => [n, c.replace(/^ethernet\.cloned-mac-address=.*$/m, '')])),
      hostname: FORMER_HOSTNAME,
    };
    expect(JSON.stringify(weaker.confD)).not.toBe(JSON.stringify(emitted.confD));
    const run = await play(weaker, 'anti-test');
    expect(run.laterSettings).toEqual({ sendHostname: 'yes', dhcpHostname: '' });
    expectDiscovers(run.later, (p) => p.srcMac === NIC_MAC && p.hostname === FORMER_HOSTNAME);
    // the shipped profile keeps dhcp-send-hostname=false even here: only its MAC gives it away
    expectDiscovers(run.shipped, (p) => p.hostname === undefined && p.srcMac === NIC_MAC);
  }, 120_000);
});

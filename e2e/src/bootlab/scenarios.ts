// What each networked-boot scenario does and what it must show, shared by
// the e2e suite (e2e/iso/bootlab.test.ts) and `leakless boot --lab`. Each
// returns its problems (empty = it holds), notes for the report and, where
// it has one, the classification of its capture. "Could not tell" is a
// problem: every scenario has a positive control.
import type { Assembly, Policy } from '@leakless/policy';
import { UNITS } from '@leakless/policy';
import { type AgentStatus, type HttpOutcome, type LinkState, parseLateLines, planImage } from '@leakless/image';
import type { SelftestReport } from '@leakless/selftest';
import { type Classification, type ClassifiedPacket, describePacket, type Endpoint, onlyResent } from './classify.js';
import { type BootLab, DNSPORT_LOOKUP, routeFrom } from './lab.js';
import { failures, type Finished, type Run, type Window } from './run.js';

export interface Outcome {
  readonly problems: string[];
  readonly notes: string[];
  readonly classification?: Classification;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const secs = (ms: number | undefined) => (ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`);

/**
 * The self-test's active checks: a probe that sends from the guest (a
 * refused attacker and its positive control in the same run). Everything
 * else it evaluates is an observation of the running system.
 */
const ACTIVE_KINDS = new Set(['refused-probe']);

export async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, everyMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await get();
    if (ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${secs(timeoutMs)}; last seen ${JSON.stringify(last).slice(0, 1500)}`);
    await sleep(everyMs);
  }
}

/** The desktop user's own SocksPort, and the tor-only namespace with its SocksPort. */
export function torPorts(policy: Policy) {
  const desktop = policy.socksPorts.find((s) => !s.netns && s.clients.some((c) => c.uid === policy.desktopUser.uid));
  const tbb = policy.namespaces.find((n) => n.kind === 'tor-only' && n.socksPort);
  if (!desktop || !tbb?.socksPort) throw new Error('the policy has no SocksPort of the desktop user or no tor-only namespace');
  return { desktop, tbb: { name: tbb.name, port: tbb.socksPort.port } };
}

/** Host ms of the first journal line matching `re` (guest monotonic time mapped to the host's timeline). */
export function journalTime(run: Run, re: RegExp, unit?: string): number | undefined {
  const e = run.boot.events().find((x) => x.event.ev === 'log' && re.test(x.event.line) && (!unit || x.event.unit === unit));
  return e && e.event.ev === 'log' ? (run.boot.guestToHost(e.event.mono / 1e6) ?? e.at) : undefined;
}

// ---- the clean run ----------------------------------------------------------------------------

export interface Milestones {
  agent?: number;
  dhcp?: number;
  preTorCheck?: number;
  torBootstrap?: number;
  htpdate?: number;
  selftest?: number;
  powerOff?: number;
  /** systemd-analyze read back from the guest after the self-test: time, the head of the critical chain and of blame. */
  analyze?: { time: string; chain: string; blame: string };
}

/** The milestones as times only (a boot's timings in the report); systemd-analyze's text goes to the notes. */
export function milestoneTimes({ analyze: _, ...times }: Milestones): Record<string, number | undefined> {
  return times;
}

/** systemd-analyze's reading as report notes. */
export function analyzeNotes(m: Milestones): string[] {
  if (!m.analyze) return [];
  return [
    `systemd-analyze time: ${m.analyze.time.replace(/\s+/g, ' ')}`,
    `critical chain:\n\n\`\`\`\n${m.analyze.chain}\n\`\`\``,
    `blame (top):\n\n\`\`\`\n${m.analyze.blame}\n\`\`\``,
  ];
}

/** Boot with the lab's settings up to Tor at 100 % and htpdate done; the pre-Tor check and htpdate must have succeeded. */
export async function bootToTor(bl: BootLab, run: Run, m: Milestones): Promise<Outcome & { status: AgentStatus }> {
  const notes: string[] = [];
  const problems: string[] = [];
  const hello = await run.boot.hello(420_000);
  m.agent = hello.at;
  const settings = hello.event.ev === 'hello' ? hello.event.settings : undefined;
  notes.push(`lab agent up at ${secs(hello.at)}; test settings ${JSON.stringify(settings)}`);
  if ((settings as { status?: string } | undefined)?.status !== 'accepted') problems.push(`test settings not accepted: ${JSON.stringify(settings)}`);
  const status = await until(
    'tor at 100 % and htpdate done',
    () => run.status(),
    (s) => s.torBootstrap === 100 && s.htpdate.done,
    420_000,
  );
  m.torBootstrap = journalTime(run, /Bootstrapped 100%/);
  m.preTorCheck = journalTime(run, /leakless-pretor-time\.service/, 'init.scope');
  m.htpdate = journalTime(run, /Finished leakless-htpdate|leakless-htpdate\.service: (Failed|Main process exited)/);
  const c = run.classifyNow();
  const dhcp = c.packets.find((p) => p.cls === 'dhcp');
  m.dhcp = dhcp ? dhcp.t * 1000 : undefined;
  const pre = status.units[UNITS.preTorTime];
  if (pre?.result !== 'success') {
    const said = run.boot
      .events()
      .flatMap((e) => (e.event.ev === 'log' && e.event.unit === UNITS.preTorTime ? [e.event.line] : []))
      .join(' | ');
    problems.push(`the pre-Tor check did not succeed (${JSON.stringify(pre)}): ${said}; clearnet resolver file sha256 ${status.clearnetResolvConf}`);
  }
  if (!bl.checkRequests().some((r) => r.request)) problems.push('the connectivity-check host never got the request');
  if (!status.htpdate.success) problems.push('htpdate did not succeed');
  const pools = bl.policy.document.time.htpdate.pools.length;
  if (bl.poolHits().length < pools) problems.push(`htpdate reached ${bl.poolHits().length} pool host(s), fewer than one per pool (${pools})`);
  if (m.dhcp === undefined) problems.push('no DHCP from the guest in the capture');
  notes.push(`DHCP ${secs(m.dhcp)}, pre-Tor check ${secs(m.preTorCheck)}, Tor 100 % ${secs(m.torBootstrap)}, htpdate ${secs(m.htpdate)} (from QEMU's start)`);
  return { problems, notes, classification: c, status };
}

/** A request as the desktop user through its SocksPort, one from the tor-only namespace through its own, a lookup through the DNSPort. */
export async function guestRequests(bl: BootLab, run: Run): Promise<Outcome> {
  const { desktop, tbb } = torPorts(bl.policy);
  const [siteA, siteB] = bl.net.sites;
  if (!siteA || !siteB) throw new Error('the private network has fewer than two web sites');
  const exits = new Set(bl.net.exits.map((e) => e.address));
  const notes: string[] = [];
  const problems: string[] = [];
  const http = async (
    path: string,
    via: { kind: 'socks'; address: string; port: number } | { kind: 'netns'; namespace: string; port: number },
    site: typeof siteA,
  ) =>
    (await run.boot.request<HttpOutcome>({ op: 'http', as: bl.desktop, via, host: site.hostname, port: site.port, path, timeoutMs: 60_000 }, 120_000)).result;
  const pathA = `/desktop-${run.token}`;
  const a = await http(pathA, { kind: 'socks', address: desktop.address, port: desktop.port }, siteA);
  notes.push(`desktop user through ${desktop.address}:${desktop.port} to ${siteA.hostname}: ${JSON.stringify(a)}`);
  if (!a.ok) problems.push(`the desktop user's request failed: ${JSON.stringify(a)}`);
  const pathB = `/tbb-${run.token}`;
  const b = await http(pathB, { kind: 'netns', namespace: tbb.name, port: tbb.port }, siteB);
  notes.push(`the ${tbb.name} namespace through its SocksPort to ${siteB.hostname}: ${JSON.stringify(b)}`);
  if (!b.ok) problems.push(`the ${tbb.name} namespace's request failed: ${JSON.stringify(b)}`);
  for (const path of [pathA, pathB]) {
    const seen = bl.net.httpRequests().filter((r) => r.path === path);
    if (seen.length === 0 || !seen.every((r) => exits.has(r.peer))) problems.push(`${path} did not arrive from an exit relay: ${JSON.stringify(seen)}`);
  }
  const name = DNSPORT_LOOKUP.hostname;
  const asked = bl.net.dnsQueries().filter((q) => q.name === name).length;
  const l = (await run.boot.request<{ code: number; addresses: string[] }>({ op: 'lookup', as: bl.desktop, name }, 90_000)).result;
  notes.push(`lookup of ${name} as the desktop user (resolv.conf → DNSPort): ${JSON.stringify(l)}`);
  if (!l.addresses.includes(DNSPORT_LOOKUP.address)) problems.push(`lookup of ${name} gave ${JSON.stringify(l)}`);
  // only an exit asks the exits' DNS server (a query from the guest itself would cross the tap: a leak in the capture); it logs a moment after answering
  const seen = await until(
    'the lookup at the exits’ DNS server',
    async () => bl.net.dnsQueries().filter((q) => q.name === name).length,
    (n) => n > asked,
    5000,
    250,
  ).catch(() => asked);
  if (seen <= asked) problems.push(`the exits' DNS server never got ${name}: the answer did not come through an exit`);
  return { problems, notes };
}

/** The image's self-test on this boot: everything holds, and the booted kernel has unprivileged user namespaces off, checked by the self-test itself. */
export async function selftestOnBoot(run: Run, assembly: Assembly, expected: number | undefined, m: Milestones): Promise<Outcome & { report: SelftestReport }> {
  const r = await run.boot.waitSelftest(420_000);
  m.selftest = r.at;
  const notes = [`${r.report.passed} passed, ${r.report.failed} failed, result at ${secs(r.at)}`];
  const problems = r.report.results.filter((x) => !x.ok).map((x) => `${x.id}: ${x.detail}`);
  if (expected !== undefined && r.report.results.length !== expected) problems.push(`${r.report.results.length} results, the image carries ${expected}`);
  const userns = planImage(assembly).selftest.assertions.find((a) => a.check.kind === 'sysctl' && a.check.key === 'kernel.unprivileged_userns_clone');
  const checked = r.report.results.find((x) => x.id === userns?.id);
  const now = (await run.status()).sysctl['kernel.unprivileged_userns_clone'];
  notes.push(`kernel.unprivileged_userns_clone = ${now} in the booted kernel; the self-test's ${userns?.id ?? 'check'}: ${JSON.stringify(checked)}`);
  if (!userns || !checked) problems.push('the self-test did not check kernel.unprivileged_userns_clone on this boot');
  else if (!checked.ok) problems.push(`the self-test's ${checked.id} failed: ${checked.detail}`);
  if (now !== '0') problems.push(`kernel.unprivileged_userns_clone is ${now} in the booted image (expected 0)`);
  // where the boot's time went, read back from the guest (the figures of the speed work)
  const a = (await run.boot.request<Record<string, string>>({ op: 'analyze' }, 120_000)).result;
  m.analyze = {
    time: a.time ?? '',
    chain: (a.criticalChain ?? '').split('\n').slice(0, 14).join('\n'),
    blame: (a.blame ?? '').split('\n').slice(0, 12).join('\n'),
  };
  notes.push(`systemd-analyze: ${m.analyze.time.replace(/\s+/g, ' ')}`);
  return { problems, notes, report: r.report };
}

/** The self-test's active probes ran on this boot, where they reach something, and each passed (its control got through, its attacker was refused). */
export function activeProbesOnBoot(assembly: Assembly, report: SelftestReport): Outcome {
  const active = planImage(assembly).selftest.assertions.filter((a) => ACTIVE_KINDS.has(a.check.kind));
  const problems: string[] = [];
  if (active.length === 0) problems.push('the self-test carries no active probe: nothing it checks reaches out from the guest');
  for (const a of active) {
    const r = report.results.find((x) => x.id === a.id);
    if (!r) problems.push(`${a.id}: not evaluated on this boot`);
    else if (!r.ok) problems.push(`${a.id}: ${r.detail}`);
  }
  return { problems, notes: [`active probes: ${active.map((a) => a.id).join(', ') || 'none'}`] };
}

// ---- fail-closed windows ------------------------------------------------------------------------

/** What every window must show: nothing not allowed, the senders ran and got nothing out, the positive control went out (network up), nothing reached the sink. */
export function windowProblems(bl: BootLab, run: Run, w: Window, networkUp: boolean): string[] {
  const p: string[] = failures(w.classification.packets).map((x) => `not allowed: ${describePacket(x)}`);
  for (const s of w.senders) {
    if (s.attempts <= 0) p.push(`a sender did not run: ${s.label} (${JSON.stringify(s)})`);
    const control = s.label.includes('positive control');
    if (!control && s.sent > 0) p.push(`${s.label}: ${s.sent} of ${s.attempts} left the socket`);
    if (control && networkUp && s.sent === 0) p.push(`positive control: ${s.label} sent nothing (${s.refused} refused): the window cannot tell`);
  }
  if (w.senders.length < 6) p.push(`only ${w.senders.length} senders reported`);
  if (networkUp && !w.classification.packets.some((x) => x.cls === 'control'))
    p.push("positive control: no control packet in the window's capture: silence cannot pass");
  const sunk = bl.sink().filter((e) => e.token?.startsWith(`${run.token}-${w.name}`));
  if (sunk.length) p.push(`reached the Internet sink: ${JSON.stringify(sunk.slice(0, 5))}`);
  return p;
}

const senderNotes = (w: Window) => `senders: ${w.senders.map((s) => `${s.label} ${s.sent} out of ${s.attempts}`).join('; ')}`;

export async function firewallRestart(bl: BootLab, run: Run): Promise<Outcome> {
  const before = await run.status();
  const w = await run.window('firewall-restart', async () => ({ restart: (await run.boot.request({ op: 'restart-firewall' }, 120_000)).result }));
  const after = await run.status();
  const problems = windowProblems(bl, run, w, true);
  if ((w.evidence.restart as { code?: number }).code !== 0) problems.push(`systemctl restart failed: ${JSON.stringify(w.evidence.restart)}`);
  if (before.ruleset !== after.ruleset || after.ruleset === 'absent') problems.push(`ruleset ${before.ruleset} before the restart, ${after.ruleset} after`);
  return { problems, notes: [`restart: ${JSON.stringify(w.evidence.restart)}`, senderNotes(w)], classification: w.classification };
}

/**
 * The cable stays out until NetworkManager took the device down (its address
 * gone), so plugging it back is a real reconnect with DHCP, not a blip it
 * rides out; NetworkManager's grace for a lost carrier is seconds, but on a
 * loaded TCG guest it took more than 15 s. Bounded: the cable goes back after
 * this long whatever happened.
 */
const CABLE_OUT_MAX_MS = 90_000;

export async function linkReconnect(bl: BootLab, run: Run): Promise<Outcome> {
  const before = await run.status();
  const nic =
    before.links.find((l) => l.mac === run.nicMac || l.permaddr === run.nicMac) ?? before.links.find((l) => l.ipv4.length > 0 && !l.name.startsWith('veth'));
  if (!nic) throw new Error(`no NIC among ${JSON.stringify(before.links)}`);
  const link = (s: AgentStatus) => s.links.find((l) => l.name === nic.name);
  const w = await run.window(
    'reconnect',
    async () => {
      const pulledAt = run.boot.now();
      await run.boot.setLink(false);
      let carrierLost: LinkState | undefined;
      let afterHold: LinkState | undefined;
      try {
        carrierLost = link(
          await until(
            'the carrier gone after the cable is pulled',
            () => run.status(),
            (s) => link(s)?.operstate !== 'UP',
            60_000,
            1000,
          ),
        );
        afterHold = link(
          await until(
            'NetworkManager taking the address off the unplugged NIC',
            () => run.status(),
            (s) => (link(s)?.ipv4.length ?? 0) === 0,
            CABLE_OUT_MAX_MS,
            1000,
          ).catch(() => run.status()),
        );
      } finally {
        // the cable goes back whatever happened: a guest left without a link would fail every later scenario for this one
        await run.boot.setLink(true);
      }
      const pluggedAt = run.boot.now();
      const up = await until(
        'the carrier and an address again with the cable back',
        () => run.status(),
        (s) => link(s)?.operstate === 'UP' && (link(s)?.ipv4.length ?? 0) > 0,
        90_000,
        1000,
      );
      return { pulledAt, carrierLost, afterHold, pluggedAt, up: link(up) };
    },
    { settleMs: 5000 },
  );
  const after = await run.status();
  const problems = windowProblems(bl, run, w, true);
  if (before.resolvConf !== after.resolvConf) problems.push(`/etc/resolv.conf changed: ${before.resolvConf} → ${after.resolvConf}`);
  if (before.ruleset !== after.ruleset) problems.push(`the ruleset changed: ${before.ruleset} → ${after.ruleset}`);
  if ((w.evidence.afterHold as LinkState | undefined)?.ipv4.length)
    problems.push(`NetworkManager kept the address ${CABLE_OUT_MAX_MS / 1000} s without carrier: the link was never really down`);
  const plugged = w.evidence.pluggedAt as number;
  if (!w.classification.packets.some((p) => p.cls === 'dhcp' && p.t * 1000 >= plugged))
    problems.push('no DHCP after the cable was back: NetworkManager did not reconnect the link');
  return {
    problems,
    notes: [
      `carrier lost: ${JSON.stringify(w.evidence.carrierLost)}; without cable (at most ${CABLE_OUT_MAX_MS / 1000} s, until the address is gone): ${JSON.stringify(w.evidence.afterHold)}; up again: ${JSON.stringify(w.evidence.up)}`,
      senderNotes(w),
    ],
    classification: w.classification,
  };
}

export async function torKilled(bl: BootLab, run: Run): Promise<Outcome> {
  const { desktop } = torPorts(bl.policy);
  const site = bl.net.sites[0]!;
  let killedAt = 0;
  const w = await run.window(
    'tor-killed',
    async () => {
      const k = await run.boot.request<{ after?: { active: string }; torProcesses: string }>({ op: 'kill-tor' }, 60_000);
      // the agent answers once tor is gone (masked, SIGKILL, 3 s, no tor process left); masking alone can take
      // seconds on a loaded guest, so the request's send time is not when tor died
      killedAt = k.at;
      const viaTor = (
        await run.boot.request<HttpOutcome>(
          {
            op: 'http',
            as: bl.desktop,
            via: { kind: 'socks', address: desktop.address, port: desktop.port },
            host: site.hostname,
            port: site.port,
            path: '/after-kill',
            timeoutMs: 30_000,
          },
          90_000,
        )
      ).result;
      return { kill: k.result, viaTor };
    },
    { settleMs: 8000 },
  );
  const problems = windowProblems(bl, run, w, true);
  const kill = w.evidence.kill as { after?: { active: string }; torProcesses: string };
  if (kill.after?.active === 'active' || kill.torProcesses) problems.push(`tor still runs: ${JSON.stringify(kill)}`);
  const viaTor = w.evidence.viaTor as HttpOutcome;
  if (viaTor.ok) problems.push('a request through the SocksPort still worked');
  // a worker that never reported (killed at its time limit on a loaded machine) says nothing about tor: could not tell
  else if (viaTor.stage === 'worker') problems.push(`the request through the SocksPort did not report: ${viaTor.error}`);
  // once tor is dead its relay connections may only close (FIN or RST, no new SYN) and the kernel may resend
  // what tor wrote before it died; a byte beyond that is not "nothing"
  const whole = run.classifyNow().packets;
  const after = w.classification.packets.filter(
    (p: ClassifiedPacket) =>
      p.from === 'guest' &&
      p.t * 1000 > killedAt &&
      !['arp', 'dhcp', 'control'].includes(p.cls) &&
      !(p.cls === 'tor-relay' && !/S/.test(p.tcpFlags ?? '') && (p.payload === 0 || onlyResent(p, whole, killedAt))),
  );
  for (const p of after) problems.push(`after the kill: ${describePacket(p)}`);
  return {
    problems,
    notes: [`kill: ${JSON.stringify(kill)}`, `a request through the SocksPort afterwards: ${JSON.stringify(w.evidence.viaTor)}`, senderNotes(w)],
    classification: w.classification,
  };
}

/** Power off with the late probe; then everything after NetworkManager stopped is judged (only the positive control may leave). */
export async function shutdownProbe(bl: BootLab, run: Run, m: Milestones): Promise<Outcome & { done: Finished }> {
  const sd = await run.boot.request<{ setup: string }>({ op: 'shutdown', senders: run.senders('shutdown') }, 120_000);
  const exit = await Promise.race([run.boot.exited(), sleep(300_000).then(() => undefined)]);
  const done = await run.finish();
  m.powerOff = done.exit.at;
  const problems: string[] = [];
  const notes: string[] = [];
  if (!exit) problems.push('the guest did not power off within 5 minutes');
  const late = parseLateLines(`${sd.result.setup}\n${await run.boot.serial()}`);
  const setup = late.find((l) => l.stage === 'setup');
  const final = late.find((l) => l.stage === 'final');
  notes.push(`before shutdown: ${JSON.stringify(setup)}`, `last probe (systemd-shutdown hook): ${JSON.stringify(final)}`);
  if (!setup || !final) problems.push(`late probes missing: before shutdown ${setup ? 'present' : 'missing'}, last ${final ? 'present' : 'missing'}`);
  else {
    if (final.table === 'absent' || final.table !== setup.table)
      problems.push(`the ruleset at the last moment: ${final.table}; before shutdown: ${setup.table}`);
    for (const s of final.senders) {
      if (s.attempts <= 0) problems.push(`a late sender did not run: ${s.token}`);
      if (!s.token.includes('-control-') && s.sent > 0) problems.push(`late sender ${s.token}: ${s.sent} left the socket`);
    }
  }
  const nmStop = run.boot.serialLines().find((l) => /Stopped.*(NetworkManager\.service|Network Manager)/.test(l.line));
  notes.push(`NetworkManager stopped (serial console) at ${secs(nmStop?.at)}; power-off at ${secs(done.exit.at)}`);
  if (!nmStop) problems.push("NetworkManager's stop is not on the serial console: cannot tell when the network went down");
  else {
    const after = done.whole.packets.filter((p) => p.from === 'guest' && p.t * 1000 > nmStop.at);
    for (const p of after.filter((x) => x.cls !== 'control' && x.cls !== 'arp')) problems.push(`after the network went down: ${describePacket(p)}`);
    if (!after.some((p) => p.cls === 'control')) problems.push('positive control: no control packet after the network went down: silence cannot pass');
    notes.push(
      `after NetworkManager stopped: ${after.length} packets from the guest, ${after.filter((p) => p.cls === 'control').length} of them the positive control`,
    );
  }
  const sunk = bl.sink().filter((e) => e.token?.startsWith(`${run.token}-shutdown`));
  if (sunk.length) problems.push(`reached the Internet sink: ${JSON.stringify(sunk)}`);
  return { problems, notes, classification: done.whole, done };
}

/** The whole run's capture: nothing not allowed, and every class the run must have had. */
export function wholeRun(c: Classification): Outcome {
  const problems = failures(c.packets).map((p) => `not allowed: ${describePacket(p)}`);
  for (const cls of ['dhcp', 'pretor-dns', 'pretor-http', 'tor-relay', 'control'] as const)
    if (c.counts[cls] === 0) problems.push(`no ${cls} packet in the whole run`);
  return { problems, notes: [`packets: ${JSON.stringify(c.counts)}; flows: ${c.flows.length}`], classification: c };
}

/** What the LAN learns: nothing that names the machine (findings are NetworkManager's to fix; reported, never hidden). */
export function lanIdentifiers(c: Classification): Outcome {
  return { problems: c.findings.map((f) => `${f.kind}: ${f.detail} (${f.count}×, first at ${f.t} s)`), notes: [] };
}

// ---- boots that must use none of the test settings ------------------------------------------------

/**
 * After the console shows `logged`, wait until the guest's tor dials one of
 * its compiled-in directory endpoints, then judge: only those (and the
 * consented pre-Tor check), none answered, none to the private network, the
 * agent never ran, nothing left the LAN namespace for a non-lab address, and
 * the lab's namespaces have no route there.
 */
export async function usesNoSettings(bl: BootLab, run: Run, logged: RegExp, torDefaults: readonly Endpoint[]): Promise<Outcome & { done: Finished }> {
  const notes: string[] = [];
  const problems: string[] = [];
  let done: Finished;
  try {
    const line = await run.boot.waitSerial(logged, 420_000);
    notes.push(`console: "${line.line.trim()}" at ${secs(line.at)}`);
    await until(
      'tor dialling a compiled-in directory endpoint',
      async () => run.classifyNow(torDefaults),
      (c) => c.flows.some((f) => f.cls === 'tor-relay'),
      420_000, // with other guests booting beside it, tor started minutes after the console line
      2000,
    );
    await sleep(20_000); // more attempts, and time for any answer to come back
  } finally {
    done = await run.finish(torDefaults);
  }
  const c = done.whole;
  const relayFlows = c.flows.filter((f) => f.cls === 'tor-relay');
  notes.push(
    `tor dialled ${relayFlows.length} of its compiled-in directory endpoints: ${relayFlows
      .slice(0, 6)
      .map((f) => f.key.split('⇄ ')[1])
      .join(', ')}`,
  );
  for (const p of failures(c.packets)) problems.push(`not allowed: ${describePacket(p)}`);
  for (const f of relayFlows.filter((x) => x.replies > 0)) problems.push(`answered (it did not die in the lab): ${f.key}`);
  if (relayFlows.length === 0) problems.push('tor never dialled a compiled-in endpoint: cannot tell what it would use');
  const labRelays = new Set(bl.relays().map((r) => r.address));
  for (const p of c.packets.filter((x) => x.from === 'guest' && [...labRelays].some((a) => x.what.includes(`→ ${a}:`))).slice(0, 5))
    problems.push(`to the private network (its settings were used): ${describePacket(p)}`);
  if (run.boot.events().some((e) => e.event.ev === 'hello')) problems.push('the lab agent ran without accepted settings');
  const lanPrefix = `${run.slot.lan.subnet.split('.').slice(0, 3).join('.')}.`;
  for (const u of done.uplink.filter((x) => !/^(198\.51\.100|203\.0\.113|192\.0\.2)\./.test(x.dst) && !x.dst.startsWith(lanPrefix)).slice(0, 5))
    problems.push(`left the LAN namespace for the Internet namespace: ${u.what} at ${u.t} s`);
  // the guest's packets enter the lab in the LAN namespace: with no route there they die there (the Internet
  // namespace's default route only leads back to the LAN namespace; no lab namespace has a way out)
  for (const f of relayFlows.slice(0, 3)) {
    const dst = f.key.split('⇄ ')[1]!.split(':')[0]!;
    const route = await routeFrom(bl.lab.lan, dst);
    if (route) problems.push(`${bl.lab.lan} has a route to ${dst}: ${route}`);
  }
  notes.push(`packets: ${JSON.stringify(c.counts)}`);
  return { problems, notes, classification: c, done };
}

/**
 * The ruleset-corrupted boot (and its anti-test): after the boot settled,
 * the firewall unit failed, NetworkManager never started, no interface has
 * an address, the lockdown is loaded, the senders ran and got nothing out,
 * and the guest sent not one frame in the whole boot. The lab's own frames
 * on the tap during the window prove the capture was alive.
 */
export async function corruptedRuleset(run: Run, ping: (broadcast: string) => Promise<unknown>): Promise<Outcome & { done: Finished }> {
  const notes: string[] = [];
  const problems: string[] = [];
  let done: Finished;
  let w: Window | undefined;
  try {
    await run.boot.hello(420_000);
    // not "boot finished": with no network, units that wait for Tor never finish; the point is the firewall's verdict
    const settled = await until(
      'the firewall unit done',
      () => run.status(),
      (s) => ['failed', 'active'].includes(s.units[UNITS.firewall]?.active ?? ''),
      300_000,
      2000,
    );
    notes.push(`firewall unit ${JSON.stringify(settled.units[UNITS.firewall])} at ${secs(run.boot.now())}; system ${settled.system}`);
    // whatever would start after it (NetworkManager, tor, the pre-Tor check) has time to try
    await sleep(20_000);
    w = await run.window(
      'corrupted',
      async () => {
        await ping(run.slot.lan.subnet.replace(/\.0\/24$/, '.255'));
        return { status: await run.status() };
      },
      { attempts: 30, gapMs: 100, settleMs: 2000 },
    );
  } finally {
    done = await run.finish();
  }
  if (!w) throw new Error('the window did not run');
  const st = w.evidence.status as AgentStatus;
  notes.push(`units: ${JSON.stringify(st.units)}`, `links: ${JSON.stringify(st.links)}`, `tables: ${st.tables.join(', ')}`, senderNotes(w));
  if (st.units[UNITS.firewall]?.result === 'success') problems.push(`the firewall unit did not fail: ${JSON.stringify(st.units[UNITS.firewall])}`);
  if (st.units[UNITS.networkManager]?.active === 'active') problems.push('NetworkManager runs');
  for (const l of st.links.filter((x) => x.ipv4.length)) problems.push(`${l.name} has an address: ${l.ipv4.join(', ')}`);
  if (!st.tables.includes('inet leakless')) problems.push('no table inet leakless: the lockdown is not loaded');
  for (const p of done.whole.packets.filter((x) => x.from === 'guest')) problems.push(`sent while the ruleset was corrupted: ${describePacket(p)}`);
  for (const s of w.senders) {
    if (s.attempts <= 0) problems.push(`a sender did not run: ${s.label}`);
    if (s.sent > 0) problems.push(`${s.label}: ${s.sent} left the socket`);
  }
  if (!w.classification.packets.some((p) => p.from === 'lab'))
    problems.push("the window's capture saw nothing at all, not even the lab's own frames: cannot tell");
  return { problems, notes, classification: done.whole, done };
}

// Evaluating runtime assertions on a live system. All observation goes through
// one injected `exec` (sysctl, stat, getent, nft, ss, systemctl…) so the same
// evaluator runs in a module's tests, in a lab namespace (exec prefixed with
// `ip netns exec NAME`) and inside the booted image.
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import type { RuntimeAssertion, RuntimeCheck } from '@leakless/policy';
// the dependency-free subpath: the in-image bundle carries no zod, yaml or ejs
import { addressIn, parseCidr4 } from '@leakless/policy/net';

export type Exec = (cmd: string, args: readonly string[]) => Promise<{ exitCode: number; stdout: string; stderr: string }>;

/** What the evaluator is given at run time, beside the assertions. */
export interface EvaluateOptions {
  /**
   * Destinations the active probes ('refused-probe') name, as "ADDRESS" or "ADDRESS:PORT": the lab's
   * hosts, or the networked boot's. A probe whose destination is not given fails: it cannot tell.
   */
  readonly destinations?: Readonly<Record<string, string>>;
  /** The node that runs a probe as another uid (default: the one running this). */
  readonly node?: string;
}

export interface RuntimeResult {
  readonly id: string;
  readonly statement: string;
  readonly ok: boolean;
  /** What was observed; "could not tell" is reported as a failure, never a pass. */
  readonly detail: string;
}

async function observe(check: RuntimeCheck, exec: Exec, opts: EvaluateOptions): Promise<{ ok: boolean; detail: string }> {
  switch (check.kind) {
    case 'sysctl': {
      const r = await exec('sysctl', ['-n', check.key]);
      if (r.exitCode !== 0) return { ok: false, detail: `could not read ${check.key}: ${r.stderr.trim()}` };
      return sysctlHolds(check, r.stdout);
    }
    case 'file': {
      const r = await exec('sh', ['-c', 'stat -c %a "$1" && cat "$1"', 'sh', check.path]);
      if (r.exitCode !== 0) return { ok: false, detail: `${check.path}: missing (${r.stderr.trim()})` };
      const nl = r.stdout.indexOf('\n');
      const mode = parseInt(r.stdout.slice(0, nl), 8);
      const sum = createHash('sha256')
        .update(r.stdout.slice(nl + 1))
        .digest('hex');
      const ok = mode === check.mode && sum === check.sha256;
      return { ok, detail: `${check.path}: mode ${mode.toString(8)}${sum === check.sha256 ? '' : ', content differs from the emitted file'}` };
    }
    case 'user': {
      const r = await exec('getent', ['passwd', check.name]);
      if (r.exitCode !== 0) return { ok: false, detail: `${check.name}: no such user` };
      const [, , uid, gid] = r.stdout.trim().split(':');
      const ok = Number(uid) === check.uid && Number(gid) === check.gid;
      return { ok, detail: `${check.name}: uid ${uid} gid ${gid} (expected ${check.uid}:${check.gid})` };
    }
    case 'module-blocked': {
      // modprobe -n -v prints the install command it would run; blocked modules run /bin/false
      const r = await exec('modprobe', ['-n', '-v', check.module]);
      const blocked = /install \/bin\/(false|true)/.test(r.stdout);
      return { ok: blocked, detail: `${check.module}: ${r.stdout.trim() || r.stderr.trim() || 'no output'}` };
    }
    case 'nft-table': {
      const r = await exec('nft', ['list', 'table', check.family, check.table]);
      if (r.exitCode !== 0) return { ok: false, detail: `table ${check.family} ${check.table} not loaded: ${r.stderr.trim()}` };
      const sum = createHash('sha256').update(normalizeNftListing(r.stdout)).digest('hex');
      return {
        ok: sum === check.sha256OfRules,
        detail: `table ${check.family} ${check.table} loaded${sum === check.sha256OfRules ? ', equal to the emitted ruleset' : ', differs from the emitted ruleset'}`,
      };
    }
    case 'listening': {
      const r = await exec('ss', ['-H', '-n', '-l', check.protocol === 'tcp' ? '-t' : '-u']);
      if (r.exitCode !== 0) return { ok: false, detail: `ss failed: ${r.stderr.trim()}` };
      const want = `${check.address}:${check.port}`;
      const ok = r.stdout.split('\n').some((l) => l.trim().split(/\s+/)[3] === want);
      return { ok, detail: `${check.protocol} ${want} ${ok ? 'listening' : 'not listening'}` };
    }
    case 'unit-active': {
      const r = await exec('systemctl', ['is-active', check.unit]);
      return { ok: r.stdout.trim() === 'active', detail: `${check.unit}: ${r.stdout.trim() || r.stderr.trim()}` };
    }
    case 'ip-addresses': {
      const r = await exec('ip', ['-j', 'addr', 'show']);
      if (r.exitCode !== 0) return { ok: false, detail: `ip addr failed: ${r.stderr.trim()}` };
      return compareSets('addresses', ipAddresses(r.stdout), check.expected);
    }
    case 'ip-routes': {
      const v4 = await exec('ip', ['-j', '-4', 'route', 'show', 'table', 'all']);
      if (v4.exitCode !== 0) return { ok: false, detail: `ip -4 route failed: ${v4.stderr.trim()}` };
      const v6 = await exec('ip', ['-j', '-6', 'route', 'show', 'table', 'all']);
      // A kernel without IPv6 has no IPv6 routes; any other failure is "could not tell".
      const v6Absent = v6.exitCode !== 0 && /not supported/i.test(v6.stderr);
      if (v6.exitCode !== 0 && !v6Absent) return { ok: false, detail: `ip -6 route failed: ${v6.stderr.trim()}` };
      return compareSets('routes', [...ipRoutes(v4.stdout), ...(v6Absent ? [] : ipRoutes(v6.stdout))], check.expected);
    }
    case 'resolves-within': {
      const r = await exec('setpriv', [`--reuid=${check.uid}`, `--regid=${check.gid}`, '--clear-groups', 'getent', 'ahostsv4', check.name]);
      if (r.exitCode !== 0) return { ok: false, detail: `${check.name}: no answer as uid ${check.uid} (getent exit ${r.exitCode})` };
      const got = [
        ...new Set(
          r.stdout
            .split('\n')
            .map((l) => l.trim().split(/\s+/)[0] ?? '')
            .filter((a) => isIPv4(a)),
        ),
      ];
      const range = parseCidr4(check.range);
      const ok = got.length > 0 && got.every((a) => addressIn(a, range));
      return { ok, detail: `${check.name} as uid ${check.uid} → ${got.join(', ') || 'no IPv4 address'} (expected within ${check.range})` };
    }
    case 'nft-inventory': {
      const r = await exec('nft', ['-j', 'list', 'ruleset']);
      if (r.exitCode !== 0) return { ok: false, detail: `nft list ruleset failed: ${r.stderr.trim()}` };
      return compareSets('nftables tables and chains', nftInventory(r.stdout), check.expected);
    }
    case 'sysctl-interfaces':
      return interfaceSysctls(check, exec);
    case 'listeners':
      return listeners(check, exec);
    case 'refused-probe':
      return refusedProbe(check, exec, opts);
  }
}

/**
 * `nft -j list ruleset` → one line per table, chain and flowtable (see the
 * contract's nft-inventory): a base chain with its type, hook, device,
 * priority and policy, so a foreign hook anywhere shows as a line nobody expects.
 */
export function nftInventory(json: string): string[] {
  const doc = JSON.parse(json) as { nftables?: Record<string, Record<string, unknown>>[] };
  if (!Array.isArray(doc.nftables)) throw new Error('nft -j did not print a ruleset');
  const devs = (d: unknown) => (d === undefined ? '' : ` device ${(Array.isArray(d) ? d : [d]).map(String).sort().join(',')}`);
  return doc.nftables.flatMap((o) => {
    if (o.table) return [`table ${String(o.table.family)} ${String(o.table.name)}`];
    const c = o.chain;
    if (c) {
      const name = `chain ${String(c.family)} ${String(c.table)} ${String(c.name)}`;
      return [
        c.hook === undefined ? name : `${name}: ${String(c.type)} hook ${String(c.hook)}${devs(c.dev)} priority ${String(c.prio)} policy ${String(c.policy)}`,
      ];
    }
    const f = o.flowtable;
    if (f) return [`flowtable ${String(f.family)} ${String(f.table)} ${String(f.name)}: hook ${String(f.hook)}${devs(f.dev)} priority ${String(f.prio)}`];
    return [];
  });
}

type Check<K extends RuntimeCheck['kind']> = Extract<RuntimeCheck, { kind: K }>;

function sysctlHolds(check: Check<'sysctl'>, value: string): { ok: boolean; detail: string } {
  // sysctl prints multi-value keys tab-separated; policy values use single spaces
  const got = value.trim().split(/\s+/).join(' ');
  return { ok: got === check.expected, detail: `${check.key} = ${got} (expected ${check.expected})` };
}

/**
 * `sysctl KEY…` (one process for many keys) → each key's value. Only an answer that is exactly one
 * `KEY = VALUE` line per asked key, in the order asked, counts: anything else (a key the kernel does not
 * have, a value over several lines) gives no values, and each key is then read on its own.
 */
export function sysctlValues(keys: readonly string[], stdout: string): ReadonlyMap<string, string> {
  const lines = stdout.replace(/\n$/, '').split('\n');
  if (lines.length !== keys.length) return new Map();
  const values = new Map<string, string>();
  for (const [i, line] of lines.entries()) {
    const prefix = `${keys[i]} = `;
    if (!line.startsWith(prefix)) return new Map();
    values.set(keys[i]!, line.slice(prefix.length));
  }
  return values;
}

async function interfaceSysctls(check: Check<'sysctl-interfaces'>, exec: Exec): Promise<{ ok: boolean; detail: string }> {
  if (!/^[a-z0-9_]+$/.test(check.key)) return { ok: false, detail: `not a per-interface sysctl key: ${check.key}` };
  const prefix = `net.${check.family}.conf.`;
  const r = await exec('sysctl', ['-a', '--pattern', `^net\\.${check.family}\\.conf\\.[^.]+\\.${check.key}$`]);
  const values = new Map(
    r.stdout
      .split('\n')
      .map((l) => /^(\S+) = (.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null && m[1]!.startsWith(prefix))
      .map((m) => [m[1]!.slice(prefix.length, -(check.key.length + 1)), m[2]!.trim()] as const),
  );
  if (!values.has('all')) return { ok: false, detail: `could not read ${prefix}*.${check.key} (exit ${r.exitCode}): ${r.stderr.trim()}` };
  const want = (iface: string) => check.except?.[iface] ?? check.expected;
  const bad = [...values].filter(([iface, v]) => v !== want(iface)).map(([iface, v]) => `${iface} = ${v} (expected ${want(iface)})`);
  return {
    ok: bad.length === 0,
    detail: bad.length
      ? `${prefix}<iface>.${check.key}: ${bad.join(', ')}`
      : `${prefix}<iface>.${check.key} as expected on ${[...values.keys()].sort().join(', ')}`,
  };
}

interface Socket {
  readonly protocol: string;
  readonly address: string;
  readonly port: number;
  readonly process: string;
}

/** `ss -H -n -l -t -u -p` → every listening TCP and bound UDP socket, with the process holding it (first one ss names). */
export function listeningSockets(stdout: string): Socket[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      const f = l.trim().split(/\s+/);
      const local = f[4] ?? '';
      const i = local.lastIndexOf(':');
      if (i < 0) return [];
      const address = local
        .slice(0, i)
        .replace(/%[^%\]]*$/, '')
        .replace(/^\[(.*)\]$/, '$1');
      return [{ protocol: f[0]!, address, port: Number(local.slice(i + 1)), process: /users:\(\("([^"]+)"/.exec(l)?.[1] ?? '?' }];
    });
}

const isLoopback = (a: string) => a === '::1' || /^127\./.test(a);

async function listeners(check: Check<'listeners'>, exec: Exec): Promise<{ ok: boolean; detail: string }> {
  const r = await exec('ss', ['-H', '-n', '-l', '-t', '-u', '-p']);
  if (r.exitCode !== 0) return { ok: false, detail: `ss failed: ${r.stderr.trim()}` };
  const sockets = listeningSockets(r.stdout);
  const problems: string[] = [];
  const heldPorts = new Set(check.held.map((h) => `${h.protocol}/${h.port}`));
  for (const h of check.held) {
    const s = sockets.filter((x) => x.protocol === h.protocol && x.address === h.address && x.port === h.port);
    if (s.length === 0) problems.push(`${h.protocol} ${h.address}:${h.port} not listening`);
    for (const x of s.filter((y) => y.process !== h.process)) problems.push(`${h.protocol} ${h.address}:${h.port} held by ${x.process}, not ${h.process}`);
  }
  for (const s of sockets) {
    if (check.held.some((h) => h.protocol === s.protocol && h.address === s.address && h.port === s.port)) continue;
    if (isLoopback(s.address) && !heldPorts.has(`${s.protocol}/${s.port}`)) continue;
    if (check.allowed.some((a) => a.protocol === s.protocol && a.port === s.port)) continue;
    problems.push(`unexpected ${s.protocol} listener ${s.address}:${s.port} (${s.process})`);
  }
  return {
    ok: problems.length === 0,
    detail: problems.length
      ? problems.join('; ')
      : `${sockets.length} listeners: ${check.held.length} held by ${[...new Set(check.held.map((h) => h.process))].join(', ')}, the rest on loopback or allowed`,
  };
}

/**
 * The probe a uid runs for 'refused-probe', in Node (the self-test's own
 * runtime, so the image needs nothing more): one TCP connect or one UDP
 * datagram (waiting for an answer when `answer`), from `sport` if given.
 * Prints {ok, error, sport, ms}; ok = connected / answered / sent.
 */
const PROBE_JS = `
const [p] = process.argv.slice(-1).map((a) => JSON.parse(a));
const t0 = Date.now();
const done = (ok, error, sport) => { process.stdout.write(JSON.stringify({ ok, error, sport: sport ?? null, ms: Date.now() - t0 })); process.exit(0); };
setTimeout(() => done(false, 'TIMEOUT'), p.timeoutMs);
if (p.protocol === 'tcp') {
  const s = require('net').connect({ host: p.address, port: p.port, ...(p.sport ? { localPort: p.sport } : {}) });
  s.on('connect', () => { const sport = s.localPort; s.destroy(); done(true, null, sport); });
  s.on('error', (e) => done(false, e.code || String(e)));
} else {
  const s = require('dgram').createSocket('udp4');
  s.on('error', (e) => done(false, e.code || String(e)));
  s.on('message', () => { const sport = s.address().port; s.close(); done(true, null, sport); });
  s.bind(p.sport || 0, () => s.send(Buffer.from('leakless-selftest\\n'), p.port, p.address, (e) => {
    if (e) return done(false, e.code || String(e), s.address().port);
    if (!p.answer) { const sport = s.address().port; s.close(); done(true, null, sport); }
  }));
}`;

interface ProbeRun {
  readonly ok: boolean;
  readonly error: string | null;
  readonly sport: number | null;
  readonly ms: number;
}

async function probeAs(
  exec: Exec,
  node: string,
  who: { uid: number; gid: number },
  p: { protocol: 'tcp' | 'udp'; address: string; port: number; sport?: number; answer: boolean },
): Promise<ProbeRun> {
  const r = await exec('setpriv', [
    `--reuid=${who.uid}`,
    `--regid=${who.gid}`,
    '--clear-groups',
    '--',
    node,
    '-e',
    PROBE_JS,
    JSON.stringify({ ...p, timeoutMs: 3000 }),
  ]);
  try {
    return JSON.parse(r.stdout) as ProbeRun;
  } catch {
    throw new Error(`the probe as uid ${who.uid} printed nothing usable (exit ${r.exitCode}): ${r.stderr.trim().split('\n')[0]}`);
  }
}

/** Errors that mean this host refused the packet before it left (a reject's ICMP, or netfilter's drop). */
const LOCAL_REFUSALS = new Set(['ECONNREFUSED', 'EPERM', 'EACCES']);

async function refusedProbe(check: Check<'refused-probe'>, exec: Exec, opts: EvaluateOptions): Promise<{ ok: boolean; detail: string }> {
  const given = opts.destinations?.[check.to];
  if (given === undefined) return { ok: false, detail: `no destination "${check.to}" given (--destination ${check.to}=ADDRESS[:PORT]): cannot tell` };
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(given);
  if (!m) return { ok: false, detail: `destination ${check.to}=${given} is not ADDRESS[:PORT]` };
  const address = m[1]!;
  const port = m[2] ? Number(m[2]) : check.port;
  const where = `${check.protocol} ${address}:${port}`;
  const node = opts.node ?? process.execPath;
  const control = await probeAs(exec, node, check.control, { protocol: check.protocol, address, port, answer: true });
  if (!control.ok)
    return {
      ok: false,
      detail: `control: uid ${check.control.uid} could not reach ${where} (${control.error}): the path is down, a refusal would prove nothing`,
    };
  const sport = check.ride ? (control.sport ?? undefined) : undefined;
  if (check.ride && sport === undefined) return { ok: false, detail: `control: uid ${check.control.uid} reached ${where} but reported no source port` };
  const attempt = await probeAs(exec, node, check.attacker, { protocol: check.protocol, address, port, ...(sport ? { sport } : {}), answer: false });
  const what = `uid ${check.attacker.uid} → ${where}${sport ? ` from uid ${check.control.uid}'s port ${sport}` : ''}`;
  if (attempt.ok)
    return { ok: false, detail: `LEAK: ${what} ${check.protocol === 'tcp' ? 'connected' : 'was sent'}, where uid ${check.control.uid} reached it` };
  if (!LOCAL_REFUSALS.has(attempt.error ?? '')) return { ok: false, detail: `${what}: ${attempt.error} after ${attempt.ms} ms, not refused by this host` };
  return { ok: true, detail: `${what}: refused here (${attempt.error}, ${attempt.ms} ms); control uid ${check.control.uid} reached it` };
}

function compareSets(what: string, got: readonly string[], expected: readonly string[]): { ok: boolean; detail: string } {
  const want = new Set(expected);
  const have = new Set(got);
  const extra = [...have].filter((x) => !want.has(x)).sort();
  const missing = [...want].filter((x) => !have.has(x)).sort();
  const ok = extra.length === 0 && missing.length === 0;
  return { ok, detail: ok ? `${what}: ${[...have].sort().join(', ')}` : `${what}: unexpected [${extra.join(', ')}], missing [${missing.join(', ')}]` };
}

function parseJsonArray(stdout: string): Record<string, unknown>[] {
  const v: unknown = JSON.parse(stdout.trim() === '' ? '[]' : stdout);
  if (!Array.isArray(v)) throw new Error('ip -j did not print a JSON array');
  return v as Record<string, unknown>[];
}

/** `ip -j addr show` → "IFNAME ADDRESS/PREFIX" for every address of every family. */
export function ipAddresses(stdout: string): string[] {
  return parseJsonArray(stdout).flatMap((link) =>
    ((link.addr_info as { local?: string; prefixlen?: number }[] | undefined) ?? []).map((a) => `${String(link.ifname)} ${a.local}/${a.prefixlen}`),
  );
}

/**
 * `ip -j route show table all` → "TABLE DST [via GW] dev DEV" for every route
 * that can send a packet somewhere; the kernel's local/broadcast/multicast
 * bookkeeping entries (one per local address) are left out.
 */
export function ipRoutes(stdout: string): string[] {
  return parseJsonArray(stdout)
    .filter((r) => !['local', 'broadcast', 'multicast', 'anycast'].includes(String(r.type ?? 'unicast')))
    .map((r) => {
      const type = r.type === undefined || r.type === 'unicast' ? '' : `${String(r.type)} `;
      const via = r.gateway === undefined ? '' : ` via ${String(r.gateway)}`;
      const dev = r.dev === undefined ? '' : ` dev ${String(r.dev)}`;
      return `${String(r.table ?? 'main')} ${type}${String(r.dst)}${via}${dev}`;
    });
}

/** Counters change while the system runs; compare the listing without them. */
export function normalizeNftListing(listing: string): string {
  return listing
    .split('\n')
    .map((l) => l.replace(/counter packets \d+ bytes \d+/g, 'counter').trimEnd())
    .filter((l) => l.trim() !== '')
    .join('\n');
}

/**
 * The plain sysctls of one namespace (or of the host), read in one process: a boot's self-test reads about
 * sixty keys, and under TCG each process start costs tens of milliseconds (3 s of its 10 s, measured).
 */
async function readSysctls(assertions: readonly RuntimeAssertion[], exec: Exec): Promise<ReadonlyMap<string, string>> {
  const keys = [...new Set(assertions.flatMap((a) => (a.check.kind === 'sysctl' ? [a.check.key] : [])))];
  if (keys.length < 2) return new Map();
  try {
    return sysctlValues(keys, (await exec('sysctl', keys)).stdout);
  } catch {
    return new Map();
  }
}

export async function evaluateRuntime(assertions: readonly RuntimeAssertion[], exec: Exec, opts: EvaluateOptions = {}): Promise<RuntimeResult[]> {
  // A namespace-scoped assertion runs every observation inside that namespace.
  const inNetns = (netns: string | undefined): Exec => (netns === undefined ? exec : (cmd, args) => exec('ip', ['netns', 'exec', netns, cmd, ...args]));
  const sysctls = new Map<string | undefined, ReadonlyMap<string, string>>();
  for (const ns of new Set(assertions.map((a) => a.netns))) {
    const here = assertions.filter((a) => a.netns === ns);
    sysctls.set(ns, await readSysctls(here, inNetns(ns)));
  }
  const out: RuntimeResult[] = [];
  for (const a of assertions) {
    let r: { ok: boolean; detail: string };
    const read = a.check.kind === 'sysctl' ? sysctls.get(a.netns)?.get(a.check.key) : undefined;
    try {
      r = read !== undefined && a.check.kind === 'sysctl' ? sysctlHolds(a.check, read) : await observe(a.check, inNetns(a.netns), opts);
    } catch (e) {
      r = { ok: false, detail: `could not tell: ${(e as Error).message}` };
    }
    out.push({ id: a.id, statement: a.statement, ...r });
  }
  return out;
}

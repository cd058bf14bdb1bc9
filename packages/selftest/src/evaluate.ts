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

export interface RuntimeResult {
  readonly id: string;
  readonly statement: string;
  readonly ok: boolean;
  /** What was observed; "could not tell" is reported as a failure, never a pass. */
  readonly detail: string;
}

async function observe(check: RuntimeCheck, exec: Exec): Promise<{ ok: boolean; detail: string }> {
  switch (check.kind) {
    case 'sysctl': {
      const r = await exec('sysctl', ['-n', check.key]);
      if (r.exitCode !== 0) return { ok: false, detail: `could not read ${check.key}: ${r.stderr.trim()}` };
      // sysctl prints multi-value keys tab-separated; policy values use single spaces
      const got = r.stdout.trim().split(/\s+/).join(' ');
      return { ok: got === check.expected, detail: `${check.key} = ${got} (expected ${check.expected})` };
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
  }
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

export async function evaluateRuntime(assertions: readonly RuntimeAssertion[], exec: Exec): Promise<RuntimeResult[]> {
  const out: RuntimeResult[] = [];
  for (const a of assertions) {
    let r: { ok: boolean; detail: string };
    // A namespace-scoped assertion runs every observation inside that namespace.
    const ex: Exec = a.netns === undefined ? exec : (cmd, args) => exec('ip', ['netns', 'exec', a.netns!, cmd, ...args]);
    try {
      r = await observe(a.check, ex);
    } catch (e) {
      r = { ok: false, detail: `could not tell: ${(e as Error).message}` };
    }
    out.push({ id: a.id, statement: a.statement, ...r });
  }
  return out;
}

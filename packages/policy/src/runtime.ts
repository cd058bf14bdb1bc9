// Evaluating runtime assertions on a live system. All observation goes through
// one injected `exec` (sysctl, stat, getent, nft, ss, systemctl…) so the same
// evaluator runs in a module's tests, in a lab namespace (exec prefixed with
// `ip netns exec NAME`) and inside the booted image.
import { createHash } from 'node:crypto';
import type { RuntimeAssertion, RuntimeCheck } from './contract.js';

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
      const sum = createHash('sha256').update(r.stdout.slice(nl + 1)).digest('hex');
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
      return { ok: sum === check.sha256OfRules, detail: `table ${check.family} ${check.table} loaded${sum === check.sha256OfRules ? ', equal to the emitted ruleset' : ', differs from the emitted ruleset'}` };
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
  }
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
    try {
      r = await observe(a.check, exec);
    } catch (e) {
      r = { ok: false, detail: `could not tell: ${(e as Error).message}` };
    }
    out.push({ id: a.id, statement: a.statement, ...r });
  }
  return out;
}

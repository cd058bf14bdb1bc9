// leakless-selftest, the part that is not I/O: evaluate the runtime
// assertions the image carries (every module's, plus the image's own) with
// the shared evaluator, wait a bounded time for services that are still
// starting, and report as a table and as JSON. Bundled into the image by
// selftest-bundle.ts and run by Debian's nodejs (docs/design.md#runtime-programs).
import { type EvaluateOptions, evaluateRuntime, type Exec, type RuntimeResult } from './evaluate.js';
import type { SelftestAssertion, SelftestDocument } from './document.js';

export interface SelftestResult extends RuntimeResult {
  readonly module: string;
}

export interface SelftestReport {
  readonly policy: string;
  readonly release: string;
  readonly ok: boolean;
  readonly passed: number;
  readonly failed: number;
  /** How many evaluation rounds it took (> 1 when services were still starting). */
  readonly rounds: number;
  readonly results: readonly SelftestResult[];
  /** Guest uptime (s) when the self-test started and ended: boot-to-test time, settle time. */
  readonly uptime?: { readonly start: number; readonly end: number };
  /** Whether the firmware booted this system with UEFI Secure Boot enforced (not an assertion: one image boots both ways). */
  readonly secureBoot?: SecureBootState;
}

export type SecureBootState = 'enabled' | 'disabled' | 'not-uefi';

/** The SecureBoot variable (EFI_GLOBAL_VARIABLE) as efivarfs shows it: 4 attribute bytes, then 1 = enforced. */
export const SECURE_BOOT_EFIVAR = '/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c';

/** From the variable's bytes (undefined: no such variable) and whether the system booted through UEFI at all. */
export function secureBootState(efivar: Uint8Array | undefined, uefi: boolean): SecureBootState {
  if (!uefi) return 'not-uefi';
  return efivar !== undefined && efivar.length >= 5 && efivar[4] === 1 ? 'enabled' : 'disabled';
}

/** The marker that frames the machine-readable result on a serial line or port. */
export const RESULT_MARKER = 'LEAKLESS-SELFTEST-RESULT';

export function parseSelftestDocument(text: string): SelftestDocument {
  const doc = JSON.parse(text) as Partial<SelftestDocument>;
  if (doc.version !== 1 || !Array.isArray(doc.assertions) || typeof doc.policy !== 'string') {
    throw new Error('not a leakless runtime-assertions document (version 1)');
  }
  for (const a of doc.assertions) {
    if (typeof a?.id !== 'string' || typeof a.statement !== 'string' || typeof a.check?.kind !== 'string' || typeof a.module !== 'string') {
      throw new Error(`malformed assertion: ${JSON.stringify(a).slice(0, 120)}`);
    }
  }
  if (doc.assertions.length === 0) throw new Error('the document has no assertions: nothing would be verified');
  return doc as SelftestDocument;
}

/**
 * Checks whose answer is final once the self-test starts (after basic.target:
 * systemd-sysctl, module blacklists, files and users are in place by then).
 * Only the others (services, listeners, rulesets, namespaces, and anything
 * inside a namespace) are worth re-checking while the system settles, so a
 * genuinely wrong sysctl fails at once instead of after the whole settle time.
 */
export function isSettled(a: SelftestAssertion): boolean {
  return a.netns === undefined && ['sysctl', 'file', 'user', 'module-blocked'].includes(a.check.kind);
}

export interface SelftestOptions {
  /** Re-evaluate failing assertions for up to this long (units still starting at boot). */
  readonly settleMs?: number;
  readonly intervalMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
  /** Only these modules (all when empty). */
  readonly modules?: readonly string[];
  /** Only assertions of these scopes (all when empty): a boot without a network leaves out 'network'. */
  readonly scopes?: readonly string[];
  /** Where the active probes go (see EvaluateOptions); without them those probes fail. */
  readonly destinations?: EvaluateOptions['destinations'];
}

export async function runSelftest(doc: SelftestDocument, exec: Exec, opts: SelftestOptions = {}): Promise<SelftestReport> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const wanted = opts.modules?.length ? new Set(opts.modules) : undefined;
  const scopes = opts.scopes?.length ? new Set(opts.scopes) : undefined;
  const assertions: SelftestAssertion[] = doc.assertions.filter((a) => (!wanted || wanted.has(a.module)) && (!scopes || scopes.has(a.scope)));
  if (assertions.length === 0)
    throw new Error(`no assertions for module(s) ${[...(wanted ?? [])].join(', ') || 'any'} in scope(s) ${[...(scopes ?? [])].join(', ') || 'any'}`);
  const deadline = now() + (opts.settleMs ?? 0);
  const byId = new Map<string, SelftestResult>();
  let pending = assertions;
  let rounds = 0;
  for (;;) {
    rounds++;
    const results = await evaluateRuntime(pending, exec, opts.destinations ? { destinations: opts.destinations } : {});
    for (const [i, r] of results.entries()) byId.set(r.id, { module: pending[i]!.module, ...r });
    pending = pending.filter((a) => !byId.get(a.id)!.ok && !isSettled(a));
    if (pending.length === 0 || now() >= deadline) break;
    await sleep(opts.intervalMs ?? 1000);
  }
  const results = assertions.map((a) => byId.get(a.id)!);
  const failed = results.filter((r) => !r.ok).length;
  return { policy: doc.policy, release: doc.release, ok: failed === 0, passed: results.length - failed, failed, rounds, results };
}

/** A report counts only if every assertion the image carries was evaluated and held. */
export function judgeReport(report: SelftestReport, expected: number | undefined): { ok: boolean; reason?: string } {
  const failed = report.results.filter((r) => !r.ok);
  if (report.results.length === 0) return { ok: false, reason: 'the self-test evaluated nothing' };
  if (expected !== undefined && report.results.length !== expected) {
    return { ok: false, reason: `the self-test evaluated ${report.results.length} assertions, the image carries ${expected}` };
  }
  if (failed.length) return { ok: false, reason: `${failed.length} assertion(s) failed: ${failed.map((f) => f.id).join(', ')}` };
  return { ok: true };
}

export function formatReport(r: SelftestReport): string {
  const rows = r.results.map((x) => [x.ok ? 'ok' : 'FAIL', x.module, x.id, x.detail]);
  const widths = [4, ...[1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length), i === 1 ? 6 : 2))];
  const line = (c: string[]) => c.map((v, i) => (i < 3 ? v.padEnd(widths[i]!) : v)).join('  ');
  return [
    `leakless-selftest: policy ${r.policy} ${r.release}`,
    line(['', 'module', 'id', 'observed']),
    ...rows.map(line),
    '',
    `${r.passed} passed, ${r.failed} failed${r.rounds > 1 ? ` (${r.rounds} rounds while the system settled)` : ''}`,
  ].join('\n');
}

/** One line for a serial console or a virtio port: marker, then the JSON report. */
export function resultLine(r: SelftestReport): string {
  return `${RESULT_MARKER} ${JSON.stringify(r)}\n`;
}

/** Find the report in what the guest wrote (serial log or port); undefined while incomplete. */
export function parseResultLine(text: string): SelftestReport | undefined {
  for (const line of text.split('\n')) {
    const i = line.indexOf(RESULT_MARKER + ' ');
    if (i < 0) continue;
    try {
      const r = JSON.parse(line.slice(i + RESULT_MARKER.length + 1).trim()) as SelftestReport;
      if (typeof r.ok === 'boolean' && Array.isArray(r.results)) return r;
    } catch {
      // an incomplete line: keep waiting
    }
  }
  return undefined;
}

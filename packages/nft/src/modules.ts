// Which kernel modules a table needs, read from the model rather than from
// nft text. nft does not load modules itself: the kernel asks userspace for
// each one (request_module, one modprobe exec per module) while the ruleset is
// committed. A unit that loads them first with one `modprobe -a` saves those
// execs; a module this list misses is still autoloaded, so a gap here costs
// time, never a rule (docs/design.md#boot-speed).
import type { Rule, Table } from './ast.js';

export const MODPROBE = '/usr/sbin/modprobe';

/** The conntrack expressions (`ct state`, `ct status`, `ct direction`, `ct mark`, the owner pair) and `ct mark set`. */
const usesConntrack = (r: Rule) =>
  r.setCtMark !== undefined ||
  r.match.ctState !== undefined ||
  r.match.ctStatus !== undefined ||
  r.match.ctDirection !== undefined ||
  r.match.ctMark !== undefined ||
  r.match.owner !== undefined;

/**
 * The modules, sorted, without those they pull in themselves (nf_conntrack,
 * nf_nat, nf_reject_ipv4/6 come with the ones named). Matches on addresses,
 * ports, interfaces, `meta skuid`, sets, maps and counters are in nf_tables
 * itself.
 */
export function kernelModules(tables: readonly Table[]): string[] {
  const mods = new Set<string>();
  for (const t of tables) {
    mods.add('nf_tables');
    for (const c of t.chains) {
      if (c.base.type === 'nat') mods.add('nft_chain_nat');
      for (const r of c.rules) {
        if (usesConntrack(r)) mods.add('nft_ct');
        if (r.log) mods.add('nft_log').add('nf_log_syslog');
        if (r.verdict.kind === 'reject') mods.add('nft_reject_inet');
        if (r.verdict.kind === 'dnat') mods.add('nft_nat');
        if (r.verdict.kind === 'masquerade') mods.add('nft_masq');
      }
    }
  }
  return [...mods].sort();
}

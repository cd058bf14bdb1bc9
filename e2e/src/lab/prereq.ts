// What a lab suite needs from the machine, as @leakless/testing prerequisites:
// root (network and mount namespaces, nft, setpriv) and the tools. Each suite
// names its extra tools and hands the list to skipUnless, which skips loudly
// on a developer machine and FAILS under CI=true: a leak test that silently
// did not run is worse than no test.
//
//   const skip = skipUnless('the firewall lab', ...labNeeds('tcpdump'));
import { type Missing, needRoot, needTool } from '@leakless/testing';
import { PYTHON } from './stage.js';

/** How to ask each tool whether it runs (a flag that exits 0). */
const PROBE_ARGS: Readonly<Record<string, readonly string[]>> = {
  ip: ['-V'],
  openssl: ['version'],
};

/** tor-gencert has no flag that exits 0; it ships in Debian's tor package, so tor stands for it. */
const STANDS_FOR: Readonly<Record<string, string>> = { 'tor-gencert': 'tor' };

/** Every lab builds namespaces and veths, sets sysctls, runs principals with setpriv and helpers with node and python. */
const BASE = ['ip', 'sysctl', 'setpriv', 'nsenter', 'unshare', 'node', PYTHON] as const;

/** Root, the base tools and `extra`, each as a Missing (undefined when present). */
export function labNeeds(...extra: readonly string[]): Missing[] {
  const tools = new Set([...BASE, ...extra].map((t) => STANDS_FOR[t] ?? t));
  return [needRoot(), ...[...tools].map((t) => needTool(t, PROBE_ARGS[t] ?? ['--version']))];
}

// @leakless/nft: the one nftables writer. A typed model of an inet table
// (every rule with a counter and the policy clause it implements, connection
// marks that name each flow's owner), the
// renderer that is the only place nft syntax is written, immutable edits
// (for the lab's planted leaks and the tests' planted defects) and a packet
// evaluator. The firewall module's host table and the netns module's
// per-namespace tables are both built and rendered with it.
export { chainOf, withChain, withChainPolicy, mapRules, insertBefore, ruleCount, LOG_PREFIX } from './ast.js';
export type {
  Table,
  Chain,
  Rule,
  Match,
  Verdict,
  AddrMatch,
  PortMatch,
  IfMatch,
  CtState,
  CtStatus,
  CtDirection,
  CtMarkSet,
  MarkMatch,
  Owner,
  OwnerMatch,
  UidSetMatch,
  Family,
  L4Protocol,
  HookName,
  BaseChainSpec,
} from './ast.js';
export { renderNft, renderRule, renderTable, markText, NFT } from './render.js';
export type { RenderOptions } from './render.js';
export { kernelModules, MODPROBE } from './modules.js';
export { evaluateChain, evaluateHook, evaluateOutput, accepted, matches } from './evaluate.js';
export type { Packet, Decision } from './evaluate.js';

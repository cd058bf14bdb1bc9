// The module contract (docs/design.md#module-contract). A module is a pure, deterministic function of
// the policy: same policy, same Emission. Writing files, running tools and
// probing a live system happen elsewhere (tools/, e2e/, the image self-test).
import type { Policy } from './policy.js';

export interface GeneratedFile {
  /** Absolute path in the image, e.g. /usr/lib/sysctl.d/zz-leakless-pmtud.conf (a Debian package location: names.ts layoutProblem) */
  readonly path: string;
  readonly content: string;
  /** Explicit permission bits, e.g. 0o644. */
  readonly mode: number;
  readonly uid?: number;
  readonly gid?: number;
  /** The policy clause the file comes from (a path into the policy or a docs/ anchor). */
  readonly clause: string;
}

/** A system user the image must create with this exact uid/gid before packages install. */
export interface SystemUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/** Read access to a tree of files: the in-memory emission, an emitted directory, or a built rootfs. */
export interface TreeReader {
  read(path: string): string | undefined;
  mode(path: string): number | undefined;
  paths(): readonly string[];
}

/** Runs a host tool for a static check; injected so assertions stay testable. */
export type ToolRunner = (cmd: string, args: readonly string[], opts?: { input?: string }) => Promise<{ exitCode: number; stdout: string; stderr: string }>;

export interface StaticContext {
  readonly tree: TreeReader;
  readonly policy: Policy;
  readonly run: ToolRunner;
}

export interface CheckResult {
  readonly ok: boolean;
  /** One line: what was found (on failure, what is wrong). */
  readonly detail: string;
}

/** A check that collected its problems: ok when there are none, else the count and the first three in one line. */
export function checkResult(problems: readonly string[], okDetail: string): CheckResult {
  return { ok: problems.length === 0, detail: problems.length ? `${problems.length} problem(s): ${problems.slice(0, 3).join('; ')}` : okDetail };
}

/** Evaluated on the emitted tree (and the built rootfs) at build time. */
export interface StaticAssertion {
  readonly id: string;
  readonly statement: string;
  /** Host tools the check needs (e.g. nft); a missing tool is a failure, not a pass. */
  readonly tools?: readonly string[];
  check(ctx: StaticContext): CheckResult | Promise<CheckResult>;
}

/**
 * Evaluated on a running system: in a module's tests, in the lab and in the
 * booted image (leakless-selftest). Plain data, so the image can carry it as
 * JSON and a small evaluator (runtime.ts) can check it without the modules.
 */
export type RuntimeCheck =
  | { readonly kind: 'sysctl'; readonly key: string; readonly expected: string }
  | { readonly kind: 'file'; readonly path: string; readonly sha256: string; readonly mode: number }
  | { readonly kind: 'user'; readonly name: string; readonly uid: number; readonly gid: number }
  | { readonly kind: 'module-blocked'; readonly module: string }
  | { readonly kind: 'nft-table'; readonly family: string; readonly table: string; readonly sha256OfRules: string }
  | { readonly kind: 'listening'; readonly protocol: 'tcp' | 'udp'; readonly address: string; readonly port: number }
  | { readonly kind: 'unit-active'; readonly unit: string }
  /** Every address on every interface (`ip -j addr`), as "IFNAME ADDRESS/PREFIX", equals this set: nothing routable appears unnoticed. */
  | { readonly kind: 'ip-addresses'; readonly expected: readonly string[] }
  /** Every unicast route of every table, v4 and v6 (`ip -j route show table all`), as "TABLE DST [via GW] dev DEV", equals this set. */
  | { readonly kind: 'ip-routes'; readonly expected: readonly string[] }
  /**
   * As uid:gid, `getent ahostsv4 NAME` through the system resolver: it answers, and every address lies in
   * `range`. With a .onion name and the automap range this proves the lookup was answered by tor's DNSPort
   * (via resolv.conf and the udp/53 redirect): no other resolver hands out automap addresses.
   */
  | { readonly kind: 'resolves-within'; readonly uid: number; readonly gid: number; readonly name: string; readonly range: string }
  /**
   * Every nftables table, chain and flowtable there is (`nft -j list ruleset`), one line each
   * (`table inet leakless`, `chain inet leakless output: filter hook output priority 0 policy drop`,
   * `chain netdev t c: filter hook ingress device eth0 priority 0 policy accept`), equals this set:
   * another table with a hook, or a netdev ingress chain, cannot hide beside ours.
   */
  | { readonly kind: 'nft-inventory'; readonly expected: readonly string[] }
  /**
   * `net.<family>.conf.<iface>.<key>` of every interface there is (all and default too) is `expected`,
   * or `except[iface]`: an interface that came up before the sysctls, or that something reconfigured, is seen.
   */
  | {
      readonly kind: 'sysctl-interfaces';
      readonly family: 'ipv4' | 'ipv6';
      readonly key: string;
      readonly expected: string;
      readonly except?: Readonly<Record<string, string>>;
    }
  /**
   * Every listening TCP and bound UDP socket (`ss -lntup`): each `held` one exists and belongs to a process of
   * that name (a squatter on tor's port is seen); any other is on loopback off the held ports, or is `allowed`.
   */
  | { readonly kind: 'listeners'; readonly held: readonly ListenerSpec[]; readonly allowed: readonly AllowedListener[] }
  /**
   * An active negative probe with its positive control in the same run, so silence cannot pass: `control`
   * (a uid the policy lets through) must reach the destination, then `attacker` must be refused by this host
   * before anything leaves (a refused connect or send, never a timeout). With `ride`, the attacker sends
   * from the control's source port once the control has its answer (a flow-reuse attempt). `to` names a
   * destination given to the evaluator at run time (leakless-selftest --destination NAME=ADDRESS[:PORT]);
   * without one the check fails.
   */
  | {
      readonly kind: 'refused-probe';
      readonly to: string;
      readonly protocol: 'tcp' | 'udp';
      readonly port: number;
      readonly control: { readonly uid: number; readonly gid: number };
      readonly attacker: { readonly uid: number; readonly gid: number };
      readonly ride?: boolean;
    };

/** A socket that must be listening, and the name of the process that must hold it. */
export interface ListenerSpec {
  readonly protocol: 'tcp' | 'udp';
  readonly address: string;
  readonly port: number;
  readonly process: string;
}

/** A listener outside loopback that may exist (any address), and why. */
export interface AllowedListener {
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
  readonly why: string;
}

export interface RuntimeAssertion {
  readonly id: string;
  readonly statement: string;
  readonly check: RuntimeCheck;
  /**
   * Where it can be evaluated: netns = in a fresh network namespace (lab, tests); system = booted image only;
   * network = on a network with the destinations it names (the lab, the networked boot), given at run time.
   */
  readonly scope: 'netns' | 'system' | 'network';
  /** Evaluate inside this named network namespace (`ip netns exec NAME …`), e.g. one the netns module creates. */
  readonly netns?: string;
}

export interface Emission {
  readonly module: string;
  readonly files: readonly GeneratedFile[];
  readonly packages: readonly string[];
  readonly users: readonly SystemUser[];
  /** systemd units to enable in the image. */
  readonly units: readonly string[];
  /**
   * systemd units that must never start, whoever enables, wants or starts
   * them (Debian's nftables.service flushes every ruleset). Data, never a
   * file: the image masks them when it is built (`systemctl mask`, a link to
   * /dev/null in /etc/systemd/system) and the packages in their maintainer
   * scripts. Disabling is not enough (any `systemctl enable` or Wants= undoes
   * it), and neither is a preset: presets are read only by `systemctl preset`
   * and preset-all, not by an enable, a start or a dependency.
   */
  readonly maskedUnits: readonly string[];
  readonly staticAssertions: readonly StaticAssertion[];
  readonly runtimeAssertions: readonly RuntimeAssertion[];
}

export interface LeaklessModule {
  readonly name: string;
  emit(policy: Policy): Emission;
}

/** Fill in the empty parts of an emission so modules only state what they have. */
export function emission(module: string, parts: Partial<Omit<Emission, 'module'>>): Emission {
  return {
    module,
    files: parts.files ?? [],
    packages: parts.packages ?? [],
    users: parts.users ?? [],
    units: parts.units ?? [],
    maskedUnits: parts.maskedUnits ?? [],
    staticAssertions: parts.staticAssertions ?? [],
    runtimeAssertions: parts.runtimeAssertions ?? [],
  };
}

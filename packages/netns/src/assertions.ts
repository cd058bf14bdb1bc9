// Static assertions: evaluated on the emitted tree (and the built rootfs).
// Each reads the files as they are on disk, not the data they were made from,
// so a hand edit or a broken template is caught.
import { addressIn, parseCidr4, type CheckResult, type Policy, type StaticAssertion, type TreeReader } from '@leakless/policy';
import { FIREWALL_UNIT, LAUNCHER, SETUP_SCRIPT, UDEV_RULES, UNIT, UNIT_PATH, type NamespacePlan } from './layout.js';

const ok = (detail: string): CheckResult => ({ ok: true, detail });
const fail = (detail: string): CheckResult => ({ ok: false, detail });

function need(tree: TreeReader, path: string): string {
  const text = tree.read(path);
  if (text === undefined) throw new Error(`${path} missing`);
  return text;
}

/** Rule lines of an nft file: inside a chain, not a comment, not the chain head. */
function nftRuleLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !/^(table|delete table|chain|type|\})/.test(l) && !l.endsWith('{'));
}

/** `ip … route add` commands of the setup script, with the namespace they act in (undefined = the host). */
function routeCommands(script: string): { ns: string | undefined; line: string }[] {
  return script
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => !l.startsWith('#') && /\broute\s+(add|replace|append|change)\b/.test(l))
    .map((line) => {
      const m = /^ip\s+-n\s+(\S+)\s/.exec(line) ?? /^ip\s+netns\s+exec\s+(\S+)\s/.exec(line);
      return { ns: m?.[1], line };
    });
}

/** SocksPort address:port pairs declared in a torrc text. */
function torrcSocksPorts(text: string): Set<string> {
  const out = new Set<string>();
  for (const l of text.split('\n')) {
    const m = /^\s*SocksPort\s+(\d+\.\d+\.\d+\.\d+):(\d+)\b/i.exec(l);
    if (m) out.add(`${m[1]}:${m[2]}`);
  }
  return out;
}

export function staticAssertions(policy: Policy, plans: readonly NamespacePlan[]): StaticAssertion[] {
  if (plans.length === 0) return [];
  const torOnly = plans.filter((p) => p.ns.kind === 'tor-only');
  return [
    {
      id: 'netns.files',
      statement: 'the unit, the setup script, the launcher, the NetworkManager udev rule and each namespace’s rules are in the tree with their modes',
      check: ({ tree }) => {
        const want: [string, number][] = [
          [UNIT_PATH, 0o644],
          [SETUP_SCRIPT, 0o755],
          [LAUNCHER, 0o755],
          [UDEV_RULES, 0o644],
          ...plans.map((p): [string, number] => [p.nftPath, 0o644]),
          ...plans.flatMap((p): [string, number][] => (p.resolvConf.kind === 'file' ? [[p.resolvConf.path, 0o644]] : [])),
        ];
        const bad = want.filter(([p, m]) => tree.mode(p) !== m);
        return bad.length ? fail(`${bad[0]![0]}: mode ${tree.mode(bad[0]![0])?.toString(8) ?? 'missing'} (expected ${bad[0]![1].toString(8)})`) : ok(`${want.length} files`);
      },
    },
    {
      id: 'netns.shell-syntax',
      statement: 'the setup script and the launcher parse as POSIX sh (sh -n)',
      tools: ['sh'],
      check: async ({ tree, run }) => {
        for (const p of [SETUP_SCRIPT, LAUNCHER]) {
          const r = await run('sh', ['-n'], { input: need(tree, p) });
          if (r.exitCode !== 0) return fail(`${p}: ${r.stderr.trim() || `sh exited ${r.exitCode}`}`);
        }
        return ok('both parse');
      },
    },
    {
      id: 'netns.nft-check',
      statement: 'each namespace’s nftables file is accepted by nft -c (in a throwaway user+network namespace: unshare -rn)',
      tools: ['unshare', 'nft'],
      check: async ({ tree, run }) => {
        for (const p of plans) {
          const r = await run('unshare', ['-rn', 'nft', '-c', '-f', '/dev/stdin'], { input: need(tree, p.nftPath) });
          if (r.exitCode !== 0) return fail(`${p.nftPath}: ${r.stderr.trim().split('\n')[0] ?? `nft exited ${r.exitCode}`}`);
        }
        return ok(`${plans.length} rulesets check`);
      },
    },
    {
      id: 'netns.nft-comments',
      statement: 'every rule inside a namespace carries a comment naming its policy clause',
      check: ({ tree }) => {
        for (const p of plans) {
          const bare = nftRuleLines(need(tree, p.nftPath)).find((l) => !/ comment "[^"]+"$/.test(l));
          if (bare) return fail(`${p.nftPath}: no clause comment on "${bare}"`);
        }
        return ok('all rules commented');
      },
    },
    {
      id: 'netns.tor-only-no-route',
      statement: 'the setup script adds a route only inside clearnet namespaces, and only the default route via the host side of their veth',
      check: ({ tree }) => {
        const cmds = routeCommands(need(tree, SETUP_SCRIPT));
        for (const c of cmds) {
          const p = plans.find((x) => x.ns.name === c.ns);
          if (!p) return fail(`route command outside any namespace: ${c.line}`);
          if (p.ns.kind !== 'clearnet') return fail(`route in tor-only namespace ${p.ns.name}: ${c.line}`);
          if (c.line !== `ip -n ${p.ns.name} route add default via ${p.ns.hostAddress} dev ${p.ns.guestVeth}`) return fail(`unexpected route in ${p.ns.name}: ${c.line}`);
        }
        const clearnet = plans.filter((p) => p.ns.kind === 'clearnet').length;
        return cmds.length === clearnet ? ok(`${cmds.length} default route(s), all in clearnet namespaces`) : fail(`${cmds.length} route commands for ${clearnet} clearnet namespace(s)`);
      },
    },
    {
      id: 'netns.dnat-targets-tor',
      statement: 'every DNAT in a namespace points at a SocksPort tor listens on for that namespace (policy, and the torrc when the tree has one)',
      check: ({ tree }) => {
        const torrcs = tree.paths().filter((p) => p.startsWith('/etc/tor/'));
        const listened = new Set<string>();
        for (const p of torrcs) for (const s of torrcSocksPorts(tree.read(p) ?? '')) listened.add(s);
        let count = 0;
        for (const p of plans) {
          for (const l of nftRuleLines(need(tree, p.nftPath))) {
            const m = / dnat ip to (\d+\.\d+\.\d+\.\d+):(\d+)/.exec(l);
            if (!m) continue;
            count++;
            const target = `${m[1]}:${m[2]}`;
            const sp = policy.socksPorts.find((s) => `${s.address}:${s.port}` === target);
            if (!sp || sp.netns !== p.ns.name) return fail(`${p.nftPath}: DNAT to ${target} is not a SocksPort of namespace ${p.ns.name}`);
            if (torrcs.length && !listened.has(target)) return fail(`${p.nftPath}: DNAT to ${target} but no torrc in the tree declares SocksPort ${target}`);
          }
          if (p.ns.kind === 'tor-only' && !nftRuleLines(need(tree, p.nftPath)).some((l) => l.includes(' dnat ip to ')))
            return fail(`${p.nftPath}: tor-only namespace without its DNAT`);
        }
        return ok(`${count} DNAT(s) to tor SocksPorts${torrcs.length ? ' (checked against the torrc)' : ''}`);
      },
    },
    {
      id: 'netns.tor-only-resolver',
      statement: 'a tor-only namespace’s resolv.conf names no resolver outside the namespace’s own loopback',
      check: ({ tree }) => {
        for (const p of torOnly) {
          const servers = need(tree, p.resolvConf.path)
            .split('\n')
            .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
            .filter((s): s is string => s !== undefined);
          const outside = servers.find((s) => !/^\d+\.\d+\.\d+\.\d+$/.test(s) || !addressIn(s, parseCidr4('127.0.0.0/8')));
          if (outside) return fail(`${p.resolvConf.path}: nameserver ${outside} is outside the namespace`);
        }
        return ok(`${torOnly.length} tor-only resolv.conf`);
      },
    },
    {
      id: 'netns.clearnet-resolver',
      statement: `each clearnet namespace’s resolv.conf is linked to the saved clearnet DNS (${policy.clearnetResolver.file})`,
      check: ({ tree }) => {
        const script = need(tree, SETUP_SCRIPT);
        for (const p of plans)
          if (p.resolvConf.kind === 'link' && !script.split('\n').some((l) => l.trim() === `ln -sfn ${policy.clearnetResolver.file} ${p.resolvConf.path}`))
            return fail(`${SETUP_SCRIPT} does not link ${p.resolvConf.path} to ${policy.clearnetResolver.file}`);
        return ok('linked');
      },
    },
    {
      id: 'netns.unit-order',
      statement: `${UNIT} is a oneshot that stays active, requires and follows the firewall unit the tree ships, and runs before NetworkManager`,
      check: ({ tree }) => {
        const lines = new Set(need(tree, UNIT_PATH).split('\n').map((l) => l.trim()));
        const words = (key: string) => [...lines].filter((l) => l.startsWith(`${key}=`)).flatMap((l) => l.slice(key.length + 1).split(/\s+/));
        const missing = [
          lines.has('Type=oneshot') ? '' : 'Type=oneshot',
          lines.has('RemainAfterExit=yes') ? '' : 'RemainAfterExit=yes',
          words('Requires').includes(FIREWALL_UNIT) ? '' : `Requires=${FIREWALL_UNIT}`,
          words('After').includes(FIREWALL_UNIT) ? '' : `After=${FIREWALL_UNIT}`,
          words('Before').includes('NetworkManager.service') ? '' : 'Before=NetworkManager.service',
          words('Before').includes('network-pre.target') ? '' : 'Before=network-pre.target',
          lines.has(`ExecStart=${SETUP_SCRIPT} start`) ? '' : `ExecStart=${SETUP_SCRIPT} start`,
        ].filter(Boolean);
        if (missing.length) return fail(`${UNIT_PATH} lacks ${missing.join(', ')}`);
        const fw = tree.paths().find((p) => p.endsWith(`/systemd/system/${FIREWALL_UNIT}`));
        return fw ? ok(`after ${fw}`) : fail(`the tree ships no ${FIREWALL_UNIT} (the host-side rules for the namespaces would be missing)`);
      },
    },
    {
      id: 'netns.launcher',
      statement: 'the launcher knows exactly the policy’s namespaces and runs commands as the desktop user, never root',
      check: ({ tree }) => {
        // Comments say what the code does; only the code counts here.
        const text = need(tree, LAUNCHER)
          .split('\n')
          .filter((l) => !/^\s*#/.test(l))
          .join('\n');
        const known = [...text.matchAll(/^([a-z][a-z0-9]*)\) ;; # /gm)].map((m) => m[1]).sort();
        const want = plans.map((p) => p.ns.name).sort();
        if (known.join(' ') !== want.join(' ')) return fail(`launcher accepts [${known.join(' ')}], policy has [${want.join(' ')}]`);
        const u = policy.desktopUser;
        if (u.uid === 0 || u.gid === 0) return fail(`desktop user ${u.name} is ${u.uid}:${u.gid}`);
        if (!text.includes(`getent passwd ${u.name})`) || !text.includes(`[ "$uid" = ${u.uid} ] && [ "$gid" = ${u.gid} ]`)) return fail(`launcher does not pin ${u.name} to ${u.uid}:${u.gid}`);
        if (!/setpriv --reuid="\$uid" --regid="\$gid" --init-groups --no-new-privs --reset-env/.test(text)) return fail('launcher does not drop to the user with no new privileges');
        if (!/^exec ip netns exec "\$name" unshare --uts -- \\$/m.test(text)) return fail('launcher gives the command no UTS namespace');
        return ok(`${known.length} namespaces, user ${u.name} ${u.uid}:${u.gid}`);
      },
    },
  ];
}

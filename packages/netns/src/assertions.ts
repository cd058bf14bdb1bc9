// Static assertions: evaluated on the emitted tree (and the built rootfs).
// Each reads the files as they are on disk, not the data they were made from,
// so a hand edit or a broken template is caught. They read this module's own
// files and the policy; whether the firewall ships the unit ours requires and
// tor listens where our DNAT points is checked above the modules
// (@leakless/crosscheck).
import {
  UNITS,
  addressIn,
  parseCidr4,
  parseUnit,
  unitValues,
  unitWords,
  type CheckResult,
  type Policy,
  type StaticAssertion,
  type TreeReader,
} from '@leakless/policy';
import { AFTER_IP_FORWARD, FIREWALL_UNIT, LAUNCHER, SETUP_SCRIPT, UDEV_RULES, UNIT, UNIT_PATH, nftFile, type NamespacePlan } from './layout.js';

const ok = (detail: string): CheckResult => ({ ok: true, detail });
const fail = (detail: string): CheckResult => ({ ok: false, detail });

function need(tree: TreeReader, path: string): string {
  const text = tree.read(path);
  if (text === undefined) throw new Error(`${path} missing`);
  return text;
}

/** The lines of a script without comments and indentation: only the code counts, comments may say anything. */
function code(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
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
        return bad.length
          ? fail(`${bad[0]![0]}: mode ${tree.mode(bad[0]![0])?.toString(8) ?? 'missing'} (expected ${bad[0]![1].toString(8)})`)
          : ok(`${want.length} files`);
      },
    },
    {
      id: 'netns.shell-syntax',
      statement: 'the setup script parses as POSIX sh (sh -n), the launcher as bash (bash -n)',
      tools: ['sh', 'bash'],
      check: async ({ tree, run }) => {
        for (const [p, shell] of [
          [SETUP_SCRIPT, 'sh'],
          [LAUNCHER, 'bash'],
        ] as const) {
          const r = await run(shell, ['-n'], { input: need(tree, p) });
          if (r.exitCode !== 0) return fail(`${p}: ${r.stderr.trim() || `${shell} exited ${r.exitCode}`}`);
        }
        return ok('both parse');
      },
    },
    {
      id: 'netns.forwarding-keeps-redirects-off',
      statement:
        'every write of net.ipv4.ip_forward in the setup script (start, stop, a failed start) is followed by net.ipv4.conf.all.accept_redirects=0, which the kernel resets',
      check: ({ tree }) => {
        const lines = code(need(tree, SETUP_SCRIPT));
        const writes = lines.flatMap((l, i) => (/\bnet\.ipv4\.ip_forward=/.test(l) && !/^ip /.test(l) ? [i] : []));
        const bare = writes.find((i) => !AFTER_IP_FORWARD.every((s) => lines[i + 1] === `sysctl -q -w ${s.key}=${s.value}`));
        if (bare !== undefined)
          return fail(`${SETUP_SCRIPT}: "${lines[bare]}" is not followed by ${AFTER_IP_FORWARD.map((s) => `${s.key}=${s.value}`).join(', ')}`);
        return ok(`${writes.length} write(s) of ip_forward, each followed by ${AFTER_IP_FORWARD.map((s) => s.key).join(', ')}`);
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
      id: 'netns.file-is-ast',
      statement: 'each namespace’s nftables file is exactly the rendering of its planned table (what the checks and the lab read is what is loaded)',
      check: ({ tree }) => {
        const edited = plans.find((p) => need(tree, p.nftPath) !== nftFile(p));
        return edited ? fail(`${edited.nftPath} differs from the rendering of its table`) : ok(`${plans.length} files rendered from their tables`);
      },
    },
    {
      id: 'netns.nft-comments',
      statement: 'every rule inside a namespace has a counter and a comment naming its policy clause, like the host table',
      check: ({ tree }) => {
        for (const p of plans) {
          const lines = nftRuleLines(need(tree, p.nftPath));
          const bare = lines.find((l) => !/ comment "[^"]+"$/.test(l));
          if (bare) return fail(`${p.nftPath}: no clause comment on "${bare}"`);
          const uncounted = lines.find((l) => !/(^| )counter( |$)/.test(l));
          if (uncounted) return fail(`${p.nftPath}: no counter on "${uncounted}"`);
        }
        return ok('all rules counted and commented');
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
          if (c.line !== `ip -n ${p.ns.name} route add default via ${p.ns.hostAddress} dev ${p.ns.guestVeth}`)
            return fail(`unexpected route in ${p.ns.name}: ${c.line}`);
        }
        const clearnet = plans.filter((p) => p.ns.kind === 'clearnet').length;
        return cmds.length === clearnet
          ? ok(`${cmds.length} default route(s), all in clearnet namespaces`)
          : fail(`${cmds.length} route commands for ${clearnet} clearnet namespace(s)`);
      },
    },
    {
      id: 'netns.dnat-targets-tor',
      statement: 'every DNAT in a namespace points at a SocksPort the policy gives that namespace (that tor listens there: crosscheck.netns-socksports)',
      check: ({ tree }) => {
        let count = 0;
        for (const p of plans) {
          for (const l of nftRuleLines(need(tree, p.nftPath))) {
            const m = / dnat ip to (\d+\.\d+\.\d+\.\d+):(\d+)/.exec(l);
            if (!m) continue;
            count++;
            const target = `${m[1]}:${m[2]}`;
            const sp = policy.socksPorts.find((s) => `${s.address}:${s.port}` === target);
            if (!sp || sp.netns !== p.ns.name) return fail(`${p.nftPath}: DNAT to ${target} is not a SocksPort of namespace ${p.ns.name}`);
          }
          if (p.ns.kind === 'tor-only' && !nftRuleLines(need(tree, p.nftPath)).some((l) => l.includes(' dnat ip to ')))
            return fail(`${p.nftPath}: tor-only namespace without its DNAT`);
        }
        return ok(`${count} DNAT(s) to the namespaces' SocksPorts`);
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
      statement: `${UNIT} is a oneshot that stays active, requires and follows the firewall unit, and runs before NetworkManager (that the firewall unit is shipped: crosscheck.units-required)`,
      check: ({ tree }) => {
        const u = parseUnit(need(tree, UNIT_PATH));
        const has = (section: string, key: string, value: string) =>
          (key.startsWith('Exec') ? unitValues(u, section, key) : unitWords(u, section, key)).includes(value);
        const want: [string, string, string][] = [
          ['Service', 'Type', 'oneshot'],
          ['Service', 'RemainAfterExit', 'yes'],
          ['Unit', 'Requires', FIREWALL_UNIT],
          ['Unit', 'After', FIREWALL_UNIT],
          ['Unit', 'Before', UNITS.networkManager],
          ['Unit', 'Before', UNITS.networkPre],
          ['Service', 'ExecStart', `${SETUP_SCRIPT} start`],
        ];
        const missing = want.filter(([section, key, value]) => !has(section, key, value)).map(([, key, value]) => `${key}=${value}`);
        return missing.length ? fail(`${UNIT_PATH} lacks ${missing.join(', ')}`) : ok(`requires and follows ${FIREWALL_UNIT}, before ${UNITS.networkManager}`);
      },
    },
    {
      id: 'netns.launcher',
      statement:
        'the launcher knows exactly the policy’s namespaces and runs each one’s commands as its own user (the policy’s ids, never root, never the desktop user), with no new privileges',
      check: ({ tree }) => {
        const text = code(need(tree, LAUNCHER)).join('\n');
        const entries = [...text.matchAll(/^([a-z][a-z0-9]*)\) user=(\S+) uid=(\d+) gid=(\d+) home=(\S+) sockets='([^']*)' ;;/gm)].map((m) => ({
          name: m[1]!,
          user: m[2]!,
          uid: Number(m[3]),
          gid: Number(m[4]),
          home: m[5]!,
          sockets: m[6]!.split(' ').filter(Boolean),
        }));
        const known = entries.map((e) => e.name).sort();
        const want = plans.map((p) => p.ns.name).sort();
        if (known.join(' ') !== want.join(' ')) return fail(`launcher accepts [${known.join(' ')}], policy has [${want.join(' ')}]`);
        for (const p of plans) {
          const e = entries.find((x) => x.name === p.ns.name)!;
          const u = p.ns.user;
          const got = `${e.user} ${e.uid}:${e.gid} ${e.home} [${e.sockets.join(' ')}]`;
          const exp = `${u.name} ${u.uid}:${u.gid} ${p.ns.home} [${p.ns.sockets.join(' ')}]`;
          if (got !== exp) return fail(`launcher runs ${p.ns.name} as ${got}, the policy says ${exp}`);
          if (e.uid === 0 || e.gid === 0) return fail(`launcher runs ${p.ns.name} as root (${e.uid}:${e.gid})`);
          if (e.uid === policy.desktopUser.uid) return fail(`launcher runs ${p.ns.name} as the desktop user`);
        }
        if (!/"\$ids" = "\$uid:\$gid"/.test(text) || !/0:\* \| \*:0\) die "refusing to run COMMAND as root/.test(text))
          return fail('launcher does not check the user’s ids in passwd against the policy');
        if (!/setpriv --reuid="\$uid" --regid="\$gid" --init-groups --no-new-privs --reset-env/.test(text))
          return fail('launcher does not drop to the user with no new privileges');
        if (!/^setsid --wait ip netns exec "\$name" unshare --uts --mount --propagation private -- \\$/m.test(text))
          return fail('launcher gives the command no new session, UTS or mount namespace');
        return ok(`${known.length} namespaces: ${plans.map((p) => `${p.ns.name} as ${p.ns.user.name}`).join(', ')}`);
      },
    },
    {
      id: 'netns.launcher-isolation',
      statement:
        'the launcher closes every inherited descriptor, gives the command /dev/null as input and no terminal, and replaces /run, /tmp, /home, /var/tmp, /dev/shm and /proc (hidepid) before dropping privileges',
      check: ({ tree }) => {
        const lines = code(need(tree, LAUNCHER));
        const text = lines.join('\n');
        const want: [string, RegExp][] = [
          ['every inherited descriptor closed', /for fd in \/proc\/\$\$\/fd\/\*; do[\s\S]*?\*\) eval "exec \$fd>&-" ;;/],
          ['input from /dev/null', /^exec <\/dev\/null$/m],
          ['a terminal only through cat -v', /^\s*exec 3> >\(exec cat -v\)$/m],
          ['a new /dev/shm', /^mount -n -t tmpfs -o mode=1777,nosuid,nodev lk-shm \/dev\/shm$/m],
          ['a new /run', /^mount -n --move \$stage\/run \/run$/m],
          ['a new /tmp', /^mount -n --move \$stage\/tmp \/tmp$/m],
          ['a new /home', /^mount -n --move \$stage\/home \/home$/m],
          ['a new /var/tmp', /^mount -n -t tmpfs -o mode=1777,nosuid,nodev lk-vartmp \/var\/tmp$/m],
          ['only its own processes', /^mount -n -t proc -o nosuid,nodev,noexec,hidepid=invisible lk-proc \/proc$/m],
        ];
        const missing = want.filter(([, re]) => !re.test(text)).map(([what]) => what);
        if (missing.length) return fail(`launcher lacks: ${missing.join(', ')}`);
        // the mounts come before the drop of privileges, or they would fail and leave the originals
        const drop = lines.findIndex((l) => l.startsWith('exec setpriv '));
        const lastMount = lines.reduce((at, l, i) => (/^mount /.test(l) ? i : at), -1);
        if (drop < 0 || lastMount > drop) return fail('launcher drops privileges before its mounts');
        return ok(`${want.length} isolation steps, all before setpriv`);
      },
    },
  ];
}

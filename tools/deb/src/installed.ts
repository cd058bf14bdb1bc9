// What a system with the packages installed must show, beyond every
// module's own static assertions: the emitted files at their paths (diverted
// ones included) with their content, mode and owner, the policy's accounts
// with their fixed ids, the units enabled and the masked units masked.
// Checked on a root filesystem (a chroot, a built image) with
// `leakless check --installed --tree ROOT`.
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Assembly, StaticAssertion } from '@leakless/policy';
import { checkResult } from '@leakless/policy';
import { maskedUnitsOf } from './plan.js';
import { usersOf } from './users.js';

function passwd(root: string, file: string): string[][] {
  try {
    return readFileSync(join(root, file), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}

export function installedAssertions(assembly: Assembly, root: string): StaticAssertion[] {
  const units = [...new Set(assembly.emissions.flatMap((e) => e.units))].sort();
  const masked = [...new Set(assembly.emissions.flatMap(maskedUnitsOf))].sort();
  return [
    {
      id: 'installed.files',
      statement: 'every emitted file is installed at its path (diverted ones included) with its content, mode and owner',
      check: () => {
        const problems: string[] = [];
        for (const f of assembly.tree.files) {
          const p = join(root, f.path);
          let st: ReturnType<typeof lstatSync>;
          try {
            st = lstatSync(p);
          } catch {
            problems.push(`${f.path} missing`);
            continue;
          }
          if (!st.isFile()) problems.push(`${f.path} is not a regular file`);
          else if ((st.mode & 0o7777) !== f.mode) problems.push(`${f.path} mode ${(st.mode & 0o7777).toString(8)}, emitted ${f.mode.toString(8)}`);
          else if (st.uid !== (f.uid ?? 0) || st.gid !== (f.gid ?? 0)) problems.push(`${f.path} owner ${st.uid}:${st.gid}`);
          else if (readFileSync(p, 'utf8') !== f.content) problems.push(`${f.path} differs from the emitted file`);
        }
        return checkResult(problems, `${assembly.tree.files.length} files as emitted`);
      },
    },
    {
      id: 'installed.users',
      statement: 'every account of the policy and the modules exists with its fixed uid and gid, and no uid is used twice',
      check: () => {
        const pw = passwd(root, 'etc/passwd');
        const groups = passwd(root, 'etc/group');
        const problems: string[] = [];
        const want = usersOf(assembly);
        for (const u of want) {
          const e = pw.find((p) => p[0] === u.name);
          if (!e) problems.push(`${u.name} missing`);
          else if (e[2] !== String(u.uid) || e[3] !== String(u.gid)) problems.push(`${u.name} is ${e[2]}:${e[3]}, the policy says ${u.uid}:${u.gid}`);
          if (!groups.some((g) => g[2] === String(u.gid))) problems.push(`no group with gid ${u.gid} (${u.name})`);
        }
        const seen = new Map<string, string>();
        for (const p of pw) {
          if (seen.has(p[2]!)) problems.push(`uid ${p[2]} used by ${seen.get(p[2]!)} and ${p[0]}`);
          seen.set(p[2]!, p[0]!);
        }
        if (pw.length === 0) problems.push('no /etc/passwd');
        return checkResult(problems, `${want.length} accounts with their fixed ids`);
      },
    },
    {
      id: 'installed.units',
      statement: `the units the modules ask for are enabled (${units.join(', ')}) and the masked ones masked (${masked.join(', ') || 'none'})`,
      tools: ['systemctl'],
      check: async ({ run }) => {
        const problems: string[] = [];
        for (const [u, want] of [...units.map((u) => [u, 'enabled'] as const), ...masked.map((u) => [u, 'masked'] as const)]) {
          const r = await run('systemctl', ['--root', root, 'is-enabled', u]);
          const got = r.stdout.trim() || r.stderr.trim() || `exit ${r.exitCode}`;
          if (got !== want) problems.push(`${u}: ${got} (want ${want})`);
        }
        return checkResult(problems, `${units.length} enabled, ${masked.length} masked`);
      },
    },
  ];
}

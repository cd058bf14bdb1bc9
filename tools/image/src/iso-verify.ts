// Static assertions on the built image (not only on the emitted tree): the
// root filesystem the live system will see, i.e. the base and module
// squashfs stacked. Every module's own static assertions run on it too.
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { execa } from 'execa';
import type { Assembly, StaticAssertion, StaticResult, Tree } from '@leakless/policy';
import {
  checkStatic,
  hostToolRunner,
  layoutProblems,
  PATHS,
  parseUnit,
  parseUnitWithDropIns,
  UNIT_SEARCH_PATH,
  unitOfPath,
  unitWords,
  type ToolRunner,
  type UnitFile,
} from '@leakless/policy';
import { diskTree } from './disk-tree.js';
import type { ImagePlan } from './iso-plan.js';
import { RUNTIME_ASSERTIONS_PATH, SELFTEST_PATH } from './iso-plan.js';

const UNIT_DIRS = UNIT_SEARCH_PATH;
const DEP_KEYS = ['Before', 'After', 'Requires', 'Wants', 'BindsTo', 'Requisite', 'PartOf', 'Conflicts'] as const;
type DepKey = (typeof DEP_KEYS)[number];
export type Deps = Record<DepKey, Set<string>>;

/** The [Unit] dependency lists of a parsed unit (after systemd's resets). */
function depsOf(u: UnitFile): Deps {
  return Object.fromEntries(DEP_KEYS.map((k) => [k, new Set(unitWords(u, 'Unit', k))])) as Deps;
}

/**
 * Resolve a path inside `root` the way the booted system would: symlinks
 * (absolute ones too) are followed within root, never into the build host.
 */
export function resolveInRoot(root: string, path: string): string | undefined {
  const parts = path.split('/').filter(Boolean);
  const done: string[] = [];
  for (let hops = 0; parts.length; ) {
    const part = parts.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const here = join(root, ...done, part);
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(here);
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) return undefined;
      const target = readlinkSync(here);
      if (target.startsWith('/')) done.length = 0;
      parts.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    done.push(part);
  }
  return join(root, ...done);
}

function readInRoot(root: string, path: string): string | undefined {
  const p = resolveInRoot(root, path);
  if (!p) return undefined;
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return undefined;
  }
}

function listInRoot(root: string, dir: string): string[] {
  const p = resolveInRoot(root, dir);
  if (!p) return [];
  try {
    return readdirSync(p);
  } catch {
    return [];
  }
}

/**
 * A unit's effective dependency lists in a root filesystem, found the way
 * systemd finds them (systemd.unit(5)): the fragment from the first unit
 * directory that has it (an instance falls back to its template), then every
 * *.conf drop-in of unit.d/ (and template.d/), the highest-priority directory
 * winning for equal names, applied in lexicographic order of the names. A
 * unit masked to /dev/null has no dependencies. (`systemctl cat` would do
 * this, but systemd 252 refuses it with --root.)
 */
export function effectiveDepsInRoot(root: string, unit: string): { deps: Deps; fragment?: string; dropins: string[] } {
  const template = unit.replace(/@[^.]*\./, '@.');
  const names = template === unit ? [unit] : [unit, template];
  let fragment: string | undefined;
  for (const n of names) {
    for (const d of UNIT_DIRS) {
      if (resolveInRoot(root, `${d}/${n}`) !== undefined) {
        fragment = `${d}/${n}`;
        break;
      }
    }
    if (fragment) break;
  }
  const dropins = new Map<string, string>();
  for (const d of UNIT_DIRS) {
    for (const n of names) {
      for (const f of listInRoot(root, `${d}/${n}.d`)) if (f.endsWith('.conf') && !dropins.has(f)) dropins.set(f, `${d}/${n}.d/${f}`);
    }
  }
  const masked = fragment !== undefined && resolveInRoot(root, fragment) === join(root, 'dev', 'null');
  if (!fragment || masked) return { deps: depsOf(parseUnit('')), dropins: [] };
  const order = [...dropins.keys()].sort();
  const parsed = parseUnitWithDropIns(
    readInRoot(root, fragment) ?? '',
    order.map((n) => readInRoot(root, dropins.get(n)!) ?? ''),
  );
  return { deps: depsOf(parsed), fragment, dropins: order.map((n) => dropins.get(n)!) };
}

/** The unit files and drop-ins the modules emitted for a unit (instances inherit the template's). */
export function emittedUnitFiles(tree: Tree, unit: string): { path: string; content: string }[] {
  const template = unit.replace(/@[^.]*\./, '@.');
  const names = template === unit ? [unit] : [unit, template];
  return tree.files.filter((f) =>
    UNIT_DIRS.some((d) => names.some((n) => f.path === `${d}/${n}` || (f.path.startsWith(`${d}/${n}.d/`) && f.path.endsWith('.conf')))),
  );
}

/** Every entry below dir in root (not following symlinks), as absolute image paths with what each is. */
export function entriesInRoot(root: string, dir: string): { path: string; kind: 'file' | 'link' | 'other' }[] {
  const start = resolveInRoot(root, dir);
  if (!start) return [];
  const out: { path: string; kind: 'file' | 'link' | 'other' }[] = [];
  const walk = (abs: string, rel: string) => {
    let names: string[];
    try {
      names = readdirSync(abs).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const st = lstatSync(join(abs, n));
      const path = `${rel}/${n}`;
      if (st.isDirectory()) walk(join(abs, n), path);
      else out.push({ path, kind: st.isFile() ? 'file' : st.isSymbolicLink() ? 'link' : 'other' });
    }
  };
  walk(start, dir);
  return out;
}

/**
 * Where the image breaks the Debian layout (docs/design.md#layout): a file
 * leakless ships outside a package location, a regular file under /usr/local,
 * a unit or drop-in file in /etc/systemd/system (only the links systemctl
 * makes belong there: enable, mask).
 */
export function rootfsLayoutProblems(tree: Tree, root: string): string[] {
  const problems = layoutProblems(tree.files.map((f) => f.path));
  for (const e of entriesInRoot(root, '/usr/local')) if (e.kind !== 'link') problems.push(`${e.path}: a file under /usr/local in the image`);
  for (const e of entriesInRoot(root, PATHS.adminUnits))
    if (e.kind !== 'link' && unitOfPath(e.path))
      problems.push(`${e.path}: a unit or drop-in file in ${PATHS.adminUnits} (only systemctl's links belong there)`);
  return problems;
}

/** What `systemctl --root ROOT is-enabled UNIT` answers (enabled, masked, disabled …), or why it answers nothing. */
async function enablement(run: ToolRunner, root: string, unit: string): Promise<string> {
  const r = await run('systemctl', ['--root', root, 'is-enabled', unit]);
  return r.stdout.trim() || r.stderr.trim() || `exit ${r.exitCode}`;
}

function parsePasswd(text: string): { name: string; uid: number; gid: number }[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(':'))
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) }));
}

/** The image's own promises, checked on the stacked root filesystem at `root`. */
export function imageAssertions(plan: ImagePlan, tree: Tree, root: string): StaticAssertion[] {
  // the file itself (not what a symlink points to), its parents resolved inside root
  const onDisk = (p: string) => join(resolveInRoot(root, dirname(p)) ?? join(root, '.missing'), basename(p));
  const readOr = (p: string) => readInRoot(root, p);
  return [
    {
      id: 'image.users',
      statement: '/etc/passwd and /etc/group hold every policy user with its fixed uid/gid, and no uid twice',
      check: () => {
        const passwd = parsePasswd(readOr('/etc/passwd') ?? '');
        // group lines are name:x:gid:members, so the third field is the gid
        const groups = parsePasswd(readOr('/etc/group') ?? '').map((g) => ({ name: g.name, gid: g.uid }));
        const problems: string[] = [];
        for (const u of plan.users) {
          const e = passwd.find((p) => p.name === u.name);
          if (!e) problems.push(`${u.name} missing from /etc/passwd`);
          else if (e.uid !== u.uid || e.gid !== u.gid) problems.push(`${u.name} is ${e.uid}:${e.gid}, policy says ${u.uid}:${u.gid}`);
          if (!groups.some((g) => g.gid === u.gid)) problems.push(`no group with gid ${u.gid} (${u.name})`);
        }
        const uids = new Map<number, string>();
        for (const p of passwd) {
          if (uids.has(p.uid)) problems.push(`uid ${p.uid} used by ${uids.get(p.uid)} and ${p.name}`);
          uids.set(p.uid, p.name);
        }
        return { ok: passwd.length > 0 && problems.length === 0, detail: problems[0] ?? `${plan.users.length} users with their fixed ids` };
      },
    },
    {
      id: 'image.files',
      statement: 'every emitted file is in the image with its content, mode and owner',
      check: () => {
        const problems: string[] = [];
        for (const f of tree.files) {
          let st: ReturnType<typeof lstatSync>;
          try {
            st = lstatSync(onDisk(f.path));
          } catch {
            problems.push(`${f.path} missing`);
            continue;
          }
          if (!st.isFile()) problems.push(`${f.path} is not a regular file`);
          else if ((st.mode & 0o7777) !== f.mode) problems.push(`${f.path} mode ${(st.mode & 0o7777).toString(8)}, emitted ${f.mode.toString(8)}`);
          else if (st.uid !== (f.uid ?? 0) || st.gid !== (f.gid ?? 0))
            problems.push(`${f.path} owner ${st.uid}:${st.gid}, emitted ${f.uid ?? 0}:${f.gid ?? 0}`);
          else if (readFileSync(onDisk(f.path), 'utf8') !== f.content) problems.push(`${f.path} content differs from the emitted file`);
        }
        return {
          ok: problems.length === 0,
          detail: problems.length ? `${problems.length} problems, first: ${problems[0]}` : `${tree.files.length} files as emitted`,
        };
      },
    },
    {
      id: 'image.units-enabled',
      statement: 'every unit a module asks for is enabled in the image',
      tools: ['systemctl'],
      check: async ({ run }) => {
        const bad: string[] = [];
        for (const u of plan.units) {
          const state = await enablement(run, root, u);
          if (state !== 'enabled') bad.push(`${u}: ${state}`);
        }
        return { ok: bad.length === 0, detail: bad.length ? `not enabled: ${bad.join('; ')}` : `${plan.units.length} units enabled` };
      },
    },
    {
      id: 'image.units-masked',
      statement: 'every unit a module needs masked (Debian’s nftables.service) is a link to /dev/null in /etc/systemd/system: nothing can start it',
      tools: ['systemctl'],
      check: async ({ run }) => {
        const bad: string[] = [];
        for (const u of plan.maskedUnits) {
          const link = join(root, PATHS.adminUnits, u);
          let target: string | undefined;
          try {
            target = readlinkSync(link);
          } catch {
            /* not a link */
          }
          const state = await enablement(run, root, u);
          if (target !== '/dev/null' || state !== 'masked')
            bad.push(`${u}: ${target === undefined ? 'no link' : `links to ${target}`}, systemctl says ${state}`);
        }
        return { ok: bad.length === 0, detail: bad.length ? `not masked: ${bad.join('; ')}` : `${plan.maskedUnits.length} units masked` };
      },
    },
    {
      id: 'image.layout',
      statement:
        'every file leakless ships is in a Debian package location, nothing is under /usr/local, and /etc/systemd/system holds only systemctl’s links, no unit or drop-in file',
      check: () => {
        const problems = rootfsLayoutProblems(tree, root);
        return {
          ok: problems.length === 0,
          detail: problems.length ? `${problems.length} problems, first: ${problems[0]}` : `${tree.files.length} files in Debian package locations`,
        };
      },
    },
    {
      id: 'image.unit-ordering',
      statement: 'the ordering and requirements the modules declare for their units (e.g. Before=network-pre.target) survive every drop-in in the image',
      check: () => {
        const bad: string[] = [];
        let checked = 0;
        for (const u of plan.units) {
          const files = emittedUnitFiles(tree, u);
          if (files.length === 0) continue;
          const { deps: effective, fragment } = effectiveDepsInRoot(root, u);
          if (!fragment) {
            bad.push(`${u}: no unit file in the image (or masked)`);
            continue;
          }
          for (const f of files) {
            const declared = depsOf(parseUnit(f.content));
            for (const k of DEP_KEYS) {
              for (const v of declared[k]) {
                checked++;
                if (!effective[k].has(v)) bad.push(`${u}: ${k}=${v} (from ${f.path}) is not in effect`);
              }
            }
          }
        }
        return { ok: bad.length === 0, detail: bad.length ? bad.slice(0, 3).join('; ') : `${checked} declared dependencies in effect` };
      },
    },
    {
      id: 'image.no-host-leftovers',
      statement: 'nothing of the build host in the image: hostname from the policy, no host resolv.conf, empty machine-id',
      check: () => {
        const problems: string[] = [];
        const hostnameFile = tree.files.find((f) => f.path === '/etc/hostname')?.content ?? `${plan.hostname}\n`;
        if (readOr('/etc/hostname') !== hostnameFile) problems.push(`/etc/hostname is ${JSON.stringify(readOr('/etc/hostname'))}`);
        const resolv = tree.files.find((f) => f.path === '/etc/resolv.conf');
        const resolvOnDisk = readOr('/etc/resolv.conf');
        if (resolv ? resolvOnDisk !== resolv.content : resolvOnDisk !== undefined) problems.push('/etc/resolv.conf is not the one the modules emit');
        if (readOr('/etc/machine-id') !== '') problems.push('/etc/machine-id is not empty');
        if (readOr('/var/lib/dbus/machine-id') !== undefined) problems.push('/var/lib/dbus/machine-id exists');
        return { ok: problems.length === 0, detail: problems[0] ?? 'hostname, resolv.conf and machine-id as intended' };
      },
    },
    {
      id: 'image.selftest',
      statement: 'leakless-selftest is installed with the runtime assertions of every module',
      check: () => {
        const doc = readOr(RUNTIME_ASSERTIONS_PATH);
        let count = -1;
        try {
          count = (JSON.parse(doc ?? '') as { assertions: unknown[] }).assertions.length;
        } catch {
          /* reported below */
        }
        let exe = false;
        try {
          exe = (lstatSync(onDisk(SELFTEST_PATH)).mode & 0o111) === 0o111;
        } catch {
          /* missing */
        }
        const ok = exe && count === plan.selftest.assertions.length;
        return {
          ok,
          detail: `${SELFTEST_PATH} ${exe ? 'executable' : 'missing or not executable'}, ${count} assertions (plan: ${plan.selftest.assertions.length})`,
        };
      },
    },
  ];
}

/** Every module's static assertions plus the image's, on the stacked rootfs. */
export async function verifyRootfs(assembly: Assembly, plan: ImagePlan, tree: Tree, root: string): Promise<StaticResult[]> {
  const extra = imageAssertions(plan, tree, root).map((assertion) => ({ module: 'image', assertion }));
  return checkStatic(assembly, diskTree(root), hostToolRunner, extra);
}

/** Both boot paths are in the ISO: El Torito entries for BIOS and UEFI. */
export async function elToritoPlatforms(iso: string): Promise<string[]> {
  const r = await execa('xorriso', ['-indev', iso, '-report_el_torito', 'plain'], { reject: false, all: true });
  const platforms = new Set<string>();
  for (const line of (r.all ?? '').split('\n')) {
    const m = /^El Torito boot img :\s+\d+\s+(\S+)/.exec(line);
    if (m) platforms.add(m[1]!);
  }
  return [...platforms].sort();
}

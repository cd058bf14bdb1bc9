// leakless CLI. Exit codes: 0 ok, 1 verification failed, 2 bad input.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  assemble,
  checkStatic,
  formatIssue,
  hostToolRunner,
  memoryTree,
  readPolicyFile,
  sha256,
  tarballOf,
  writeOutputs,
  type Assembly,
  type LeaklessModule,
  type StaticAssertion,
  type StaticResult,
} from '@leakless/policy';
import { parseArgs, UsageError, type Parsed } from './args.js';
import { allModules } from '@leakless/crosscheck';
import { diskTree } from '@leakless/image';
import { table } from './table.js';
import { isoCommand, ISO_HELP } from './iso.js';
import { bootCommand, BOOT_HELP } from './boot.js';
import { benchCommand, BENCH_HELP } from './bench.js';
import { rebuildCommand, REBUILD_HELP, verifyCommand, VERIFY_HELP } from './release.js';
import { debCommand, DEB_HELP } from './deb.js';
import { installedAssertions } from '@leakless/deb';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_BAD_INPUT = 2;

const DEFAULT_CONFIGS = ['image-config/default.yaml', 'image-config/default.yml', 'image-config/default.json'];

const HELP: Record<string, string> = {
  '': `usage: leakless <command> [options]

commands:
  emit    validate the policy and write chroot-includes/ and its tarball
  check   evaluate every static assertion on an emitted tree
  iso     build and verify dist/leakless-amd64.iso (root; debos, reproducible)
  boot    boot the ISO in QEMU (BIOS and UEFI, no network) and run its self-test
  bench   measure build stages, rebuild, ISO size, boot times, reproducibility
  rebuild rebuild an ISO from its manifest and saved repository; exit 0 only on the same sha256
  verify  check an ISO against SHA512SUMS and its OpenPGP signature
  deb     build one Debian package per module, leakless-users and the leakless metapackage
  help    show help for a command (leakless help emit)

exit codes: 0 ok, 1 verification failed, 2 bad input`,
  emit: `usage: leakless emit [--config FILE] [--out DIR] [--tar FILE] [--module NAME]... [--json]

Validates the policy, runs every module's emit and writes the tree and a
bit-reproducible tarball (sorted, mtime = release.sourceDateEpoch, uid/gid 0,
explicit modes). Both are replaced atomically; bad input writes nothing.

  --config FILE   policy file (YAML or JSON); default image-config/default.yaml
  --out DIR       tree directory; default chroot-includes
  --tar FILE      tarball; default dist/chroot-includes.tar
  --module NAME   emit only this module (repeatable); default all
  --json          print a machine-readable summary`,
  iso: ISO_HELP,
  boot: BOOT_HELP,
  bench: BENCH_HELP,
  rebuild: REBUILD_HELP,
  verify: VERIFY_HELP,
  deb: DEB_HELP,
  check: `usage: leakless check [--config FILE] [--tree DIR] [--installed] [--module NAME]... [--json]

Evaluates every static assertion of every module on the tree on disk, plus
tree.matches-policy (the tree is exactly what the policy emits: no drift).
Prints a table (id, statement, ok/failed); exit 1 if any fails.

  --config FILE   policy file; default image-config/default.yaml
  --tree DIR      tree to check; default chroot-includes
  --installed     the tree is a root filesystem with the packages installed
                  (leakless deb): other files are allowed; every emitted file,
                  the fixed uids and the enabled and masked units are checked
  --module NAME   check only this module (repeatable)
  --json          print the results as JSON`,
};

interface Io {
  out(s: string): void;
  err(s: string): void;
}
const stdio: Io = { out: (s) => process.stdout.write(s + '\n'), err: (s) => process.stderr.write(s + '\n') };

export async function main(argv: readonly string[], io: Io = stdio): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
      const topic = command === 'help' ? (rest[0] ?? '') : '';
      if (!(topic in HELP)) throw new UsageError(`no help for "${topic}"`);
      io.out(HELP[topic]!);
      return command === undefined ? EXIT_BAD_INPUT : EXIT_OK;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      if (!(command in HELP)) throw new UsageError(`unknown command "${command}"`);
      io.out(HELP[command]!);
      return EXIT_OK;
    }
    switch (command) {
      case 'emit':
        return await emitCommand(parseArgs(rest, { config: 'string', out: 'string', tar: 'string', module: 'list', json: 'boolean' }), io);
      case 'check':
        return await checkCommand(parseArgs(rest, { config: 'string', tree: 'string', installed: 'boolean', module: 'list', json: 'boolean' }), io);
      case 'iso':
        return await isoCommand(rest, io);
      case 'boot':
        return await bootCommand(rest, io);
      case 'bench':
        return await benchCommand(rest, io);
      case 'rebuild':
        return await rebuildCommand(rest, io);
      case 'verify':
        return await verifyCommand(rest, io);
      case 'deb':
        return await debCommand(rest, io);
      default:
        throw new UsageError(`unknown command "${command}" (leakless --help)`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`leakless: ${e.message}`);
      return EXIT_BAD_INPUT;
    }
    throw e;
  }
}

function configPath(flags: Parsed['flags']): string {
  if (typeof flags.config === 'string') return resolve(flags.config);
  const found = DEFAULT_CONFIGS.find((c) => existsSync(c));
  if (!found) throw new UsageError('--config: no image-config/default.{yaml,yml,json} in this directory; pass --config FILE');
  return resolve(found);
}

function pickModules(flags: Parsed['flags']): readonly LeaklessModule[] {
  const wanted = flags.module as string[] | undefined;
  if (!wanted) return allModules;
  return wanted.map((n) => {
    const m = allModules.find((x) => x.name === n);
    if (!m) throw new UsageError(`--module: unknown module "${n}" (known: ${allModules.map((x) => x.name).join(', ')})`);
    return m;
  });
}

/** Load, validate, assemble. Returns undefined (after printing why) on bad input. */
async function load(flags: Parsed['flags'], io: Io): Promise<{ config: string; assembly: Assembly } | undefined> {
  const modules = pickModules(flags);
  const config = configPath(flags);
  const result = await readPolicyFile(config);
  if (!result.ok) {
    for (const i of result.issues) io.err(`leakless: ${config}: ${formatIssue(i)}`);
    return undefined;
  }
  return { config, assembly: assemble(result.policy, modules) };
}

async function emitCommand({ flags, positionals }: Parsed, io: Io): Promise<number> {
  if (positionals.length) throw new UsageError(`emit takes no arguments (got "${positionals[0]}")`);
  const out = resolve(typeof flags.out === 'string' ? flags.out : 'chroot-includes');
  const tar = resolve(typeof flags.tar === 'string' ? flags.tar : 'dist/chroot-includes.tar');
  const loaded = await load(flags, io);
  if (!loaded) return EXIT_BAD_INPUT;
  const { assembly, config } = loaded;
  const tarball = await tarballOf(assembly.tree, assembly.policy.sourceDateEpoch);
  await writeOutputs(assembly.tree, tarball, { treeDir: out, tarFile: tar });
  const summary = {
    config,
    policy: assembly.policy.name,
    tree: out,
    tarball: { path: tar, bytes: tarball.length, sha256: sha256(tarball) },
    modules: assembly.emissions.map((e) => ({
      name: e.module,
      files: e.files.length,
      packages: e.packages,
      users: e.users.map((u) => u.name),
      units: e.units,
      staticAssertions: e.staticAssertions.length,
      runtimeAssertions: e.runtimeAssertions.length,
    })),
  };
  if (flags.json) io.out(JSON.stringify(summary, null, 2));
  else {
    io.out(
      table(
        ['module', 'files', 'static', 'runtime'],
        summary.modules.map((m) => [m.name, String(m.files), String(m.staticAssertions), String(m.runtimeAssertions)]),
      ),
    );
    io.out(`\nwrote ${assembly.tree.files.length} files to ${out}`);
    io.out(`wrote ${tar} (${tarball.length} bytes, sha256 ${summary.tarball.sha256})`);
  }
  return EXIT_OK;
}

async function checkCommand({ flags, positionals }: Parsed, io: Io): Promise<number> {
  if (positionals.length) throw new UsageError(`check takes no arguments (got "${positionals[0]}")`);
  const dir = resolve(typeof flags.tree === 'string' ? flags.tree : 'chroot-includes');
  if (!existsSync(dir)) throw new UsageError(`--tree: ${dir} does not exist (run leakless emit first)`);
  const loaded = await load(flags, io);
  if (!loaded) return EXIT_BAD_INPUT;
  const { assembly } = loaded;
  const onDisk = diskTree(dir);
  const expected = memoryTree(assembly.tree);
  // The tree on disk is exactly the emission: same paths, same bytes, same
  // executable bit (the only mode bit git keeps). This is the drift check CI runs.
  const drift: StaticAssertion = {
    id: 'tree.matches-policy',
    statement: 'the tree on disk is exactly what the policy emits (no drift, no extra files)',
    check: () => {
      const want = new Set(expected.paths());
      const problems: string[] = [];
      const selected = flags.module !== undefined;
      for (const p of onDisk.paths()) if (!want.has(p) && !selected) problems.push(`${p}: not emitted by the policy`);
      for (const p of want) {
        const got = onDisk.read(p);
        if (got === undefined) problems.push(`${p}: missing`);
        else if (got !== expected.read(p)) problems.push(`${p}: content differs`);
        else if (((onDisk.mode(p) ?? 0) & 0o111) !== ((expected.mode(p) ?? 0) & 0o111)) problems.push(`${p}: executable bit differs`);
      }
      return { ok: problems.length === 0, detail: problems.length ? `${problems.length} differences, first: ${problems[0]}` : `${want.size} files match` };
    },
  };
  const extra = flags.installed
    ? installedAssertions(assembly, dir).map((assertion) => ({ module: 'installed', assertion }))
    : [{ module: 'leakless', assertion: drift }];
  const results: StaticResult[] = await checkStatic(assembly, onDisk, hostToolRunner, extra);
  const failed = results.filter((r) => !r.ok);
  if (flags.json) io.out(JSON.stringify({ tree: dir, passed: results.length - failed.length, failed: failed.length, results }, null, 2));
  else {
    io.out(
      table(
        ['id', 'statement', 'result'],
        results.map((r) => [r.id, r.statement, r.ok ? 'ok' : `FAILED: ${r.detail}`]),
      ),
    );
    io.out(`\n${results.length - failed.length} ok, ${failed.length} failed`);
  }
  return failed.length ? EXIT_FAILED : EXIT_OK;
}

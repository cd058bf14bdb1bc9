// `leakless deb`: the emissions as Debian packages (@leakless/deb). Bad input
// (an unknown module, a version dpkg would refuse, a path two modules claim)
// is one line naming the field, exit 2, and nothing is written.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { assemble, formatIssue, readPolicyFile, type Assembly, type LeaklessModule } from '@leakless/policy';
import { makeAptRepo } from '@leakless/apt-repo';
import { IMAGE_MASKED_UNITS, packagesLayer, repoRecipeFiles, type ImagePlan, type RenderedRecipe } from '@leakless/image';
import { allModules } from '@leakless/crosscheck';
import { accountsTsv, buildDebs, DebInputError, inputProblems, planDebs, usersOf } from '@leakless/deb';
import { parseArgs, UsageError } from './args.js';
import { table } from './table.js';

export const DEB_HELP = `usage: leakless deb [--config FILE] [--module NAME]... [--out DIR] [--json]

Builds one leakless-<module>_<version>_all.deb per module, leakless-users
(the policy's fixed uids, created before any package that would allocate
one) and the leakless metapackage, with dpkg-deb, from each module's
emission. The version is the policy's release.version; two builds give the
same bytes (SOURCE_DATE_EPOCH = release.sourceDateEpoch).

  --config FILE   policy file; default image-config/default.yaml
  --module NAME   package only this module (repeatable); default all
  --out DIR       where the .deb files go; default dist/deb
  --json          print a machine-readable summary`;

interface Io {
  out(s: string): void;
  err(s: string): void;
}

const DEFAULT_CONFIGS = ['image-config/default.yaml', 'image-config/default.yml', 'image-config/default.json'];

function pick(wanted: readonly string[] | undefined): readonly LeaklessModule[] {
  if (!wanted) return allModules;
  return wanted.map((n) => {
    const m = allModules.find((x) => x.name === n);
    if (!m) throw new UsageError(`--module: unknown module "${n}" (known: ${allModules.map((x) => x.name).join(', ')})`);
    return m;
  });
}

export async function debCommand(argv: readonly string[], io: Io): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { config: 'string', module: 'list', out: 'string', json: 'boolean' });
  if (positionals.length) throw new UsageError(`deb takes no arguments (got "${positionals[0]}")`);
  const modules = pick(flags.module as string[] | undefined);
  const config = typeof flags.config === 'string' ? resolve(flags.config) : DEFAULT_CONFIGS.map((c) => resolve(c)).find((c) => existsSync(c));
  if (!config) throw new UsageError('--config: no image-config/default.{yaml,yml,json} in this directory; pass --config FILE');
  const out = resolve(typeof flags.out === 'string' ? flags.out : 'dist/deb');
  const read = await readPolicyFile(config);
  if (!read.ok) {
    for (const i of read.issues) io.err(`leakless: ${config}: ${formatIssue(i)}`);
    return 2;
  }
  const policy = read.policy;
  const emissions = modules.map((m) => m.emit(policy));
  const input = {
    emissions,
    users: [],
    usersTsv: '',
    version: policy.document.release.version,
    sourceDateEpoch: policy.sourceDateEpoch,
    policyName: policy.name,
  };
  // every field problem before assembling (which stops at the first clash)
  const problems = inputProblems(input);
  if (problems.length) {
    for (const p of problems) io.err(`leakless: ${config}: ${p.message}`);
    return 2;
  }
  let plan: ReturnType<typeof planDebs>;
  try {
    const assembly = assemble(policy, modules);
    plan = planDebs({ ...input, users: usersOf(assembly), usersTsv: accountsTsv(assembly) });
  } catch (e) {
    if (e instanceof DebInputError) {
      io.err(`leakless: ${config}: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const result = await buildDebs(plan, out, (s) => io.err(`[deb] ${s}`));
  const rows = plan.packages.map((p, i) => ({
    package: p.name,
    file: result.debs[i]!.file,
    bytes: result.debs[i]!.bytes,
    sha256: result.debs[i]!.sha256,
    depends: p.depends,
    conffiles: p.conffiles,
    diverted: p.diversions.map((d) => d.path),
    enabled: p.units.enabled,
    masked: p.units.masked,
  }));
  if (flags.json) io.out(JSON.stringify({ config, version: plan.version, outDir: out, ms: result.ms, packages: rows }, null, 2));
  else {
    io.out(
      table(
        ['package', 'bytes', 'diverted', 'units'],
        rows.map((r) => [r.package, String(r.bytes), r.diverted.join(' ') || '-', [...r.enabled, ...r.masked.map((m) => `${m} (masked)`)].join(' ') || '-']),
      ),
    );
    io.out(`\nwrote ${rows.length} packages to ${out} in ${(result.ms / 1000).toFixed(1)} s`);
  }
  return 0;
}

/**
 * `leakless iso --from-debs`: the packages of an assembly, built into
 * `dir/debs` and served from `dir/repo`, and the top-recipe rewrite that
 * installs them as the image's module layer (@leakless/image packagesLayer).
 */
export async function debsTopLayer(
  assembly: Assembly,
  dir: string,
  note: (s: string) => void,
): Promise<(top: RenderedRecipe, plan: ImagePlan) => RenderedRecipe> {
  const { policy } = assembly;
  const plan = planDebs({
    emissions: assembly.emissions,
    users: usersOf(assembly),
    usersTsv: accountsTsv(assembly),
    version: policy.document.release.version,
    sourceDateEpoch: policy.sourceDateEpoch,
    policyName: policy.name,
  });
  const built = await buildDebs(plan, join(dir, 'debs'));
  const repo = await makeAptRepo({ dir: join(dir, 'repo'), debs: built.debs.map((d) => d.file), sourceDateEpoch: policy.sourceDateEpoch });
  note(`module layer from ${built.debs.length} Debian packages (${built.debs.reduce((n, d) => n + d.bytes, 0)} bytes, repository ${repo.dir})`);
  const files = await repoRecipeFiles(repo.dir);
  // the image's own masks are in no package: the layer masks them as the tarball's layer does
  return (top, image) => packagesLayer(top, { units: image.units, masked: IMAGE_MASKED_UNITS }, files);
}

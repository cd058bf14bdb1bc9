// `leakless iso` as a library: policy assembly in, verified reproducible ISO
// and manifest out. Side effects (debos, mounts, files) live here; what the
// image contains is decided by the pure iso-plan.ts / iso-recipes.ts.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, copyFile, link, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { buildTree, emission, tarballOf, type Assembly, type StaticResult, type Tree } from '@leakless/policy';
import { createProgress, runDebos, type Progress, type StageTiming } from '@leakless/debos-ts';
import { imageFiles, planImage, PlanError, type ImagePlan } from './iso-plan.js';
import { baseInputsRecord, baseKey, baseRecipe, ISO_NAME, KERNEL_ARGS, MODULE_LAYER, topRecipe, type BaseInputs, type RenderedRecipe } from './iso-recipes.js';
import { bundleSelftest } from '@leakless/selftest';
import { AccelError, chooseAccel, type AccelDecision, type AccelFlag, type DebosChoice, type FakemachineFlag } from './accel.js';
import { commitEntry, digestFile, ENTRY_FILE, lookupEntry, newEntryDir, pruneCache, type FileDigest } from './cache.js';
import { ensureProbeKernel, PROBE_KERNEL_KIND } from './probe-kernel.js';
import { resolveSources, SourcesError } from './sources.js';
import { safeRemove, withStackedRootfs } from './iso-mounts.js';
import { elToritoPlatforms, verifyRootfs } from './iso-verify.js';

export interface IsoBuildOptions {
  /** Where dist/leakless-amd64.iso and its manifest go. */
  readonly outDir: string;
  /** Cached base layers, keyed by the hash of their inputs. */
  readonly cacheDir: string;
  /** Scratch space (needs room for a rootfs; same filesystem as cacheDir for hard links). */
  readonly workRoot: string;
  /** An apt sources file, or a mirror URL; default: the host's Debian sources. */
  readonly mirror?: string;
  /** Rebuild the base even when it is cached (the reproducibility check does). */
  readonly freshBase?: boolean;
  readonly compression?: 'zstd' | 'xz';
  readonly keepWork?: boolean;
  /** enforce: a failed static assertion fails the build; report: build anyway (anti-tests). */
  readonly verify?: 'enforce' | 'report';
  /** Change the emitted tree before it goes into the image (anti-tests plant a fault here). */
  readonly transformTree?: (tree: Tree) => Tree;
  /** auto (default): KVM only when a KVM guest boots a real kernel (accel.ts). */
  readonly accel?: AccelFlag;
  /** auto (default): debos in fakemachine only when KVM boots Linux and fakemachine's host files are present. */
  readonly fakemachine?: FakemachineFlag;
  /** Progress display factory (one per stage group); default prints to stderr. */
  readonly progress?: (label: string, total?: number) => Progress;
  readonly note?: (text: string) => void;
  /** Rewrites the top recipe before it runs: `leakless iso --from-debs` makes the module layer from the Debian packages (iso-debs.ts). */
  readonly topLayer?: (top: RenderedRecipe, plan: ImagePlan) => RenderedRecipe;
}

export interface Manifest {
  readonly format: 1;
  readonly policy: string;
  readonly release: string;
  readonly sourceDateEpoch: number;
  readonly suite: string;
  readonly iso: FileDigest;
  readonly kernel: FileDigest & { readonly version: string };
  readonly initrd: FileDigest;
  readonly squashfs: { readonly base: FileDigest; readonly modules: FileDigest };
  readonly tarballs: { readonly chrootIncludes: FileDigest; readonly imageFiles: FileDigest };
  readonly base: { readonly key: string };
  readonly bootPlatforms: readonly string[];
  readonly selftest: { readonly assertions: number };
  readonly users: readonly { name: string; uid: number; gid: number }[];
  readonly units: readonly string[];
  readonly tools: Readonly<Record<string, string>>;
  readonly packages: readonly { name: string; version: string; arch: string }[];
}

export interface IsoBuildResult {
  readonly ok: boolean;
  readonly iso: string;
  readonly manifestPath: string;
  readonly manifest: Manifest;
  readonly base: { readonly key: string; readonly cached: boolean; readonly dir: string; readonly stages: readonly StageTiming[] };
  readonly image: { readonly stages: readonly StageTiming[] };
  readonly verify: { readonly results: readonly StaticResult[]; readonly stages: readonly StageTiming[] };
  readonly totalMs: number;
  /** The accelerator and debos mode, and why. */
  readonly accel: AccelDecision;
  /** Kept when the build failed verification or keepWork was set. */
  readonly workDir?: string;
}

export class IsoBuildError extends Error {
  override readonly name = 'IsoBuildError';
  constructor(
    message: string,
    readonly workDir?: string,
  ) {
    super(message);
  }
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  const r = await execa(cmd, args, { reject: false, all: true });
  return (
    (r.all ?? '')
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? `unavailable (${cmd})`
  );
}

async function debVersion(pkg: string): Promise<string> {
  const r = await execa('dpkg-query', ['-W', '-f', '${Version}', pkg], { reject: false });
  return r.exitCode === 0 ? r.stdout : 'not installed';
}

/** Versions of everything that writes bytes into the image. */
export async function toolVersions(): Promise<{ base: Record<string, string>; all: Record<string, string> }> {
  const base = {
    debos: await debVersion('debos'),
    mmdebstrap: await firstLine('mmdebstrap', ['--version']),
    mksquashfs: await firstLine('mksquashfs', ['-version']),
  };
  return {
    base,
    all: {
      ...base,
      xorriso: await firstLine('xorriso', ['-version']),
      grub: await debVersion('grub-common'),
      mtools: await debVersion('mtools'),
      dosfstools: await debVersion('dosfstools'),
      systemd: await debVersion('systemd'),
    },
  };
}

async function writeRecipeDir(dir: string, r: RenderedRecipe): Promise<string> {
  await mkdir(dir, { recursive: true });
  const yamlPath = join(dir, 'recipe.yaml');
  await writeFile(yamlPath, r.yaml);
  for (const [rel, f] of r.files) {
    const p = join(dir, rel);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, f.content);
    await chmod(p, f.mode);
  }
  return yamlPath;
}

function digestBuffer(b: Buffer, shownAs: string): FileDigest {
  return { path: shownAs, bytes: b.length, sha256: createHash('sha256').update(b).digest('hex') };
}

function parsePackages(tsv: string): { name: string; version: string; arch: string }[] {
  return tsv
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [name, version, arch] = l.split('\t');
      return { name: name!, version: version!, arch: arch! };
    });
}

export const BASE_KIND = 'base';
/** Each base is ~200 MB; keep the most recently used few (a policy switch back and forth stays cached). */
export const BASES_KEPT = 3;
/** What pruning keeps of each kind of cache entry. */
export const CACHE_KEEP = { [BASE_KIND]: BASES_KEPT, [PROBE_KERNEL_KIND]: 1 };

/** Build (or reuse) the base layer; returns its cache directory. */
async function ensureBase(
  inp: BaseInputs,
  o: IsoBuildOptions,
  workDir: string,
  progress: (label: string, total?: number) => Progress,
  note: (s: string) => void,
  debos: DebosChoice,
): Promise<{ dir: string; key: string; cached: boolean; stages: readonly StageTiming[] }> {
  const rendered = baseRecipe(inp);
  const key = baseKey(rendered, inp);
  if (!o.freshBase) {
    const hit = await lookupEntry(o.cacheDir, BASE_KIND, key, { note });
    if (hit) {
      note(`base layer: cached (${hit.dir}, content sha256 ${hit.entry.content.sha256.slice(0, 16)}… verified)`);
      return { dir: hit.dir, key, cached: true, stages: [] };
    }
  }
  note(o.freshBase ? 'base layer: rebuilding (--fresh-base)' : `base layer: not cached, building (key ${key.slice(0, 16)})`);
  const recipeDir = join(workDir, 'base');
  const recipePath = await writeRecipeDir(recipeDir, rendered);
  const tmp = await newEntryDir(o.cacheDir, BASE_KIND);
  try {
    const run = await runDebos({
      recipe: recipePath,
      artifactDir: tmp,
      cwd: workDir,
      logFile: join(workDir, 'logs', 'base.log'),
      mode: debos.mode,
      ...(debos.backend ? { fakemachineBackend: debos.backend } : {}),
      modeReason: debos.reason,
      environ: { SOURCE_DATE_EPOCH: String(inp.plan.sourceDateEpoch), LC_ALL: 'C.UTF-8' },
      env: { SOURCE_DATE_EPOCH: String(inp.plan.sourceDateEpoch), LC_ALL: 'C.UTF-8' },
      progress: progress('base', rendered.recipe.actions.length),
    });
    note(`base layer: built in ${(run.ms / 1000).toFixed(1)}s (${run.mode}: ${run.modeReason})`);
    const entry = await commitEntry(o.cacheDir, tmp, BASE_KIND, key, baseInputsRecord(rendered, inp));
    note(`base layer: cached as ${entry.dir} (${(entry.entry.content.bytes / 1e6).toFixed(1)} MB, content sha256 ${entry.entry.content.sha256.slice(0, 16)}…)`);
    await pruneCache(o.cacheDir, { keep: CACHE_KEEP, note });
    return { dir: entry.dir, key, cached: false, stages: run.stages };
  } catch (e) {
    await safeRemove(tmp);
    throw e;
  }
}

/**
 * The cached base inside the top recipe's directory, as hard links (a copy
 * across file systems): in fakemachine only the recipe and artifact
 * directories are mounted into the build VM, so a symlink to the cache would
 * point at nothing there.
 */
async function linkBase(from: string, to: string): Promise<void> {
  await mkdir(to);
  for (const f of await readdir(from, { withFileTypes: true })) {
    if (!f.isFile() || f.name === ENTRY_FILE) continue;
    await link(join(from, f.name), join(to, f.name)).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EXDEV') throw e;
      await copyFile(join(from, f.name), join(to, f.name));
    });
  }
}

/** The accelerator decision of a build: flags, then the (cached) probes. */
async function chooseBuildAccel(o: IsoBuildOptions, progress: (label: string, total?: number) => Progress, note: (s: string) => void): Promise<AccelDecision> {
  try {
    return await chooseAccel({
      forDebos: true,
      ...(o.accel ? { accel: o.accel } : {}),
      ...(o.fakemachine ? { fakemachine: o.fakemachine } : {}),
      kernel: probeKernelSource(o.cacheDir, note),
      progress: progress('accel'),
      note,
    });
  } catch (e) {
    throw e instanceof AccelError ? new IsoBuildError(e.message) : e;
  }
}

/** The KVM probe's kernel, fetched into (and cached in) the build cache. */
export function probeKernelSource(cacheDir: string, note?: (s: string) => void): { fetch: (progress: Progress) => Promise<string>; cacheKey: string } {
  return { cacheKey: `cache:${resolve(cacheDir)}`, fetch: (progress) => ensureProbeKernel({ cacheDir, progress, ...(note ? { note } : {}) }) };
}

export async function buildIso(assembly: Assembly, o: IsoBuildOptions): Promise<IsoBuildResult> {
  const started = Date.now();
  const note = o.note ?? ((s: string) => process.stderr.write(`[iso] ${s}\n`));
  const progress = o.progress ?? ((label: string, total?: number) => createProgress({ label, ...(total !== undefined ? { total } : {}) }));
  const compression = o.compression ?? 'zstd';
  const plan: ImagePlan = planImage(assembly);
  const sde = plan.sourceDateEpoch;
  const accel = await chooseBuildAccel(o, progress, note);
  const debos = accel.debos;
  note(`debos: ${debos.mode} mode${debos.backend ? ` (backend ${debos.backend})` : ''}: ${debos.reason}`);

  await mkdir(o.workRoot, { recursive: true });
  const workDir = resolve(join(o.workRoot, `iso-${process.pid}-${randomBytes(3).toString('hex')}`));
  await mkdir(join(workDir, 'logs'), { recursive: true });
  let keep = o.keepWork ?? false;
  try {
    // module output and the image's own files, each a deterministic tarball
    const tree = o.transformTree ? o.transformTree(assembly.tree) : assembly.tree;
    const includesTar = await tarballOf(tree, sde);
    const bundle = await bundleSelftest();
    const extraFiles = imageFiles(plan, bundle, new Set(tree.files.map((f) => f.path)));
    const imageTree = buildTree([emission('image', { files: extraFiles })]);
    const imageTar = await tarballOf(imageTree, sde);

    const versions = await toolVersions();
    const sources = await resolveSources(o.mirror, plan.suite).catch((e: unknown) => {
      throw e instanceof SourcesError ? new IsoBuildError(e.message) : e;
    });
    const base = await ensureBase({ plan, sources, compression, toolVersions: versions.base }, o, workDir, progress, note, debos);

    const top = topRecipe({
      plan,
      compression,
      includesTar,
      imageTar,
      kernelArgs: KERNEL_ARGS,
      menuTitle: `leakless ${plan.selftest.release} (${plan.selftest.policy})`,
    });
    const rendered = o.topLayer ? o.topLayer(top, plan) : top;
    const topDir = join(workDir, 'image');
    const topPath = await writeRecipeDir(topDir, rendered);
    await linkBase(base.dir, join(topDir, 'base'));
    const outDir = join(workDir, 'out');
    const image = await runDebos({
      recipe: topPath,
      artifactDir: outDir,
      cwd: workDir,
      logFile: join(workDir, 'logs', 'image.log'),
      mode: debos.mode,
      ...(debos.backend ? { fakemachineBackend: debos.backend } : {}),
      modeReason: debos.reason,
      environ: { SOURCE_DATE_EPOCH: String(sde), LC_ALL: 'C.UTF-8' },
      env: { SOURCE_DATE_EPOCH: String(sde), LC_ALL: 'C.UTF-8' },
      progress: progress('image', rendered.recipe.actions.length),
    });

    // verification on what was built, not on what was meant
    const vp = progress('verify', 2);
    vp.stage('rootfs');
    const isoTmp = join(outDir, ISO_NAME);
    const layers = [join(base.dir, 'filesystem.squashfs'), join(outDir, 'iso', 'live', MODULE_LAYER)];
    const fullTree = buildTree([emission('modules', { files: tree.files }), emission('image', { files: extraFiles })]);
    const results = await withStackedRootfs(layers, join(workDir, 'mnt-verify'), (root) => verifyRootfs({ ...assembly, tree }, plan, fullTree, root));
    const failed = results.filter((r) => !r.ok);
    vp.end(failed.length === 0);
    vp.stage('iso');
    const platforms = await elToritoPlatforms(isoTmp);
    const bootOk = platforms.includes('BIOS') && platforms.includes('UEFI');
    const verifyStages = vp.finish(bootOk);

    const manifest: Manifest = {
      format: 1,
      policy: plan.selftest.policy,
      release: plan.selftest.release,
      sourceDateEpoch: sde,
      suite: plan.suite,
      iso: await digestFile(isoTmp, ISO_NAME),
      kernel: { ...(await digestFile(join(base.dir, 'vmlinuz'), 'live/vmlinuz')), version: (await readFile(join(base.dir, 'kernel-version'), 'utf8')).trim() },
      initrd: await digestFile(join(base.dir, 'initrd.img'), 'live/initrd.img'),
      squashfs: {
        base: await digestFile(layers[0]!, 'live/filesystem.squashfs'),
        modules: await digestFile(layers[1]!, `live/${MODULE_LAYER}`),
      },
      tarballs: { chrootIncludes: digestBuffer(includesTar, 'chroot-includes.tar'), imageFiles: digestBuffer(imageTar, 'leakless-image.tar') },
      base: { key: base.key },
      bootPlatforms: platforms,
      selftest: { assertions: plan.selftest.assertions.length },
      users: plan.users.map(({ name, uid, gid }) => ({ name, uid, gid })),
      units: plan.units,
      tools: versions.all,
      packages: parsePackages(await readFile(join(base.dir, 'packages.tsv'), 'utf8')),
    };

    const verified = failed.length === 0 && bootOk;
    if (!verified && (o.verify ?? 'enforce') === 'enforce') {
      keep = true;
      const why = [
        ...failed.map((r) => `${r.id}: ${r.detail}`),
        ...(bootOk ? [] : [`boot platforms in the ISO: ${platforms.join(', ') || 'none'} (need BIOS and UEFI)`]),
      ];
      throw Object.assign(new IsoBuildError(`the built image failed verification:\n  ${why.join('\n  ')}\nthe unverified ISO is in ${outDir}`, workDir), {
        results,
      });
    }
    await mkdir(o.outDir, { recursive: true });
    const isoPath = join(o.outDir, ISO_NAME);
    const manifestPath = join(o.outDir, ISO_NAME.replace(/\.iso$/, '.manifest.json'));
    await rename(isoTmp, isoPath);
    await writeFile(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
    return {
      ok: verified,
      iso: isoPath,
      manifestPath,
      manifest,
      base: { key: base.key, cached: base.cached, dir: base.dir, stages: base.stages },
      image: { stages: image.stages },
      verify: { results, stages: verifyStages },
      totalMs: Date.now() - started,
      accel,
      ...(keep ? { workDir } : {}),
    };
  } catch (e) {
    keep = true;
    if (e instanceof IsoBuildError || e instanceof PlanError) throw e;
    const err = e as Error;
    throw Object.assign(new IsoBuildError(`${err.message}\n(work dir kept for inspection: ${workDir})`, workDir), { cause: e });
  } finally {
    if (!keep) await safeRemove(workDir).catch((e: Error) => note(`could not remove ${workDir}: ${e.message}`));
  }
}

/** Size of a file, or undefined. */
export async function sizeOf(p: string): Promise<number | undefined> {
  return stat(p).then(
    (s) => s.size,
    () => undefined,
  );
}

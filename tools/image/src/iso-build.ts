// `leakless iso` as a library: policy assembly in, verified reproducible ISO
// and manifest out. Side effects (debos, mounts, files) live here; what the
// image contains is decided by the pure iso-plan.ts / iso-recipes.ts.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, copyFile, link, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { buildTree, emission, tarballOf, type Assembly, type StaticResult, type Tree } from '@leakless/policy';
import { createProgress, runDebos, type Progress, type StageTiming } from '@leakless/debos-ts';
import { imageFiles, planImage, PlanError, type ImagePlan } from './iso-plan.js';
import {
  baseInputsRecord,
  baseKey,
  baseRecipe,
  ISO_NAME,
  KERNEL_ARGS,
  MODULE_LAYER,
  topRecipe,
  type BaseInputs,
  type RenderedRecipe,
  type UefiGrub,
} from './iso-recipes.js';
import { bundleSelftest } from '@leakless/selftest';
import { AccelError, chooseAccel, type AccelDecision, type AccelFlag, type DebosChoice, type FakemachineFlag } from './accel.js';
import { commitEntry, digestFile, ENTRY_FILE, lookupEntry, newEntryDir, pruneCache, type FileDigest } from './cache.js';
import { ensureProbeKernel, PROBE_KERNEL_KIND } from './probe-kernel.js';
import { resolveSources, SourcesError } from './sources.js';
import { safeRemove, withStackedRootfs } from './iso-mounts.js';
import { elToritoPlatforms, verifyRootfs } from './iso-verify.js';
import { secureBootRecord, type SecureBootRecord } from './secureboot.js';
import { canonicalDebName } from '@leakless/apt-repo';
import { BuildEnvError, openBuildEnv, type BuildEnv } from './build-env.js';
import { remoteFetch, remotePush, remoteFetchable, type RemoteCache } from './remote-cache.js';
import { resolvePackages, ResolveError } from './resolve.js';
import { debRecords, fetchDebs, hostBuildEnv, openSavedRepo, SavedRepoError, saveRepo, type DebRecord, type PackageId } from './saved-repo.js';
import { makeSbom, rootfsPackages, SBOM_NAME, sbomPackageCount, validateSbom } from './sbom.js';
import { signRelease, type SignOptions } from './release-sign.js';
import { planRecord, type PlanRecord } from './manifest.js';

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
  /** The GRUB behind shim: Debian's signed one (default), or an unsigned build (the Secure Boot anti-test). */
  readonly uefiGrub?: UefiGrub;
  /** Sign the release: SHA512SUMS over the ISO, manifest and SBOM, and its detached OpenPGP signature. */
  readonly sign?: SignOptions;
  /** Save every .deb of the image and of the build tools as a local apt repository here (saved-repo.ts). */
  readonly saveRepo?: string;
  /**
   * Rebuild from a saved repository: its recorded build tools in a chroot,
   * in a network namespace with loopback only, the image's packages served
   * from it; the base is always rebuilt (a rebuild never trusts a cache).
   */
  readonly fromRepo?: string;
  /** The order apt is handed the package list (the two-builder check reverses it; it must not matter). */
  readonly packageOrder?: 'sorted' | 'reversed';
  /** Where the build comes from (the CLI records the git revision and the policy file). */
  readonly source?: BuildSource;
  /** Share bases through a turbo remote-cache server (remote-cache.ts); --fresh-base refuses it like the local cache. */
  readonly remoteCache?: RemoteCache;
}

export interface BuildSource {
  readonly revision: string;
  readonly dirty: boolean;
  /** The policy file, relative to the repository, and its sha256. */
  readonly config: { readonly path: string; readonly sha256: string };
}

export interface Manifest extends PlanRecord {
  readonly format: 1;
  readonly iso: FileDigest;
  readonly kernel: FileDigest & { readonly version: string };
  readonly initrd: FileDigest;
  readonly squashfs: { readonly base: FileDigest; readonly modules: FileDigest };
  readonly tarballs: { readonly chrootIncludes: FileDigest; readonly imageFiles: FileDigest };
  /** The base's cache key and how many packages the key's resolved set has. */
  readonly base: { readonly key: string; readonly resolved: number };
  readonly bootPlatforms: readonly string[];
  readonly tools: Readonly<Record<string, string>>;
  /** Every installed package and the sha256 of the .deb it was installed from. */
  readonly packages: readonly DebRecord[];
  /** The apt sources the base was resolved from (a rebuild resolves from them again); the image carries only tor-config's. */
  readonly aptSources: { readonly name: string; readonly content: string };
  /** The build environment: the build tools and everything they run on, at the versions installed where it was built. */
  readonly buildEnv: {
    readonly packages: readonly PackageId[];
    /** Supporting packages saved at the mirror's version because the installed one was gone (never a byte-shaping tool). */
    readonly substituted: readonly { readonly name: string; readonly installed: string; readonly saved: string }[];
    /** This build ran in a build environment made from a saved repository. */
    readonly rebuilt: boolean;
  };
  readonly source?: BuildSource;
  /** The UEFI boot chain as built into the ISO: shim (with its SBAT level), GRUB, MokManager. */
  readonly secureBoot: SecureBootRecord;
  /** The CycloneDX SBOM written next to the ISO, and how many Debian binary packages it lists. */
  readonly sbom: { readonly path: string; readonly packages: number; readonly sha256: string };
}

export interface IsoBuildResult {
  readonly ok: boolean;
  readonly iso: string;
  readonly manifestPath: string;
  readonly manifest: Manifest;
  readonly base: {
    readonly key: string;
    readonly cached: boolean;
    readonly dir: string;
    readonly stages: readonly StageTiming[];
    /** What the remote cache did: hit, miss, rejected (why), pushed, or not used. */
    readonly remote?: string;
  };
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

/** An argv prefix that runs a command somewhere else (the rebuild's chroot); [] = here. */
type Where = readonly string[];

async function firstLine(cmd: string, args: string[], where: Where = []): Promise<string> {
  const [bin, ...pre] = [...where, cmd];
  // stdout first, stderr only if stdout is empty: interleaving both ("all") raced,
  // and xorriso prints a different first line on each (a fresh-clone CI recorded
  // "xorriso 1.5.4" on one build and its stderr banner on the rebuild)
  const r = await execa(bin!, [...pre, ...args], { reject: false });
  return (
    (String(r.stdout ?? '').trim() !== '' ? String(r.stdout) : String(r.stderr ?? ''))
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? `unavailable (${cmd})`
  );
}

async function debVersion(pkg: string, where: Where = []): Promise<string> {
  const [bin, ...pre] = [...where, 'dpkg-query'];
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own ${field} format, not a template
  const r = await execa(bin!, [...pre, '-W', '-f', '${Version}', pkg], { reject: false });
  return r.exitCode === 0 ? r.stdout : 'not installed';
}

/** Versions of everything that writes bytes into the image. */
export async function toolVersions(where: Where = []): Promise<{ base: Record<string, string>; all: Record<string, string> }> {
  const base = {
    debos: await debVersion('debos', where),
    mmdebstrap: await firstLine('mmdebstrap', ['--version'], where),
    mksquashfs: await firstLine('mksquashfs', ['-version'], where),
  };
  return {
    base,
    all: {
      ...base,
      xorriso: await firstLine('xorriso', ['-version'], where),
      grub: await debVersion('grub-common', where),
      'grub-efi-amd64-signed': await debVersion('grub-efi-amd64-signed', where),
      'shim-signed': await debVersion('shim-signed', where),
      mtools: await debVersion('mtools', where),
      dosfstools: await debVersion('dosfstools', where),
      systemd: await debVersion('systemd', where),
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
  debos: DebosChoice & { readonly bin?: string },
): Promise<{ dir: string; key: string; cached: boolean; stages: readonly StageTiming[]; remote?: string }> {
  const rendered = baseRecipe(inp);
  const key = baseKey(rendered, inp);
  const rc = o.remoteCache;
  let remote: string | undefined = rc ? (o.freshBase ? 'refused (--fresh-base)' : undefined) : undefined;
  if (!o.freshBase) {
    const hit = await lookupEntry(o.cacheDir, BASE_KIND, key, { note });
    if (hit) {
      note(`base layer: cached (${hit.dir}, content sha256 ${hit.entry.content.sha256.slice(0, 16)}… verified)`);
      if (rc && (await remoteFetchable(rc, key)) === false) {
        const p = await remotePush(rc, hit);
        note(`base layer: pushed to the remote cache (${(p.bytes / 1e6).toFixed(1)} MB)`);
        remote = 'pushed';
      }
      return { dir: hit.dir, key, cached: true, stages: [], ...(remote ? { remote } : {}) };
    }
    if (rc) {
      const t = Date.now();
      const got = await remoteFetch(rc, o.cacheDir, BASE_KIND, key);
      if (got.kind === 'hit') {
        note(
          `base layer: from the remote cache in ${((Date.now() - t) / 1000).toFixed(1)}s (${(got.bytes / 1e6).toFixed(1)} MB, artifact tag and content digests verified)`,
        );
        return { dir: got.hit.dir, key, cached: true, stages: [], remote: 'hit' };
      }
      remote = got.kind === 'miss' ? 'miss' : `rejected: ${got.reason}`;
      note(`base layer: remote cache ${remote}`);
    }
  }
  note(o.freshBase ? 'base layer: rebuilding (--fresh-base)' : `base layer: not cached, building (key ${key.slice(0, 16)})`);
  const recipeDir = join(workDir, 'base');
  const recipePath = await writeRecipeDir(recipeDir, rendered);
  const tmp = await newEntryDir(o.cacheDir, BASE_KIND);
  try {
    const run = await runDebos({
      ...(debos.bin ? { debos: debos.bin } : {}),
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
    if (rc && !o.freshBase) {
      const p = await remotePush(rc, entry);
      note(`base layer: pushed to the remote cache (${(p.bytes / 1e6).toFixed(1)} MB)`);
      remote = remote ? `${remote}; rebuilt and pushed` : 'pushed';
    }
    return { dir: entry.dir, key, cached: false, stages: run.stages, ...(remote ? { remote } : {}) };
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

/**
 * What a build pins of the process it runs in, for itself and every tool it
 * starts: the builder's umask, locale and time zone must not reach the
 * image or its cache key. Seen: a builder whose locale was not installed
 * had perl print "Setting locale failed" as the first line of
 * `mmdebstrap --version`, which changed the base's key; a umask of 027
 * reaches the squashfs, kernel and initrd hard-linked into the ISO, whose
 * Rock Ridge entries keep modes.
 */
export const BUILD_ENV: Readonly<Record<string, string | undefined>> = { LC_ALL: 'C.UTF-8', LANG: undefined, LANGUAGE: undefined, TZ: 'UTC' };

/** Run fn with the build's umask and environment pinned (BUILD_ENV), restored afterwards. */
export async function withBuildEnv<T>(fn: () => Promise<T>): Promise<T> {
  const umask = process.umask(0o022);
  const saved = Object.fromEntries(Object.keys(BUILD_ENV).map((k) => [k, process.env[k]]));
  const set = (vars: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(vars)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  set(BUILD_ENV);
  try {
    return await fn();
  } finally {
    process.umask(umask);
    set(saved);
  }
}

export async function buildIso(assembly: Assembly, o: IsoBuildOptions): Promise<IsoBuildResult> {
  return withBuildEnv(() => build(assembly, o));
}

async function build(assembly: Assembly, o: IsoBuildOptions): Promise<IsoBuildResult> {
  const started = Date.now();
  const note = o.note ?? ((s: string) => process.stderr.write(`[iso] ${s}\n`));
  const progress = o.progress ?? ((label: string, total?: number) => createProgress({ label, ...(total !== undefined ? { total } : {}) }));
  const compression = o.compression ?? 'zstd';
  const plan: ImagePlan = planImage(assembly);
  const sde = plan.sourceDateEpoch;
  const saved = o.fromRepo
    ? await openSavedRepo(resolve(o.fromRepo)).catch((e: unknown) => {
        throw e instanceof SavedRepoError ? new IsoBuildError(e.message) : e;
      })
    : undefined;
  const accel: AccelDecision = saved
    ? {
        accel: 'tcg',
        accelReason: 'a rebuild needs no accelerator',
        debos: { mode: 'host', reason: 'a rebuild runs debos in the recorded build environment, a chroot (fakemachine needs the host kernel)' },
      }
    : await chooseBuildAccel(o, progress, note);
  const debos = accel.debos;
  note(`debos: ${debos.mode} mode${debos.backend ? ` (backend ${debos.backend})` : ''}: ${debos.reason}`);

  await mkdir(o.workRoot, { recursive: true });
  const workDir = resolve(join(o.workRoot, `iso-${process.pid}-${randomBytes(3).toString('hex')}`));
  await mkdir(join(workDir, 'logs'), { recursive: true });
  let keep = o.keepWork ?? false;
  let env: BuildEnv | undefined;
  try {
    // module output and the image's own files, each a deterministic tarball
    const tree = o.transformTree ? o.transformTree(assembly.tree) : assembly.tree;
    const includesTar = await tarballOf(tree, sde);
    const bundle = await bundleSelftest();
    const extraFiles = imageFiles(plan, bundle, new Set(tree.files.map((f) => f.path)));
    const imageTree = buildTree([emission('image', { files: extraFiles })]);
    const imageTar = await tarballOf(imageTree, sde);

    if (saved) {
      await mkdir(o.cacheDir, { recursive: true });
      env = await openBuildEnv({
        repoDir: saved.dir,
        root: resolve(join(o.workRoot, `env-${process.pid}-${randomBytes(3).toString('hex')}`)),
        packages: saved.manifest.buildEnv.packages.map((p) => p.name),
        binds: [workDir, resolve(o.cacheDir)],
        suite: plan.suite,
        note,
      }).catch((e: unknown) => {
        throw e instanceof BuildEnvError ? new IsoBuildError(e.message, workDir) : e;
      });
    }
    const versions = await toolVersions(env?.run ?? []);
    const sources = saved
      ? saved.manifest.aptSources
      : await resolveSources(o.mirror, plan.suite).catch((e: unknown) => {
          throw e instanceof SourcesError ? new IsoBuildError(e.message) : e;
        });
    // what the package set resolves to where the packages come from now (the saved repository of a rebuild)
    const resolveFrom = saved ? { name: 'saved-repo.list', content: `deb [trusted=yes] file:${join(saved.dir, 'image')} ./\n` } : sources;
    const resolveState = join(o.cacheDir, 'apt-resolve', createHash('sha256').update(resolveFrom.content).digest('hex').slice(0, 16));
    const resolved = await resolvePackages({
      sources: resolveFrom,
      packages: plan.packages,
      stateDir: resolveState,
    }).catch((e: unknown) => {
      throw e instanceof ResolveError ? new IsoBuildError(e.message) : e;
    });
    note(`package set: ${resolved.length} packages resolved`);
    const base = await ensureBase(
      {
        plan,
        sources,
        compression,
        toolVersions: versions.base,
        resolved,
        ...(env ? { fetch: env.fetch } : {}),
        ...(o.packageOrder ? { packageOrder: o.packageOrder } : {}),
      },
      saved ? { ...o, freshBase: true } : o,
      workDir,
      progress,
      note,
      env ? { ...debos, bin: env.debos } : debos,
    );

    const top = topRecipe({
      plan,
      compression,
      includesTar,
      imageTar,
      kernelArgs: KERNEL_ARGS,
      uefiGrub: o.uefiGrub ?? 'signed',
      menuTitle: `leakless ${plan.selftest.release} (${plan.selftest.policy})`,
    });
    const rendered = o.topLayer ? o.topLayer(top, plan) : top;
    const topDir = join(workDir, 'image');
    const topPath = await writeRecipeDir(topDir, rendered);
    await linkBase(base.dir, join(topDir, 'base'));
    const outDir = join(workDir, 'out');
    const image = await runDebos({
      ...(env ? { debos: env.debos } : {}),
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
    const { results, installed } = await withStackedRootfs(layers, join(workDir, 'mnt-verify'), async (root) => ({
      results: await verifyRootfs({ ...assembly, tree }, plan, fullTree, root),
      installed: await rootfsPackages(root),
    }));
    const failed = results.filter((r) => !r.ok);
    vp.end(failed.length === 0);
    vp.stage('iso');
    const platforms = await elToritoPlatforms(isoTmp);
    const bootOk = platforms.includes('BIOS') && platforms.includes('UEFI');
    const verifyStages = vp.finish(bootOk);

    // the build tools' .debs, fetched before the manifest is written: it records what was saved
    const toolDebs = o.saveRepo && !saved ? await fetchDebs(await hostBuildEnv(), join(o.cacheDir, 'tool-debs'), note) : undefined;
    const core: Omit<Manifest, 'sbom'> = {
      format: 1,
      ...planRecord(plan),
      iso: await digestFile(isoTmp, ISO_NAME),
      kernel: { ...(await digestFile(join(base.dir, 'vmlinuz'), 'live/vmlinuz')), version: (await readFile(join(base.dir, 'kernel-version'), 'utf8')).trim() },
      initrd: await digestFile(join(base.dir, 'initrd.img'), 'live/initrd.img'),
      squashfs: {
        base: await digestFile(layers[0]!, 'live/filesystem.squashfs'),
        modules: await digestFile(layers[1]!, `live/${MODULE_LAYER}`),
      },
      tarballs: { chrootIncludes: digestBuffer(includesTar, 'chroot-includes.tar'), imageFiles: digestBuffer(imageTar, 'leakless-image.tar') },
      base: { key: base.key, resolved: resolved.length },
      bootPlatforms: platforms,
      tools: versions.all,
      packages: await debRecords(join(base.dir, 'debs'), parsePackages(await readFile(join(base.dir, 'packages.tsv'), 'utf8'))),
      aptSources: sources,
      buildEnv: saved
        ? { ...saved.manifest.buildEnv, rebuilt: true }
        : toolDebs
          ? { packages: toolDebs.packages, substituted: toolDebs.substituted, rebuilt: false }
          : { packages: await hostBuildEnv(), substituted: [], rebuilt: false },
      ...(o.source ? { source: o.source } : {}),
      secureBoot: await secureBootRecord(join(outDir, 'iso', 'boot', 'grub', 'efi.img')),
    };
    // the SBOM names the ISO by its sha256, the manifest names the SBOM by its own
    const sbom = makeSbom({
      packages: installed,
      files: fullTree.files,
      policy: plan.selftest.policy,
      release: plan.selftest.release,
      suite: plan.suite,
      sourceDateEpoch: sde,
      iso: { name: ISO_NAME, sha256: core.iso.sha256 },
    });
    const sbomInvalid = await validateSbom(sbom);
    if (sbomInvalid) throw new IsoBuildError(`the SBOM does not validate against the CycloneDX schema: ${sbomInvalid}`, workDir);
    const manifest: Manifest = {
      ...core,
      sbom: { path: SBOM_NAME, packages: sbomPackageCount(sbom), sha256: digestBuffer(Buffer.from(sbom), SBOM_NAME).sha256 },
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
    await writeFile(join(o.outDir, SBOM_NAME), sbom);
    if (o.saveRepo) {
      const imageDebs = manifest.packages.map((p) => join(base.dir, 'debs', canonicalDebName(p.name, p.version, p.arch)));
      const bytes = await saveRepo({
        dir: resolve(o.saveRepo),
        imageDebs,
        toolDebs: toolDebs!.files,
        manifestPath,
        sourceDateEpoch: sde,
        suite: plan.suite,
        archiveLists: join(resolveState, 'lists'),
      });
      note(`saved repository: ${o.saveRepo} (${imageDebs.length} image and ${toolDebs!.files.length} build-tool packages, ${(bytes / 1e6).toFixed(1)} MB)`);
    }
    if (o.sign) {
      const s = await signRelease(o.outDir, [ISO_NAME, basename(manifestPath), SBOM_NAME], o.sign);
      note(`signed: ${s.sums} and ${s.signature} (key ${o.sign.key})`);
    }
    return {
      ok: verified,
      iso: isoPath,
      manifestPath,
      manifest,
      base: { key: base.key, cached: base.cached, dir: base.dir, stages: base.stages, ...(base.remote ? { remote: base.remote } : {}) },
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
    await env?.close();
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

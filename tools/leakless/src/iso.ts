// `leakless iso`: the release engineer's one command. Root only (it mounts,
// chroots and runs debos); installs the Debian build tools it lacks; exit 0
// built and verified, 1 build or verification failed, 2 bad input.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { assemble, formatIssue, readPolicyFile, type Assembly } from '@leakless/policy';
import { formatDuration, type StageTiming } from '@leakless/debos-ts';
import { parseArgs, UsageError } from './args.js';
import { debsTopLayer } from './deb.js';
import { allModules } from '@leakless/crosscheck';
import { table } from './table.js';
import {
  ACCEL_FLAGS,
  buildIso,
  FAKEMACHINE_FLAGS,
  IsoBuildError,
  PlanError,
  type AccelFlag,
  type BuildSource,
  type FakemachineFlag,
  type IsoBuildResult,
  type RemoteCache,
} from '@leakless/image';

export interface CommandIo {
  out(s: string): void;
  err(s: string): void;
}

export const ISO_HELP = `usage: leakless iso [--config FILE] [--out DIR] [--cache DIR] [--mirror URL|FILE] [--fresh-base]
                    [--compression zstd|xz] [--accel auto|kvm|tcg] [--fakemachine auto|on|off]
                    [--keep-work] [--keep-going] [--no-install] [--from-debs] [--json]
                    [--save-repo DIR] [--from-repo DIR] [--sign-key KEY] [--package-order sorted|reversed]
                    [--remote-cache URL [--remote-cache-netns NS]]

Builds dist/leakless-amd64.iso (BIOS+UEFI hybrid live ISO, bit-reproducible)
and dist/leakless-amd64.manifest.json from the policy, with debos. debos runs
in fakemachine only when a KVM guest boots a real Debian kernel here and
fakemachine's host files (the host kernel, its modules, busybox,
systemd-resolved) are present; otherwise --disable-fakemachine. The base layer
(mmdebstrap, fixed users, packages) is cached under the hash of its inputs;
the module layer (chroot-includes, units) is rebuilt every time in seconds.
The built root filesystem is verified: every module's static assertions,
users and uids, units enabled and ordered, files with their modes.

Runs as root. Installs missing Debian build tools first (without Recommends).

  --config FILE        policy file; default image-config/default.yaml
  --out DIR            output directory; default dist
  --cache DIR          base layer cache; default $LEAKLESS_CACHE or dist/cache
  --mirror URL|FILE    apt mirror URL or sources file; default the host's Debian sources
  --fresh-base         rebuild the base layer even if it is cached
  --compression ALG    squashfs compressor: zstd (default, fast) or xz (smaller)
  --accel A            auto (default: KVM only if a KVM guest boots a Debian kernel), kvm or tcg
  --fakemachine F      auto (default), on (fail if it cannot start) or off (--disable-fakemachine)
  --keep-work          keep the work directory (recipes, logs) after success
  --from-debs          make the module layer by installing the leakless Debian packages
                       (leakless deb) from a local repository, instead of the tarball
  --keep-going         write the ISO even if verification fails (the exit code is still 1)
  --save-repo DIR      save every .deb of the image and of the build tools as local apt
                       repositories in DIR (DIR/image, DIR/tools, a copy of the manifest)
  --from-repo DIR      rebuild from a saved repository: its recorded tools in a chroot, in a
                       network namespace with loopback only; the base is always rebuilt
  --sign-key KEY       write SHA512SUMS (ISO, manifest, SBOM) and SHA512SUMS.sign, a detached
                       OpenPGP signature by KEY from gpg's keyring ($GNUPGHOME)
  --package-order O    the order apt is handed the package list: sorted (default) or reversed
  --remote-cache URL   share base layers through a turbo remote-cache server (turborepo-remote-cache):
                       fetched when not cached here, pushed after a build; every artifact carries an
                       HMAC tag (turbo's x-artifact-tag) checked before use. Needs
                       LEAKLESS_REMOTE_CACHE_TOKEN and LEAKLESS_REMOTE_CACHE_KEY (the builders' shared
                       signing secret); LEAKLESS_REMOTE_CACHE_TEAM (default leakless). --fresh-base
                       refuses it (release builds)
  --remote-cache-netns NS  reach the server from inside network namespace NS
  --no-install         do not install missing Debian tools
  --json               print the build report as JSON

exit codes: 0 built and verified, 1 build or verification failed, 2 bad input`;

const here = dirname(fileURLToPath(import.meta.url));
/** The CLI's own install script (tools/leakless/install-deps.sh), from src/ or dist/. */
export const INSTALL_DEPS = join(here, '..', 'install-deps.sh');
/** The CLI's bin script, for commands that run the CLI in a cold process (bench). */
export const CLI_BIN = join(here, '..', 'bin', 'leakless.js');

export function requireRoot(what: string): string | undefined {
  if (process.getuid?.() === 0) return undefined;
  return `${what} must run as root: it mounts file systems, runs debos/mmdebstrap in chroots and loop-mounts images. Run it as root (e.g. sudo npm run iso).`;
}

export async function installDeps(group: 'e2e' | 'test', io: CommandIo): Promise<boolean> {
  if (!existsSync(INSTALL_DEPS)) {
    io.err(`leakless: ${INSTALL_DEPS} not found`);
    return false;
  }
  const r = await execa('bash', [INSTALL_DEPS, group], { reject: false, all: true });
  if (r.all) io.err(r.all);
  if (r.exitCode !== 0) io.err(`leakless: installing the Debian build tools failed (exit ${r.exitCode}); see above`);
  return r.exitCode === 0;
}

export async function loadAssembly(config: string | undefined, io: CommandIo): Promise<Assembly | undefined> {
  const file = resolve(config ?? 'image-config/default.yaml');
  if (config === undefined && !existsSync(file)) throw new UsageError('--config: no image-config/default.yaml in this directory; pass --config FILE');
  const result = await readPolicyFile(file);
  if (!result.ok) {
    for (const i of result.issues) io.err(`leakless: ${file}: ${formatIssue(i)}`);
    return undefined;
  }
  return assemble(result.policy, allModules);
}

export function stageRows(group: string, stages: readonly StageTiming[]): string[][] {
  return stages.map((s) => [group, s.name, formatDuration(s.ms), s.ok ? 'ok' : 'FAILED']);
}

/** A --accel / --fakemachine value, or a usage error naming the flag. */
export function choiceFlag<T extends string>(flags: Record<string, unknown>, name: string, choices: readonly T[]): T | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v))
    throw new UsageError(`--${name} must be ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)} (got "${String(v)}")`);
  return v as T;
}

/** The flags of the commands that build an image (iso, bench): how debos and QEMU run, and the report's form. */
export const BUILD_FLAGS = { accel: 'string', fakemachine: 'string', json: 'boolean' } as const;

/** --accel and --fakemachine, checked (undefined: auto). */
export function buildChoices(flags: Record<string, unknown>): { accel: AccelFlag | undefined; fakemachine: FakemachineFlag | undefined } {
  return { accel: choiceFlag<AccelFlag>(flags, 'accel', ACCEL_FLAGS), fakemachine: choiceFlag<FakemachineFlag>(flags, 'fakemachine', FAKEMACHINE_FLAGS) };
}

export function isoReport(r: IsoBuildResult): string {
  const m = r.manifest;
  const failed = r.verify.results.filter((x) => !x.ok);
  const lines = [
    `accelerator: ${r.accel.accel} (${r.accel.accelReason}); debos: ${r.accel.debos.mode} (${r.accel.debos.reason})`,
    '',
    table(
      ['layer', 'stage', 'time', ''],
      [
        ...(r.base.cached ? [['base', `cached (${r.base.key.slice(0, 16)})`, '-', 'ok']] : stageRows('base', r.base.stages)),
        ...stageRows('image', r.image.stages),
        ...stageRows('verify', r.verify.stages),
      ],
    ),
    '',
    `verification on the built root filesystem: ${r.verify.results.length - failed.length} ok, ${failed.length} failed`,
    ...failed.map((f) => `  FAILED ${f.id}: ${f.detail}`),
    `boot platforms: ${m.bootPlatforms.join(' + ')}; self-test carries ${m.selftest.assertions} runtime assertions`,
    '',
    table(
      ['artifact', 'bytes', 'sha256'],
      [
        [r.iso, String(m.iso.bytes), m.iso.sha256],
        [m.kernel.path + ` (${m.kernel.version})`, String(m.kernel.bytes), m.kernel.sha256],
        [m.initrd.path, String(m.initrd.bytes), m.initrd.sha256],
        [m.squashfs.base.path, String(m.squashfs.base.bytes), m.squashfs.base.sha256],
        [m.squashfs.modules.path, String(m.squashfs.modules.bytes), m.squashfs.modules.sha256],
        [m.tarballs.chrootIncludes.path, String(m.tarballs.chrootIncludes.bytes), m.tarballs.chrootIncludes.sha256],
      ],
    ),
    '',
    `${m.packages.length} packages installed; manifest: ${r.manifestPath}`,
    `total ${formatDuration(r.totalMs)}`,
  ];
  return lines.join('\n');
}

/** The git revision of the checkout the build runs from, and the policy file (relative to the checkout) with its sha256. */
export async function buildSource(config: string | undefined): Promise<BuildSource | undefined> {
  const file = resolve(config ?? 'image-config/default.yaml');
  const top = await execa('git', ['-C', dirname(file), 'rev-parse', '--show-toplevel'], { reject: false });
  if (top.exitCode !== 0) return undefined;
  const rev = await execa('git', ['-C', top.stdout, 'rev-parse', 'HEAD'], { reject: false });
  const status = await execa('git', ['-C', top.stdout, 'status', '--porcelain', '--untracked-files=no'], { reject: false });
  if (rev.exitCode !== 0) return undefined;
  return {
    revision: rev.stdout.trim(),
    dirty: status.stdout.trim() !== '',
    config: { path: relative(top.stdout, file), sha256: createHash('sha256').update(readFileSync(file)).digest('hex') },
  };
}

/** --remote-cache and its secrets (from the environment, never the command line). */
export function remoteCacheOf(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): RemoteCache | undefined {
  const url = flags['remote-cache'];
  if (typeof url !== 'string') {
    if (flags['remote-cache-netns'] !== undefined) throw new UsageError('--remote-cache-netns: only with --remote-cache');
    return undefined;
  }
  if (!/^https?:\/\/[^\s/]+/.test(url)) throw new UsageError(`--remote-cache: not an http(s) URL: ${url}`);
  const token = env.LEAKLESS_REMOTE_CACHE_TOKEN;
  const signatureKey = env.LEAKLESS_REMOTE_CACHE_KEY;
  if (!token) throw new UsageError("LEAKLESS_REMOTE_CACHE_TOKEN: --remote-cache needs the server's token in this variable");
  if (!signatureKey) throw new UsageError("LEAKLESS_REMOTE_CACHE_KEY: --remote-cache needs the builders' shared artifact-signing secret in this variable");
  const netns = flags['remote-cache-netns'];
  return { url, token, signatureKey, team: env.LEAKLESS_REMOTE_CACHE_TEAM ?? 'leakless', ...(typeof netns === 'string' ? { netns } : {}) };
}

export async function isoCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const { flags, positionals } = parseArgs(argv, {
    config: 'string',
    out: 'string',
    cache: 'string',
    work: 'string',
    mirror: 'string',
    'fresh-base': 'boolean',
    compression: 'string',
    'keep-work': 'boolean',
    'keep-going': 'boolean',
    'no-install': 'boolean',
    'from-debs': 'boolean',
    'save-repo': 'string',
    'from-repo': 'string',
    'sign-key': 'string',
    'package-order': 'string',
    'remote-cache': 'string',
    'remote-cache-netns': 'string',
    ...BUILD_FLAGS,
  });
  if (positionals.length) throw new UsageError(`iso takes no arguments (got "${positionals[0]}")`);
  const { accel, fakemachine } = buildChoices(flags);
  const packageOrder = choiceFlag<'sorted' | 'reversed'>(flags, 'package-order', ['sorted', 'reversed']);
  const compression = (flags.compression as string | undefined) ?? 'zstd';
  if (compression !== 'zstd' && compression !== 'xz') throw new UsageError(`--compression must be zstd or xz (got "${compression}")`);
  const notRoot = requireRoot('leakless iso');
  if (notRoot) {
    io.err(`leakless: ${notRoot}`);
    return 2;
  }
  if (typeof flags['from-repo'] === 'string' && !existsSync(flags['from-repo'])) throw new UsageError(`--from-repo: ${flags['from-repo']} does not exist`);
  const assembly = await loadAssembly(flags.config as string | undefined, io);
  if (!assembly) return 2;
  if (!flags['no-install'] && !(await installDeps('e2e', io))) return 1;
  const out = resolve((flags.out as string | undefined) ?? 'dist');
  const source = await buildSource(flags.config as string | undefined);
  const remoteCache = remoteCacheOf(flags);
  try {
    const r = await buildIso(assembly, {
      outDir: out,
      cacheDir: resolve((flags.cache as string | undefined) ?? process.env.LEAKLESS_CACHE ?? join('dist', 'cache')),
      workRoot: resolve((flags.work as string | undefined) ?? join(out, 'work')),
      ...(typeof flags.mirror === 'string' ? { mirror: flags.mirror } : {}),
      freshBase: Boolean(flags['fresh-base']),
      compression,
      keepWork: Boolean(flags['keep-work']),
      verify: flags['keep-going'] ? 'report' : 'enforce',
      ...(accel ? { accel } : {}),
      ...(fakemachine ? { fakemachine } : {}),
      ...(typeof flags['save-repo'] === 'string' ? { saveRepo: resolve(flags['save-repo']) } : {}),
      ...(typeof flags['from-repo'] === 'string' ? { fromRepo: resolve(flags['from-repo']) } : {}),
      ...(typeof flags['sign-key'] === 'string' ? { sign: { key: flags['sign-key'] } } : {}),
      ...(packageOrder ? { packageOrder } : {}),
      ...(source ? { source } : {}),
      ...(remoteCache ? { remoteCache } : {}),
      ...(flags['from-debs'] ? { topLayer: await debsTopLayer(assembly, join(out, 'work', 'from-debs'), (t) => io.err(`[iso] ${t}`)) } : {}),
    });
    if (flags.json) {
      io.out(
        JSON.stringify(
          {
            ok: r.ok,
            iso: r.iso,
            manifest: r.manifestPath,
            accel: r.accel,
            base: r.base,
            image: r.image,
            verify: r.verify,
            totalMs: r.totalMs,
            sha256: r.manifest.iso.sha256,
            bytes: r.manifest.iso.bytes,
          },
          null,
          2,
        ),
      );
    } else io.out(isoReport(r));
    return r.ok ? 0 : 1;
  } catch (e) {
    if (e instanceof PlanError) {
      io.err(`leakless: inconsistent inputs: ${e.message}`);
      return 2;
    }
    if (e instanceof IsoBuildError) {
      io.err(`leakless iso: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

// The two debos recipes of the image, as pure functions of the plan.
//
// base: mmdebstrap + fixed users + packages + clean-up, exported as a squashfs
//       with its kernel and initrd. Cached under the sha256 of everything
//       that goes into it (the recipe text, its scripts and data, the apt
//       sources, the tool versions), so it is built once per input change.
// top:  the modules' chroot-includes tarball and the image's own files (both
//       via unpack: overlay would reset mtimes), units enabled, squashed into
//       a small second squashfs that live-boot stacks over the base
//       (/live/filesystem.module), then the hybrid ISO. Seconds, not minutes.
import { recipe, renderRecipe, run, unpack, type Recipe } from '@leakless/debos-ts';
import { sha256 } from '@leakless/policy';
import type { ImagePlan } from './iso-plan.js';
import { INITRAMFS_COMPRESSOR, SELFTEST_KERNEL_ARG } from './iso-plan.js';
import { LIVE_MEDIA_ONLY_HOOK } from './iso-scripts.js';
import { CLEANUP_SH, DEBS_SH, EXPORT_SH, LAYER_SH, MKISO_SH, PACKAGES_SH, STAGE_SH, USERS_SH } from './iso-scripts.js';

/** Bumped when the layout of a cached base changes (2: the installed .debs are part of it). */
export const BASE_FORMAT = 2;
/** The directory of the recipe that holds the one apt sources file mmdebstrap fetches from. */
const FETCH_DIR = 'apt/fetch';
const PACKAGE_LIST = 'scripts/packages.txt';
export const VOLUME_ID = 'LEAKLESS';
export const MODULE_LAYER = 'leakless-modules.squashfs';
export const ISO_NAME = 'leakless-amd64.iso';

/** Files of a recipe directory: relative path → content and mode. */
export type RecipeFiles = ReadonlyMap<string, { readonly content: string | Buffer; readonly mode: number }>;

export interface RenderedRecipe {
  readonly recipe: Recipe;
  readonly yaml: string;
  readonly files: RecipeFiles;
}

export interface BaseInputs {
  readonly plan: ImagePlan;
  /** The apt sources the base is resolved from (deb822 or one-line); in the key, never in the image, whose only sources are tor-config's. */
  readonly sources: { readonly name: string; readonly content: string };
  /**
   * Where the packages are fetched from when that is not `sources`: a
   * rebuild fetches from its saved repository, yet the image must carry the
   * original sources. Not part of the key: where the same .debs come from
   * does not change the base.
   */
  readonly fetch?: { readonly name: string; readonly content: string };
  /** The order the package list is handed to apt (a builder that should not matter; the reproducibility check reverses it). */
  readonly packageOrder?: 'sorted' | 'reversed';
  /** squashfs compressor: zstd (fast, the default) or xz (smaller, slower). */
  readonly compression: 'zstd' | 'xz';
  /** `mmdebstrap --version`, `mksquashfs -version`, … : a tool change is an input change. */
  readonly toolVersions: Readonly<Record<string, string>>;
  /** What apt resolves the package set to on the mirror now (every package, version): a mirror that moved is a new key. */
  readonly resolved?: readonly { readonly name: string; readonly version: string; readonly arch: string }[];
}

// Documentation, man pages and translations are not needed on a live system
// and are a large share of the squashfs (the verified pipeline used the same
// excludes; docs/design.md#base-layer). Copyright files stay.
const DPKG_EXCLUDES = [
  'path-exclude=/usr/share/doc/*',
  'path-include=/usr/share/doc/*/copyright',
  'path-exclude=/usr/share/man/*',
  'path-exclude=/usr/share/info/*',
  'path-exclude=/usr/share/locale/*',
  'path-exclude=/usr/share/lintian/*',
];

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function squashfsOptions(compression: 'zstd' | 'xz'): string {
  // Tails' release options for xz; zstd is Tails' "fastcomp" for development builds
  return compression === 'xz' ? '-comp xz -Xbcj x86 -b 1M -Xdict-size 1M' : '-comp zstd -b 1M';
}

export function usersTsv(plan: ImagePlan): string {
  return plan.users.map((u) => [u.name, u.uid, u.gid, u.home, u.shell, u.createHome ? 'create-home' : 'no-home', u.role].join('\t') + '\n').join('');
}

export function baseRecipe(inp: BaseInputs): RenderedRecipe {
  const { plan } = inp;
  const sde = plan.sourceDateEpoch;
  const fetch = inp.fetch ?? inp.sources;
  if (!/^[A-Za-z0-9._-]+\.(list|sources)$/.test(fetch.name) || !/^[A-Za-z0-9._-]+\.(list|sources)$/.test(inp.sources.name))
    throw new Error(`apt sources file names must end in .list or .sources: ${fetch.name}, ${inp.sources.name}`);
  // the .debs stay in the apt cache (essential/unlink, cleanup/apt/cache) until debs.sh has saved them;
  // zstd (LIVE_PACKAGES) is in the chroot before the kernel's package makes the initramfs, whatever order apt picks
  const bootstrap = [
    `SOURCE_DATE_EPOCH=${sde} mmdebstrap --mode=root --variant=minbase --skip=essential/unlink --skip=cleanup/apt/cache --include=${INITRAMFS_COMPRESSOR}`,
    ...DPKG_EXCLUDES.map((o) => `  --dpkgopt=${sh(o)}`),
    `  ${plan.suite} "$ROOTDIR" "$RECIPEDIR"/${FETCH_DIR}/*`,
  ].join(' \\\n');
  const order = inp.packageOrder === 'reversed' ? [...plan.packages].reverse() : plan.packages;
  const r = recipe(
    'amd64',
    [
      run({ description: 'bootstrap', command: bootstrap + '\n' }),
      run({ description: 'users', chroot: true, script: 'scripts/users.sh' }),
      // before the kernel's package: its initramfs is made with the hook in place
      run({
        description: 'initramfs-hook',
        command: 'install -D -m 0755 "$RECIPEDIR/scripts/live-media-only" "$ROOTDIR/etc/initramfs-tools/hooks/zz-leakless-live-media-only"\n',
      }),
      run({ description: 'packages', chroot: true, script: 'scripts/packages.sh' }),
      run({ description: 'debs', script: 'scripts/debs.sh' }),
      run({ description: 'cleanup', chroot: true, script: 'scripts/cleanup.sh' }),
      run({ description: 'export', script: 'scripts/export.sh' }),
      run({
        description: 'squashfs',
        // /boot travels next to the squashfs (the ISO's /live), not inside it
        command: `SOURCE_DATE_EPOCH=${sde} mksquashfs "$ROOTDIR" "$ARTIFACTDIR/filesystem.squashfs" -noappend ${squashfsOptions(inp.compression)} -e boot\n`,
      }),
    ],
    [
      'leakless base layer (generated by `leakless iso`; do not edit)',
      `policy ${plan.selftest.policy}, suite ${plan.suite}, SOURCE_DATE_EPOCH ${sde}`,
      'chroot commands get SOURCE_DATE_EPOCH through debos -e (initramfs, useradd, dpkg)',
    ],
  );
  const files = new Map<string, { content: string; mode: number }>([
    [`${FETCH_DIR}/${fetch.name}`, { content: fetch.content, mode: 0o644 }],
    // in the key (the mirror the base came from), not installed: cleanup.sh removes every build source
    [`scripts/image-sources/${inp.sources.name}`, { content: inp.sources.content, mode: 0o644 }],
    ['scripts/packages.sh', { content: PACKAGES_SH, mode: 0o755 }],
    [PACKAGE_LIST, { content: order.map((p) => `${p}\n`).join(''), mode: 0o644 }],
    ['scripts/debs.sh', { content: DEBS_SH, mode: 0o755 }],
    ['scripts/users.sh', { content: USERS_SH, mode: 0o755 }],
    ['scripts/live-media-only', { content: LIVE_MEDIA_ONLY_HOOK, mode: 0o755 }],
    ['scripts/users.tsv', { content: usersTsv(plan), mode: 0o644 }],
    ['scripts/cleanup.sh', { content: CLEANUP_SH, mode: 0o755 }],
    ['scripts/export.sh', { content: EXPORT_SH, mode: 0o755 }],
  ]);
  return { recipe: r, yaml: renderRecipe(r), files };
}

/**
 * Every byte that can change what the base contains, one line each. Where
 * the packages are fetched from and the order apt is handed them are left
 * out (they must not matter, and the reproducibility checks prove they do
 * not); the package set is in, sorted, and so is what apt resolved it to.
 */
function baseKeyParts(b: RenderedRecipe, inp: BaseInputs): string[] {
  const parts: string[] = [`format ${BASE_FORMAT}`, `recipe ${sha256(b.yaml)}`, `packages ${[...inp.plan.packages].sort().join(' ')}`];
  for (const [path, f] of [...b.files.entries()].sort(([a], [c]) => (a < c ? -1 : 1))) {
    if (path.startsWith(`${FETCH_DIR}/`) || path === PACKAGE_LIST) continue;
    parts.push(`file ${path} ${f.mode.toString(8)} ${sha256(f.content)}`);
  }
  for (const k of Object.keys(inp.toolVersions).sort()) parts.push(`tool ${k} ${inp.toolVersions[k]}`);
  if (inp.resolved) parts.push(`resolved ${sha256(inp.resolved.map((p) => `${p.name} ${p.version} ${p.arch}\n`).join(''))}`);
  return parts;
}

/** The cache key of the base. */
export function baseKey(b: RenderedRecipe, inp: BaseInputs): string {
  return sha256(baseKeyParts(b, inp).join('\n'));
}

/** The inputs a cached base records (what made it: the key's parts, and the recipe and apt sources in full). */
export function baseInputsRecord(b: RenderedRecipe, inp: BaseInputs): Record<string, unknown> {
  return {
    keyParts: baseKeyParts(b, inp),
    recipe: b.yaml,
    sources: inp.sources,
    tools: inp.toolVersions,
    policy: inp.plan.selftest.policy,
    suite: inp.plan.suite,
  };
}

export interface TopInputs {
  readonly plan: ImagePlan;
  readonly compression: 'zstd' | 'xz';
  readonly includesTar: Buffer;
  readonly imageTar: Buffer;
  readonly kernelArgs: readonly string[];
  readonly menuTitle: string;
  /** The GRUB behind shim on the UEFI path: Debian's signed one, or (anti-test only) an unsigned grub-mkimage build. */
  readonly uefiGrub?: UefiGrub;
}

export type UefiGrub = 'signed' | 'unsigned';

export function grubCfg(title: string, kernelArgs: readonly string[]): string {
  const args = kernelArgs.join(' ');
  return `# leakless boot menu (generated by \`leakless iso\`)
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=2
set default=0

menuentry "${title}" {
  linux /live/vmlinuz ${args}
  initrd /live/initrd.img
}

menuentry "${title}: self-test (prints the result on the console)" {
  linux /live/vmlinuz ${args} ${SELFTEST_KERNEL_ARG}
  initrd /live/initrd.img
}
`;
}

/** live-boot arguments; the last console= becomes /dev/console, so serial comes last (docs/design.md#kernel-arguments). */
export const KERNEL_ARGS = ['boot=live', 'nopersistence', 'noeject', 'quiet', 'console=tty0', 'console=ttyS0,115200n8'] as const;

/** The units arguments of the layer scripts (layer.sh, layer-debs.sh): `--mask U` for each masked unit, then the units to enable. */
export const unitArgs = (masked: readonly string[], enabled: readonly string[]): string => [...masked.map((u) => `--mask ${u}`), ...enabled].join(' ');

export function topRecipe(inp: TopInputs): RenderedRecipe {
  const sde = inp.plan.sourceDateEpoch;
  if (/["\\\n]/.test(inp.menuTitle)) throw new Error('menu title must not contain quotes, backslashes or newlines');
  const r = recipe(
    'amd64',
    [
      unpack({ description: 'includes', origin: 'recipe', file: 'chroot-includes.tar' }),
      unpack({ description: 'image-files', origin: 'recipe', file: 'leakless-image.tar' }),
      run({ description: 'units', script: `scripts/layer.sh ${unitArgs(inp.plan.maskedUnits, inp.plan.units)}` }),
      run({
        description: 'squashfs-modules',
        // no xattrs: the layer has none of its own, and overlayfs' trusted.* must never leak in
        command: `SOURCE_DATE_EPOCH=${sde} mksquashfs "$ROOTDIR" "$ARTIFACTDIR/${MODULE_LAYER}" -noappend ${squashfsOptions(inp.compression)} -no-xattrs\n`,
      }),
      run({ description: 'stage', postprocess: true, script: 'scripts/stage.sh iso' }),
      run({
        description: 'iso',
        postprocess: true,
        command: `SOURCE_DATE_EPOCH=${sde} "$RECIPEDIR/scripts/mkiso.sh" iso ${ISO_NAME} ${VOLUME_ID} ${inp.uefiGrub ?? 'signed'}\n`,
      }),
    ],
    ['leakless module layer and ISO (generated by `leakless iso`; do not edit)', `policy ${inp.plan.selftest.policy}, SOURCE_DATE_EPOCH ${sde}`],
  );
  const files = new Map<string, { content: string | Buffer; mode: number }>([
    ['chroot-includes.tar', { content: inp.includesTar, mode: 0o644 }],
    ['leakless-image.tar', { content: inp.imageTar, mode: 0o644 }],
    ['grub.cfg', { content: grubCfg(inp.menuTitle, inp.kernelArgs), mode: 0o644 }],
    ['scripts/layer.sh', { content: LAYER_SH, mode: 0o755 }],
    ['scripts/stage.sh', { content: STAGE_SH, mode: 0o755 }],
    ['scripts/mkiso.sh', { content: MKISO_SH, mode: 0o755 }],
  ]);
  return { recipe: r, yaml: renderRecipe(r), files };
}

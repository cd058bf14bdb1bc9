// The module layer from the Debian packages (`leakless iso --from-debs`)
// instead of the chroot-includes tarball: the same top recipe, with the
// tarball's unpack and the unit links replaced by an apt transaction that
// installs `leakless` from a local repository on an overlay of the cached
// base. What the packages' maintainer scripts change (diversions, unit links,
// masks, dpkg's database) lands in the layer; the verification and the
// self-test are the image's usual ones, on the emitted files. Everything the
// packages need is already in the base (the plan's packages are the
// emissions' Depends), so the transaction downloads nothing.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { recipe, renderRecipe, run, type Action } from '@leakless/debos-ts';
import { type RenderedRecipe, unitArgs } from './iso-recipes.js';

/** Where the recipe carries the repository, and where the chroot sees it during the install. */
export const DEBS_REPO_DIR = 'debs';
export const META_PACKAGE = 'leakless';

/**
 * Host: install the packages into the layer. $ROOTDIR (the image's own
 * files, unpacked before) is the upper directory of an overlay on the
 * read-only base: every file the install writes lands in the layer. What apt
 * and dpkg leave behind that would make two builds differ is removed;
 * anything the install deleted from the base (a whiteout) fails the build,
 * because a layer cannot express a deletion to live-boot.
 * Usage: layer-debs.sh [--mask UNIT]... UNIT...   (the image's own units and
 * masks, IMAGE_MASKED_UNITS; the packages enable and mask theirs)
 */
export const LAYER_DEBS_SH = `#!/bin/sh
set -eu
umask 022
masks=""
while [ "\${1:-}" = --mask ]; do masks="$masks $2"; shift 2; done
m="$RECIPEDIR/mnt"
base="$m/base"
mkdir -p "$base" "$m/work" "$m/merged"
cleanup() { umount "$m/merged" 2>/dev/null || true; umount "$base" 2>/dev/null || true; }
trap cleanup EXIT
mount -t squashfs -o ro,loop "$RECIPEDIR/base/filesystem.squashfs" "$base"
mount -t overlay overlay -o "lowerdir=$base,upperdir=$ROOTDIR,workdir=$m/work" "$m/merged"

r="$m/merged"
mkdir -p "$r/run/leakless-debs"
cp "$RECIPEDIR/${DEBS_REPO_DIR}"/* "$r/run/leakless-debs/"
echo 'deb [trusted=yes] file:/run/leakless-debs ./' > "$r/run/leakless-debs.list"
apt_opts="-o Dir::Etc::SourceList=/run/leakless-debs.list -o Dir::Etc::SourceParts=/dev/null -o APT::Sandbox::User=root"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
chroot "$r" apt-get $apt_opts -qq update
# the only source is the local repository: a dependency the base lacks fails here, by name
# shellcheck disable=SC2086
chroot "$r" apt-get $apt_opts -y -q --no-install-recommends install ${META_PACKAGE}
systemctl --root="$r" enable "$@"
# shellcheck disable=SC2086
[ -z "$masks" ] || systemctl --root="$r" mask $masks

# what apt and dpkg leave that differs between builds (docs/design.md#build-cleanup)
# (the base has none of these, its clean-up removed them: deleting one of the base's would be a whiteout)
find "$r/var/log" -type f -delete
rm -rf "$r/run/leakless-debs" "$r/run/leakless-debs.list" "$r/var/lib/apt/lists"/* \\
  "$r/var/cache/apt"/*.bin "$r/var/cache/apt/archives"/*.deb "$r/var/cache/debconf"/*-old "$r/var/lib/dpkg"/*-old \\
  "$r/var/cache/ldconfig/aux-cache" "$r/etc/passwd-" "$r/etc/group-" "$r/etc/shadow-" "$r/etc/gshadow-"
umount "$m/merged"

cd "$ROOTDIR"
gone=$(find . -type c | LC_ALL=C sort)
if [ -n "$gone" ]; then echo "leakless layer: installing the packages removed from the base: $gone" >&2; exit 1; fi
find . -mindepth 1 ! -type d | LC_ALL=C sort | sed 's/^/leakless layer: + /'
`;

/** Files of the local repository, as recipe files (debs/NAME). */
export async function repoRecipeFiles(repoDir: string): Promise<Map<string, { content: Buffer; mode: number }>> {
  const out = new Map<string, { content: Buffer; mode: number }>();
  for (const f of (await readdir(repoDir)).sort()) out.set(`${DEBS_REPO_DIR}/${f}`, { content: await readFile(join(repoDir, f)), mode: 0o644 });
  return out;
}

/**
 * The top recipe with its module layer made by installing the packages:
 * the "includes" unpack goes, the "units" step becomes the apt transaction
 * (layer-debs.sh), everything else (image files, squashfs, ISO) stays.
 */
export function packagesLayer(
  top: RenderedRecipe,
  image: { readonly units: readonly string[]; readonly masked: readonly string[] },
  repo: ReadonlyMap<string, { content: Buffer; mode: number }>,
): RenderedRecipe {
  const actions: Action[] = [];
  let replaced = 0;
  for (const a of top.recipe.actions) {
    if (a.description === 'includes') continue;
    if (a.description === 'units') {
      actions.push(run({ description: 'packages', script: `scripts/layer-debs.sh ${unitArgs(image.masked, image.units)}` }));
      replaced++;
      continue;
    }
    actions.push(a);
  }
  if (replaced !== 1) throw new Error(`the top recipe has ${replaced} "units" steps; the packages layer replaces exactly one`);
  const r = recipe(top.recipe.architecture, actions, [...(top.recipe.header ?? []), 'module layer: the leakless Debian packages (leakless iso --from-debs)']);
  const files = new Map(top.files);
  files.delete('chroot-includes.tar');
  files.set('scripts/layer-debs.sh', { content: LAYER_DEBS_SH, mode: 0o755 });
  for (const [k, v] of repo) files.set(k, v);
  return { recipe: r, yaml: renderRecipe(r), files };
}

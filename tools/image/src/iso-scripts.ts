// The shell steps of the image recipes. They are constant text: everything
// that varies (users, units, the hostname) reaches them as data files or
// arguments written by iso-recipes.ts, so a reviewer reads each script once
// and policy values never get interpolated into shell code.

/**
 * Chroot, before any package is installed: the policy's users with their
 * fixed uids/gids (docs/design.md#fixed-uids: rules use numeric ids from
 * early boot, Tails #7018). Reads users.tsv next to itself: name uid gid home shell
 * create-home|no-home role. root (base-passwd) and _apt (apt's postinst;
 * mmdebstrap installs apt with the essential set, before any hook of ours can
 * run) already exist: they are checked, never changed. A package that later
 * "creates" one of these users (tor's postinst: adduser --system debian-tor)
 * finds it and keeps its ids; home and shell are what that package expects.
 */
export const USERS_SH = `#!/bin/sh
set -eu
here=$(dirname "$0")
fail() { echo "leakless users: $*" >&2; exit 1; }
created_groups=" "

ensure_group() { # name gid
  if ent=$(getent group "$2"); then
    have=$(echo "$ent" | cut -d: -f1)
    case "$created_groups" in *" $have "*) return 0 ;; esac
    # 65534 is nogroup: the conventional primary group of users without one (_apt)
    [ "$have" = "$1" ] || [ "$2" = 65534 ] || fail "gid $2 belongs to group $have; the policy gives it to $1"
    return 0
  fi
  if ent=$(getent group "$1"); then fail "group $1 exists with gid $(echo "$ent" | cut -d: -f3); the policy needs $2"; fi
  groupadd --gid "$2" "$1"
  created_groups="$created_groups$1 "
}

ensure_user() { # name uid gid home shell create-home|no-home role
  if ent=$(getent passwd "$1"); then
    have=$(echo "$ent" | cut -d: -f3,4)
    [ "$have" = "$2:$3" ] || fail "user $1 exists as $have; the policy needs $2:$3"
    echo "leakless users: $1 present as $2:$3"
    return 0
  fi
  if ent=$(getent passwd "$2"); then fail "uid $2 is taken by $(echo "$ent" | cut -d: -f1); the policy gives it to $1"; fi
  ensure_group "$1" "$3"
  if [ "$6" = create-home ]; then
    useradd --uid "$2" --gid "$3" --create-home --home-dir "$4" --shell "$5" "$1"
  else
    useradd --system --uid "$2" --gid "$3" --no-create-home --home-dir "$4" --shell "$5" "$1"
  fi
  echo "leakless users: created $1 as $2:$3 ($7, home $4)"
}

while IFS='	' read -r name uid gid home shell mkhome role; do
  [ -n "$name" ] || continue
  ensure_user "$name" "$uid" "$gid" "$home" "$shell" "$mkhome" "$role"
done < "$here/users.tsv"
`;

/**
 * Chroot, after users.sh: the image's packages, in the order packages.txt
 * next to this script lists them (one per line), without Recommends. The
 * downloaded .debs stay in apt's cache for debs.sh.
 */
export const PACKAGES_SH = `#!/bin/sh
set -eu
here=$(dirname "$0")
export DEBIAN_FRONTEND=noninteractive
apt-get update
xargs apt-get -y --no-install-recommends install < "$here/packages.txt"
`;

/**
 * Host, after the packages, before cleanup: the .deb of every installed
 * package, as apt downloaded it, goes next to the base ($ARTIFACTDIR/debs):
 * what the image was built from, so it can be rebuilt from exactly these
 * bytes when the mirror has moved on. A package whose .deb is not in the
 * cache fails the build: a record with a hole in it is no record.
 */
export const DEBS_SH = `#!/bin/sh
set -eu
cd "$ROOTDIR"
mkdir -p "$ARTIFACTDIR/debs"
dpkg-query --admindir="$ROOTDIR/var/lib/dpkg" -W -f '\${Package}\t\${Version}\t\${Architecture}\n' | LC_ALL=C sort |
while IFS='	' read -r name version arch; do
  # apt writes the epoch's colon as %3a
  f="var/cache/apt/archives/\${name}_$(echo "$version" | sed 's/:/%3a/')_\${arch}.deb"
  [ -f "$f" ] || { echo "leakless debs: no .deb for the installed $name $version ($arch) in the apt cache" >&2; exit 1; }
  cp "$f" "$ARTIFACTDIR/debs/\${name}_$(echo "$version" | sed 's/^[0-9]*://')_\${arch}.deb"
done
`;

/**
 * Chroot, after the packages: remove what makes two builds differ or what
 * belongs to the build host (docs/design.md#build-cleanup; live-build's
 * hooks/normal list). /etc/hostname, /etc/hosts and resolv.conf come from the
 * module layer, never from the host mmdebstrap copied them from.
 */
export const CLEANUP_SH = `#!/bin/sh
set -eu
# live-boot must be in the initramfs, or the image cannot find its squashfs
for i in /boot/initrd.img-*; do
  lsinitramfs "$i" | grep -q '^usr/lib/live/boot/\\|^lib/live/boot/' || { echo "leakless cleanup: live-boot is not in $i" >&2; exit 1; }
  # zstd (the zstd package, LIVE_PACKAGES): without the tool mkinitramfs falls back to gzip without a word
  [ "$(od -An -N4 -tx1 "$i" | tr -d ' ')" = 28b52ffd ] || { echo "leakless cleanup: $i is not zstd-compressed" >&2; exit 1; }
done
# the build host's resolver and name must not end up in the image
rm -f /etc/resolv.conf /etc/hostname
# no apt source of the build stays: mmdebstrap leaves the mirror it fetched
# from (plain http, or the saved repository) in sources.list.d, and apt would
# use it next to the module layer's tor+http sources.list (Tails' APT sources)
rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
# machine ids: empty means "generate at boot" (each live session gets its own)
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id /var/lib/systemd/random-seed /etc/adjtime
# apt: lists and caches are large, dated and refetched by apt update
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*
# backups and caches that record build time or build order
rm -f /etc/passwd- /etc/group- /etc/shadow- /etc/gshadow- /etc/subuid- /etc/subgid-
rm -f /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/cache/ldconfig/aux-cache
rm -rf /var/cache/man/* /var/tmp/*
# /tmp/script is where debos bind-mounts this script; export.sh removes the mount point
find /tmp -mindepth 1 -maxdepth 1 ! -path /tmp/script -exec rm -rf {} +
rm -f /etc/ssh/ssh_host_*
find /var/log -type f -delete
find /usr -depth -name __pycache__ -type d -exec rm -rf {} +
`;

/** Host, after cleanup: what the ISO and the manifest need from the base rootfs. */
export const EXPORT_SH = `#!/bin/sh
set -eu
cd "$ROOTDIR"
# the mount point debos' chroot scripts ran from (see cleanup.sh)
if [ -d tmp/script ]; then rmdir tmp/script; fi
set -- boot/vmlinuz-*
[ $# -eq 1 ] && [ -f "$1" ] || { echo "leakless export: expected exactly one kernel in /boot, found: $*" >&2; exit 1; }
kver=\${1#boot/vmlinuz-}
[ -f "boot/initrd.img-$kver" ] || { echo "leakless export: no initrd for $kver" >&2; exit 1; }
cp "boot/vmlinuz-$kver" "$ARTIFACTDIR/vmlinuz"
cp "boot/initrd.img-$kver" "$ARTIFACTDIR/initrd.img"
echo "$kver" > "$ARTIFACTDIR/kernel-version"
dpkg-query --admindir="$ROOTDIR/var/lib/dpkg" -W -f '\${Package}\\t\${Version}\\t\${Architecture}\\n' | LC_ALL=C sort > "$ARTIFACTDIR/packages.tsv"
cp etc/passwd etc/group "$ARTIFACTDIR/"
`;

/**
 * Host: build the module layer in $ROOTDIR (the unpacked tarballs) against
 * the cached base, which is mounted read-only, never modified.
 *  1. a directory of the layer must not shadow a symlink or a file of the
 *     base (merged /usr: /lib -> usr/lib; shadowing it would break the system);
 *  2. directories that exist in the base keep the base's owner and mode (the
 *     tarball's directory entries are containers, not intent);
 *  3. units are enabled with systemctl --root on an overlay of layer + base,
 *     the --mask units masked (links to /dev/null: nothing can start them),
 *     and exactly the links that creates are copied into the layer.
 * Usage: layer.sh [--mask UNIT]... UNIT...
 */
export const LAYER_SH = `#!/bin/sh
set -eu
umask 022
masks=""
while [ "\${1:-}" = --mask ]; do masks="$masks $2"; shift 2; done
m="$RECIPEDIR/mnt"
base="$m/base"
mkdir -p "$base" "$m/upper" "$m/work" "$m/merged"
cleanup() { umount "$m/merged" 2>/dev/null || true; umount "$base" 2>/dev/null || true; }
trap cleanup EXIT
mount -t squashfs -o ro,loop "$RECIPEDIR/base/filesystem.squashfs" "$base"

cd "$ROOTDIR"
find . -mindepth 1 -type d | LC_ALL=C sort | while IFS= read -r d; do
  if [ -L "$base/$d" ]; then
    echo "leakless layer: $d is a symlink in the base (-> $(readlink "$base/$d")); emit the files under its target instead" >&2; exit 1
  fi
  if [ -e "$base/$d" ] && [ ! -d "$base/$d" ]; then echo "leakless layer: $d is a file in the base but a directory in the module layer" >&2; exit 1; fi
  if [ -d "$base/$d" ]; then chown --reference="$base/$d" "$d"; chmod --reference="$base/$d" "$d"; fi
done
find . -mindepth 1 ! -type d | LC_ALL=C sort | while IFS= read -r f; do
  if [ -d "$base/$f" ] && [ ! -L "$base/$f" ]; then echo "leakless layer: $f is a directory in the base but a file in the module layer" >&2; exit 1; fi
done

mount -t overlay overlay -o "lowerdir=$ROOTDIR:$base,upperdir=$m/upper,workdir=$m/work" "$m/merged"
systemctl --root="$m/merged" enable "$@"
[ -z "$masks" ] || systemctl --root="$m/merged" mask $masks
umount "$m/merged"

cd "$m/upper"
find . -mindepth 1 ! -type d | LC_ALL=C sort | while IFS= read -r f; do
  # a whiteout is a character device; a mask is a link to /dev/null, which -c follows
  if [ -c "$f" ] && [ ! -L "$f" ]; then echo "leakless layer: enabling units removed $f from the base; a layer cannot express that" >&2; exit 1; fi
  mkdir -p "$ROOTDIR/$(dirname "$f")"
  cp -a --no-preserve=xattr "$f" "$ROOTDIR/$f"
  echo "leakless layer: + \${f#./}"
done
`;

/**
 * Post-processing: the BIOS+UEFI hybrid ISO, bit-reproducible. This is
 * docs/design.md#hybrid-iso and #reproducibility: the BIOS GRUB image made
 * with grub-mkimage and an early config that finds the medium by a marker
 * file, a FAT efi.img with a serial derived from SOURCE_DATE_EPOCH, every
 * mtime set to SOURCE_DATE_EPOCH, xorriso dates pinned.
 * UEFI goes through Debian's Secure Boot chain, as debian-cd does: the
 * Microsoft-signed shim as BOOTX64.EFI, Debian's signed CD GRUB
 * (gcdx64.efi.signed, whose built-in config finds the medium by /.disk/info
 * and reads /boot/grub/grub.cfg) as grubx64.efi, MokManager next to them;
 * GRUB then checks the Debian-signed kernel through shim. "unsigned" puts a
 * grub-mkimage GRUB behind shim instead: the anti-test image a Secure Boot
 * firmware must refuse.
 * Usage: mkiso.sh STAGING OUT.iso VOLID signed|unsigned   (relative to $ARTIFACTDIR)
 */
export const MKISO_SH = `#!/bin/bash
set -euo pipefail
cd "$ARTIFACTDIR"
ST=$1; OUT=$2; VOL=$3; UEFI=$4; SDE=\${SOURCE_DATE_EPOCH:?}
# mtools stamps the directories mmd makes in efi.img with SOURCE_DATE_EPOCH in local time: a builder's
# time zone would reach the image (seen: two builders in UTC and UTC-3:30 differed only there)
export TZ=UTC
case "$UEFI" in signed|unsigned) ;; *) echo "mkiso: UEFI GRUB must be signed or unsigned, got $UEFI" >&2; exit 2 ;; esac
export LC_ALL=C
umask 022
D=$(date -u -d @"$SDE" +%Y%m%d%H%M%S00)
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
mkdir -p "$ST/.disk" "$W/m/boot/grub" "$W/efi" "$ST/boot/grub/i386-pc"
echo "$VOL" > "$ST/.disk/info"
cp /usr/lib/grub/i386-pc/*.mod /usr/lib/grub/i386-pc/*.lst "$ST/boot/grub/i386-pc/"
# BIOS: the embedded config only sets root/prefix (a configfile there runs before
# normal mode sets up command autoload: "can't find command 'serial'")
printf 'search --no-floppy --file --set=root /.disk/info\\nset prefix=($root)/boot/grub\\n' > "$W/bios.cfg"
grub-mkimage -O i386-pc-eltorito -p /boot/grub -c "$W/bios.cfg" -o "$ST/boot/grub/bios.img" biosdisk iso9660 search
cp /usr/lib/shim/shimx64.efi.signed "$W/efi/BOOTX64.EFI"
cp /usr/lib/shim/mmx64.efi.signed "$W/efi/mmx64.efi"
if [ "$UEFI" = signed ]; then
  cp /usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed "$W/efi/grubx64.efi"
else
  mkdir -p "$ST/boot/grub/x86_64-efi"
  cp /usr/lib/grub/x86_64-efi/*.mod /usr/lib/grub/x86_64-efi/*.lst "$ST/boot/grub/x86_64-efi/"
  cat > "$W/m/boot/grub/grub.cfg" <<'CFG'
search --no-floppy --file --set=root /.disk/info
set prefix=($root)/boot/grub
configfile $prefix/grub.cfg
CFG
  tar -C "$W/m" --sort=name --mtime=@"$SDE" --owner=0 --group=0 --numeric-owner -cf "$W/memdisk.tar" boot
  grub-mkimage -O x86_64-efi -m "$W/memdisk.tar" -p '(memdisk)/boot/grub' -o "$W/efi/grubx64.efi" \\
    search iso9660 configfile normal memdisk tar part_gpt part_msdos fat
fi
rm -f "$ST/boot/grub/efi.img"
mkfs.msdos -C "$ST/boot/grub/efi.img" 8192 -i "$(printf %08x $((SDE % 4294967296)))" >/dev/null
touch -d @"$SDE" "$W/efi/BOOTX64.EFI" "$W/efi/grubx64.efi" "$W/efi/mmx64.efi"
mmd -i "$ST/boot/grub/efi.img" ::/EFI ::/EFI/BOOT
for f in BOOTX64.EFI grubx64.efi mmx64.efi; do mcopy -m -i "$ST/boot/grub/efi.img" "$W/efi/$f" "::/EFI/BOOT/$f"; done
find "$ST" -exec touch -h -d @"$SDE" {} +
xorriso -as mkisofs -o "$OUT" -iso-level 3 -R -J -joliet-long -V "$VOL" --modification-date="$D" \\
  -b boot/grub/bios.img -no-emul-boot -boot-load-size 4 -boot-info-table --grub2-boot-info \\
  --grub2-mbr /usr/lib/grub/i386-pc/boot_hybrid.img \\
  --efi-boot boot/grub/efi.img -efi-boot-part --efi-boot-image --protective-msdos-label "$ST"
`;

/**
 * Post-processing: the ISO staging tree from the cached base (hard links, no
 * copies of the 150+ MB squashfs) and the module layer.
 * Usage: stage.sh STAGING   (relative to $ARTIFACTDIR)
 */
export const STAGE_SH = `#!/bin/sh
set -eu
umask 022
# debos 1.1.1 documents the artifact dir as the cwd of postprocess runs but
# never sets it (commands.go ignores Command.Dir): go there explicitly
cd "$ARTIFACTDIR"
ST=$1
B="$RECIPEDIR/base"
rm -rf "$ST"
mkdir -p "$ST/live" "$ST/boot/grub"
for f in vmlinuz initrd.img filesystem.squashfs; do
  ln "$B/$f" "$ST/live/$f" 2>/dev/null || cp "$B/$f" "$ST/live/$f"
done
mv leakless-modules.squashfs "$ST/live/"
# live-boot stacks the images listed here, first = bottom (9990-overlay.sh setup_unionfs)
printf 'filesystem.squashfs\\nleakless-modules.squashfs\\n' > "$ST/live/filesystem.module"
cp "$RECIPEDIR/grub.cfg" "$ST/boot/grub/grub.cfg"
`;

/**
 * initramfs-tools hook of the base layer (/etc/initramfs-tools/hooks: runs
 * after every packaged hook, before depmod). A live image's initramfs has one
 * job: find the medium (a CD or DVD, a USB stick or SD card, a virtual
 * machine's disk) and stack its squashfs images. MODULES=most, live-boot's
 * setting, also packs every network driver, the GPU drivers of early KMS,
 * NFS, Ceph, iSCSI, Fibre Channel, InfiniBand and a dozen server file
 * systems: 150 MB of modules that the boot loader reads and the kernel
 * unpacks on every boot, for network boots this image never does (the real
 * system loads network and GPU drivers from the squashfs). Storage
 * controllers, USB, input devices and the file systems of removable media
 * stay. Run by mkinitramfs with DESTDIR and version set.
 */
export const LIVE_MEDIA_ONLY_HOOK = `#!/bin/sh
PREREQ=""
case "\${1:-}" in prereqs) echo "$PREREQ"; exit 0 ;; esac
set -eu
cd "\${DESTDIR:?}/lib/modules/\${version:?}/kernel"
rm -rf drivers/net drivers/gpu drivers/infiniband drivers/target drivers/media sound \\
  drivers/scsi/lpfc drivers/scsi/qla2xxx drivers/scsi/qla4xxx drivers/scsi/bfa drivers/scsi/cxgbi drivers/scsi/be2iscsi \\
  drivers/scsi/qedf drivers/scsi/qedi drivers/scsi/bnx2fc drivers/scsi/bnx2i drivers/scsi/fcoe drivers/scsi/libfc \\
  drivers/scsi/fnic drivers/scsi/csiostor drivers/scsi/snic \\
  fs/nfs fs/nfs_common fs/nfsd fs/lockd fs/ceph fs/smb fs/cifs fs/9p fs/xfs fs/btrfs fs/f2fs fs/jfs fs/reiserfs \\
  fs/jffs2 fs/ocfs2 fs/gfs2 fs/nilfs2 fs/ubifs fs/orangefs fs/afs fs/coda fs/dlm \\
  net/sunrpc net/ceph net/9p
rm -f drivers/block/rbd.ko drivers/block/nbd.ko drivers/scsi/iscsi_tcp.ko drivers/scsi/libiscsi_tcp.ko
`;

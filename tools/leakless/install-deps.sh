#!/usr/bin/env bash
# Installs the Debian tools a suite needs, only those missing, never with
# Recommends (debos' Recommends pull systemd-resolved, which replaces
# /etc/resolv.conf with a dangling link and breaks DNS on these machines).
#   tools/leakless/install-deps.sh test   lab: nftables, tor, tcpdump, iproute2 …
#   tools/leakless/install-deps.sh e2e    image: mmdebstrap, debos, squashfs, xorriso, grub, qemu, ovmf
set -euo pipefail
group=${1:?usage: install-deps.sh test|e2e}
[ "$(id -u)" = 0 ] || { echo "install-deps: must run as root" >&2; exit 2; }

test_pkgs="nftables tor debos iproute2 tcpdump procps kmod util-linux python3 iputils-ping dnsmasq-base openssl dbus-daemon systemd"
# .deb packages and local apt repositories (@leakless/deb, @leakless/apt-repo): dpkg-scanpackages
test_pkgs="$test_pkgs dpkg-dev"
# the private Tor network's obfs4 bridge and the sut's obfs4 client (e2e/src/tornet/bridges.test.ts)
test_pkgs="$test_pkgs obfs4proxy"
# the real NetworkManager of the LAN-privacy lab (e2e/src/nm), run only inside the lab's namespaces on a private bus
test_pkgs="$test_pkgs network-manager"
e2e_pkgs="$test_pkgs mmdebstrap squashfs-tools xorriso grub-pc-bin grub-efi-amd64-bin grub-efi-amd64-signed shim-signed grub-common mtools dosfstools qemu-system-x86 ovmf systemd-container"
# releases: signing (gnupg), the remote cache client (curl), diffoscope on a reproducibility failure
e2e_pkgs="$e2e_pkgs gnupg curl diffoscope-minimal"
# lintian on every leakless .deb (e2e/iso/deb.test.ts)
e2e_pkgs="$e2e_pkgs lintian"
case "$group" in
  test) pkgs=$test_pkgs ;;
  e2e) pkgs=$e2e_pkgs ;;
  *) echo "install-deps: unknown group $group" >&2; exit 2 ;;
esac

missing=()
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# NetworkManager must never start on this machine, nor at its next boot: it would take over its
# network. policy-rc.d stops the package from starting it; its units are disabled afterwards.
nm_new=0
case " ${missing[*]} " in *" network-manager "*) nm_new=1 ;; esac
if [ "$nm_new" = 1 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ "$nm_new" = 1 ] && [ -d /run/systemd/system ]; then
  systemctl disable NetworkManager.service NetworkManager-wait-online.service NetworkManager-dispatcher.service >/dev/null 2>&1 || true
fi

#!/usr/bin/env bash
# Records the exact bytes of the HTTP request that Debian's NetworkManager
# sends for its connectivity check, configured like Fedora's
# 20-connectivity-fedora.conf (the check Tails' tails-get-network-time
# mimics). The pre-Tor time check must
# send the same bytes, so that on the wire it is one more NetworkManager.
#
#   sudo e2e/src/time/nm-record/record.sh OUTFILE
#
# NetworkManager is never installed: its .deb (and the libraries this host
# lacks) are unpacked into a temporary directory. PID 1 here is not systemd and
# there is no system bus, so it runs with a private dbus-daemon, inside a
# namespace pair made for this run (documentation range 198.51.100.0/24, no
# route anywhere else), with a private mount namespace: read-only sysfs (NM's
# "container, no udev" mode), tmpfs /run and /var/lib, and an /etc/hosts that
# maps the policy URL's host to the recorder. Everything is removed on exit.
set -euo pipefail
out=$(realpath -m "${1:?usage: record.sh OUTFILE}")
url=${URL:-http://fedoraproject.org/static/hotspot.txt}
host=${url#http://}; host=${host%%/*}
[ "$(id -u)" = 0 ] || { echo "record.sh: must run as root" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)

id=$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')
work=$(mktemp -d "/tmp/lk-nmrec-$id.XXXX")
nmns=lk-nmrec-$id
srvns=lk-nmsrv-$id
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$nmns" 2>/dev/null || true
  ip netns del "$srvns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap 'cp "$work/nm.log" /tmp/lk-nmrec-last.log 2>/dev/null; cleanup' EXIT

# 1. NetworkManager from Debian and whatever it needs that this host lacks,
#    downloaded by apt into our directory (never installed) and unpacked.
mkdir -p "$work/debs/partial" "$work/root"
# --download-only fetches only what is not installed: on a host that has
# network-manager (the LAN-privacy lab installs it) it would fetch nothing, so
# the package itself comes from apt-get download, the rest from the former.
download() {
  apt-get install -qq --download-only --no-install-recommends \
    -o Dir::Cache::archives="$work/debs" -o Debug::NoLocking=1 network-manager >/dev/null 2>"$work/apt.log" &&
    (cd "$work/debs" && apt-get download -qq -o APT::Sandbox::User=root network-manager >/dev/null 2>>"$work/apt.log")
}
download || { apt-get update -qq >/dev/null 2>&1 && download; } || { echo "record.sh: apt could not download network-manager:" >&2; tail -n 5 "$work/apt.log" >&2; exit 1; }
for f in "$work"/debs/*.deb; do dpkg -x "$f" "$work/root"; done
nmdeb=$(ls "$work"/debs/network-manager_*.deb | head -n 1)
nmver=$(dpkg-deb -f "$nmdeb" Version)
curlver=$(dpkg-query -W -f='${Version}' libcurl3-gnutls 2>/dev/null || dpkg-deb -f "$work"/debs/libcurl3-gnutls_*.deb Version)
ldd_missing=$(LD_LIBRARY_PATH="$work/root/usr/lib/x86_64-linux-gnu" ldd "$work/root/usr/sbin/NetworkManager" | grep 'not found' || true)
[ -z "$ldd_missing" ] || { echo "record.sh: NetworkManager still misses libraries: $ldd_missing" >&2; exit 1; }

# 2. The pair of namespaces: NM's side and the recorder's side.
ip netns add "$nmns"
ip netns add "$srvns"
ip link add nm0 netns "$nmns" type veth peer name srv0 netns "$srvns"
ip -n "$srvns" link set lo up
ip -n "$srvns" addr add 198.51.100.1/24 dev srv0
ip -n "$srvns" link set srv0 up
ip -n "$nmns" link set lo up

ip netns exec "$srvns" node "$here/recorder.mjs" 198.51.100.1 80 "$work/request.bin" >"$work/recorder.log" 2>&1 &
pids+=($!)

# 3. A private system bus.
cat >"$work/bus.conf" <<BUS
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$work/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
BUS
dbus-daemon --config-file="$work/bus.conf" --nofork --nopidfile >"$work/dbus.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$work/bus" ] && break; sleep 0.1; done

# 4. NetworkManager's configuration: one manual profile on nm0, Fedora's connectivity check.
mkdir -p "$work/conf.d" "$work/sysconf.d" "$work/connections"
cat >"$work/NetworkManager.conf" <<CONF
[main]
plugins=keyfile
no-auto-default=*
dns=none
rc-manager=unmanaged
[keyfile]
path=$work/connections
unmanaged-devices=except:interface-name:nm0
# Fedora's 20-connectivity-fedora.conf
[connectivity]
enabled=true
uri=$url
response=OK
interval=300
CONF
cat >"$work/connections/lab.nmconnection" <<CONN
[connection]
id=lab
type=ethernet
interface-name=nm0
autoconnect=true
[ethernet]
[ipv4]
method=manual
address1=198.51.100.2/24,198.51.100.1
never-default=false
[ipv6]
method=disabled
CONN
chmod 600 "$work/connections/lab.nmconnection"
printf '127.0.0.1 localhost\n198.51.100.1 %s\n' "$host" >"$work/hosts"
: >"$work/resolv.conf"

ip netns exec "$nmns" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/bus" \
  LD_LIBRARY_PATH="$work/root/usr/lib/x86_64-linux-gnu" \
  sh -c '
    set -e
    w=$1
    mount -o remount,bind,ro /sys
    mount -t tmpfs tmpfs /run
    mount -t tmpfs tmpfs /var/lib
    mkdir -p /var/lib/NetworkManager
    mount --bind "$w/hosts" /etc/hosts
    mount --bind "$w/resolv.conf" /etc/resolv.conf
    exec "$w/root/usr/sbin/NetworkManager" --debug \
      --config="$w/NetworkManager.conf" --config-dir="$w/conf.d" --system-config-dir="$w/sysconf.d" \
      --state-file="$w/NetworkManager.state" --pid-file="$w/nm.pid" \
      --log-level=DEBUG --log-domains=CONCHECK,CORE,DEVICE,IP4,PLATFORM
  ' sh "$work" >"$work/nm.log" 2>&1 &
pids+=($!)

for _ in $(seq 300); do [ -s "$work/request.bin" ] && break; sleep 0.1; done
if [ ! -s "$work/request.bin" ]; then
  echo "record.sh: NetworkManager sent no connectivity request within 30 s; its log:" >&2
  tail -n 40 "$work/nm.log" >&2
  exit 1
fi
sleep 1
grep -i 'connectivity' "$work/nm.log" | tail -n 5 >&2 || true
mkdir -p "$(dirname "$out")"
cp "$work/request.bin" "$out"
printf 'network-manager %s\nlibcurl3-gnutls %s\nurl %s\n' "$nmver" "$curlver" "$url" >"$out.source"
echo "record.sh: recorded $(wc -c <"$out") bytes to $out (NetworkManager $nmver, libcurl $curlver)" >&2

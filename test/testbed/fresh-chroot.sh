#!/usr/bin/env bash
# Proves the test bed's install step on an empty Debian without touching this machine's packages:
# runs `bedctl install` in a fresh debootstrap (minbase) of Debian bookworm, while a real apt-get holds
# the apt lists lock (30 s) and then the dpkg frontend lock (60 s), then runs it once more (warm).
#
#   sudo test/testbed/fresh-chroot.sh [WORKDIR]     (default WORKDIR: /tmp/tidewatch-fresh-chroot)
#
# Needs root, network, Go in /usr/local/go (bind-mounted read-only), and about 2 GB in WORKDIR.
# debootstrap is fetched with apt-get download and unpacked there, not installed. Inside the chroot no
# service starts (policy-rc.d), so no second dockerd runs. The host's local CAs
# (/usr/local/share/ca-certificates, e.g. of an egress proxy) are carried in for the go command.
# The log is WORKDIR/run.log; the chroot is removed at the end unless KEEP=1.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
W=${1:-/tmp/tidewatch-fresh-chroot}
R=$W/root
LOG=$W/run.log
MIRROR=${MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$W"

cleanup() {
  for m in usr/local/go dev/pts dev proc; do umount -l "$R/$m" 2>/dev/null || true; done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$R"
}
trap cleanup EXIT

echo "building bedctl (static)"
(cd "$here" && CGO_ENABLED=0 /usr/local/go/bin/go build -o "$W/bedctl" ./test/bedctl)

if [ ! -s "$W/minbase.tar" ]; then
  echo "debootstrap of bookworm (minbase) into $R; cached as $W/minbase.tar"
  (cd "$W" && apt-get download debootstrap >/dev/null && dpkg-deb -x debootstrap_*.deb "$W/debootstrap")
  rm -rf "$R"
  DEBOOTSTRAP_DIR="$W/debootstrap/usr/share/debootstrap" "$W/debootstrap/usr/sbin/debootstrap" \
    --variant=minbase bookworm "$R" "$MIRROR" > "$W/debootstrap.log" 2>&1
  tar -C "$R" -cf "$W/minbase.tar" .
fi
rm -rf "$R" && mkdir -p "$R" && tar -C "$R" -xf "$W/minbase.tar"
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
  "$MIRROR" "$MIRROR" > "$R/etc/apt/sources.list"
rm -f "$R"/var/lib/apt/lists/*_*                      # no package lists, as on a cleaned image
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d" && chmod 755 "$R/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$R/etc/resolv.conf"
mkdir -p "$R/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$R/usr/local/share/ca-certificates/" 2>/dev/null || true
mount --bind /proc "$R/proc"; mount --bind /dev "$R/dev"; mount --bind /dev/pts "$R/dev/pts"
mkdir -p "$R/usr/local/go"; mount --bind /usr/local/go "$R/usr/local/go"; mount -o remount,bind,ro "$R/usr/local/go"
cp "$W/bedctl" "$R/usr/local/bin/bedctl"
IN=(chroot "$R" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/go/bin)
ts() { date +%H:%M:%S; }
: > "$LOG"
echo "$(ts) fresh chroot: $(ls "$R/var/lib/apt/lists" | wc -l) list files, ca-certificates: $(test -e "$R/etc/ssl/certs/ca-certificates.crt" && echo yes || echo no), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
(
  echo "$(ts) holder: apt-get update, keeping the lists lock 30 s"
  "${IN[@]}" apt-get -q -o 'APT::Update::Pre-Invoke::=echo holder has the lists lock; sleep 30' update 2>&1 | sed 's/^/  holder| /'
  echo "$(ts) holder: apt-get install hello, keeping the dpkg frontend lock 60 s"
  "${IN[@]}" apt-get -q -y -o 'DPkg::Pre-Invoke::=echo holder has the dpkg lock; sleep 60' install hello 2>&1 | sed 's/^/  holder| /'
  echo "$(ts) holder: done"
) >> "$LOG" 2>&1 &
holder=$!
sleep 3
echo "$(ts) bedctl install (fresh)" | tee -a "$LOG"
start=$(date +%s); rc=0; "${IN[@]}" bedctl install >> "$LOG" 2>&1 || rc=$?
echo "$(ts) bedctl install (fresh) ended: exit $rc after $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
wait "$holder" || true
start=$(date +%s); rc2=0; "${IN[@]}" bedctl install >> "$LOG" 2>&1 || rc2=$?
echo "$(ts) bedctl install (warm) ended: exit $rc2 after $(( $(date +%s) - start )) s" | tee -a "$LOG"
grep -E 'lock|took|installed|built|because' "$LOG" | grep -v '^  holder' | cut -c1-260 || true
for p in docker.io docker-registry docker-compose chromium mosquitto git ca-certificates hello; do
  "${IN[@]}" dpkg-query -W -f='${Package} ${Status} ${Version}\n' "$p" 2>&1 | tee -a "$LOG" || true
done
[ "$rc" = 0 ] && [ "$rc2" = 0 ]

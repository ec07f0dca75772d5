#!/usr/bin/env bash
# Prepares a Debian 12 (bookworm) Linux 6.1 guest for misc/guest/run.sh:
#   - host packages that virtme-ng needs (qemu-system-x86, udev, busybox-static, kmod) plus bpftool;
#   - virtme-ng from PyPI in a venv:        $FLOWCTL_GUEST_CACHE/venv      (vng)
#   - bookworm's generic 6.1 kernel package, extracted (never installed into /boot):
#                                           $FLOWCTL_GUEST_CACHE/kernel    (boot/vmlinuz-<ver>, lib/modules/<ver>)
# Idempotent: a second run checks and returns in about a second. Needs root and apt.
# FLOWCTL_GUEST_CACHE defaults to /var/lib/flowctl-guest: not /var/cache, because the guest mounts empty tmpfs
# over /var/cache, /var/tmp, /var/log, /var/lib/apt and /var/lib/private, and must see the modules here.
# FLOWCTL_GUEST_REFRESH=1 re-resolves the kernel (takes a newer bookworm 6.1 ABI if apt has one).
# Prints one "setup.sh: ..." line and exits non-zero on failure.
set -euo pipefail

CACHE="${FLOWCTL_GUEST_CACHE:-/var/lib/flowctl-guest}"
VNG_VERSION="1.42"                       # pinned virtme-ng release (ships its virtme-ng-init binary)
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
LOG="$CACHE/setup.log"

die() { echo "setup.sh: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

[ "$(id -u)" -eq 0 ] || die "run as root (installs packages with apt-get)"
have apt-get || die "apt-get not found: this script supports Debian 12 based hosts only"
[ "$(uname -m)" = x86_64 ] || die "x86_64 host required (the guest kernel is amd64), found $(uname -m)"
case "$CACHE/" in
    /var/cache/*|/var/tmp/*|/var/log/*|/var/lib/apt/*|/var/lib/private/*|/run/*|/dev/*|/proc/*|/sys/*)
        die "FLOWCTL_GUEST_CACHE=$CACHE is hidden inside the guest (a tmpfs there): use e.g. /var/lib/flowctl-guest" ;;
esac
mkdir -p "$CACHE" || die "cannot create $CACHE"
: >"$LOG"
export DEBIAN_FRONTEND=noninteractive

apt_updated=0
apt_update() {
    [ "$apt_updated" -eq 1 ] && return 0
    apt-get update -qq >>"$LOG" 2>&1 || die "apt-get update failed (see $LOG)"
    apt_updated=1
}

# --- 1. host packages -------------------------------------------------------------------------------------
# command -> package; /usr/bin/python3 is Debian's own python (pyenv shims or others are not used).
need=()
have qemu-system-x86_64 || need+=(qemu-system-x86)
have udevadm || need+=(udev)
[ -x /bin/busybox ] || need+=(busybox-static)
{ have depmod && have modprobe; } || need+=(kmod)
have bpftool || [ -x /usr/sbin/bpftool ] || need+=(bpftool)
[ -x /usr/bin/python3 ] || need+=(python3)
/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
if [ "${#need[@]}" -gt 0 ]; then
    echo "setup.sh: installing ${need[*]}"
    apt_update
    apt-get install -y -qq --no-install-recommends "${need[@]}" >>"$LOG" 2>&1 ||
        die "apt-get install ${need[*]} failed (see $LOG)"
fi

# --- 2. virtme-ng in a venv -------------------------------------------------------------------------------
VENV="$CACHE/venv"
if ! "$VENV/bin/vng" --version 2>/dev/null | grep -qF "$VNG_VERSION"; then
    echo "setup.sh: installing virtme-ng $VNG_VERSION into $VENV"
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV" >>"$LOG" 2>&1 || die "python3 -m venv $VENV failed (see $LOG)"
    "$VENV/bin/pip" install -q --disable-pip-version-check "virtme-ng==$VNG_VERSION" >>"$LOG" 2>&1 ||
        die "pip install virtme-ng==$VNG_VERSION failed: PyPI unreachable? (see $LOG)"
    "$VENV/bin/vng" --version >/dev/null 2>&1 || die "vng does not run after install (see $LOG)"
fi

# --- 3. bookworm's generic 6.1 kernel ---------------------------------------------------------------------
KDIR="$CACHE/kernel"
if [ -s "$KDIR/VERSION" ] && [ "${FLOWCTL_GUEST_REFRESH:-0}" != 1 ]; then
    kver="$(cat "$KDIR/VERSION")"
    if [ -r "$KDIR/boot/vmlinuz-$kver" ] && [ -s "$KDIR/lib/modules/$kver/modules.dep" ]; then
        echo "setup.sh: ready: vng $VNG_VERSION, kernel $kver (cached in $CACHE)"
        exit 0
    fi
fi

# The kernel ABI package (linux-image-6.1.0-NN-amd64) that linux-image-amd64 points at, if apt's own sources
# give bookworm's 6.1 series; a host whose apt offers another series (trixie, backports) gets it from a
# private apt configuration with bookworm's sources instead, so the host's own apt setup is left untouched.
APT_OPTS=()
bookworm_kernel() {
    local pkg
    local deps policy
    # (whole outputs captured first: grep -q or head closing a pipe early would fail it under pipefail)
    deps="$(apt-cache "${APT_OPTS[@]}" depends linux-image-amd64 2>/dev/null)" || return 1
    pkg="$(sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' <<<"$deps" | sed -n 1p)"
    [ -n "$pkg" ] || return 1
    # Its candidate must be a Debian 12 6.1 build (6.1.x-y, not a ~bpo backport).
    policy="$(apt-cache "${APT_OPTS[@]}" policy "$pkg" 2>/dev/null)" || return 1
    grep -Eq '^ +Candidate: 6\.1\.[0-9]+-[0-9]+$' <<<"$policy" || return 1
    echo "$pkg"
}

apt_update
# (FLOWCTL_GUEST_PRIVATE_APT=1 forces the private configuration, to test that path.)
if [ "${FLOWCTL_GUEST_PRIVATE_APT:-0}" = 1 ] || ! kpkg="$(bookworm_kernel)"; then
    echo "setup.sh: using a private bookworm apt configuration (apt here does not offer bookworm's 6.1 kernel, or FLOWCTL_GUEST_PRIVATE_APT=1)"
    [ -r "$KEYRING" ] || { apt-get install -y -qq debian-archive-keyring >>"$LOG" 2>&1 ||
        die "debian-archive-keyring not installable (see $LOG)"; }
    A="$CACHE/apt"
    mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/etc/preferences.d" "$A/etc/sources.list.d"
    cat >"$A/etc/sources.list" <<EOF
deb [signed-by=$KEYRING] http://deb.debian.org/debian bookworm main
deb [signed-by=$KEYRING] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=$KEYRING] http://deb.debian.org/debian-security bookworm-security main
EOF
    APT_OPTS=(-o "Dir::Etc::SourceList=$A/etc/sources.list" -o "Dir::Etc::SourceParts=$A/etc/sources.list.d"
        -o "Dir::Etc::Preferences=$A/etc/preferences" -o "Dir::Etc::PreferencesParts=$A/etc/preferences.d"
        -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A/cache" -o "APT::Architecture=amd64")
    apt-get "${APT_OPTS[@]}" update -qq >>"$LOG" 2>&1 || die "apt-get update of bookworm's sources failed (see $LOG)"
    kpkg="$(bookworm_kernel)" || die "no linux-image-6.1.0-NN-amd64 found in bookworm's sources (see $LOG)"
fi
kver="${kpkg#linux-image-}"

echo "setup.sh: fetching $kpkg"
dl="$(mktemp -d "$CACHE/download.XXXXXX")"
chmod 755 "$dl"   # apt downloads as the _apt user
trap 'rm -rf "$dl"' EXIT
(cd "$dl" && apt-get "${APT_OPTS[@]}" download -qq "$kpkg" >>"$LOG" 2>&1) ||
    die "apt-get download $kpkg failed (see $LOG)"
debs=("$dl"/*.deb)
deb="${debs[0]}"
[ -f "$deb" ] || die "apt-get download $kpkg produced no .deb (see $LOG)"
new="$CACHE/kernel.new"
rm -rf "$new"
dpkg -x "$deb" "$new" || die "dpkg -x $deb failed"
[ -r "$new/boot/vmlinuz-$kver" ] || die "$kpkg has no boot/vmlinuz-$kver"
# The package leaves modules.dep to its postinst: generate it for the extracted tree.
[ -d "$new/lib/modules/$kver" ] || die "$kpkg has no lib/modules/$kver"
depmod -b "$new" "$kver" >>"$LOG" 2>&1 || die "depmod for $kver failed (see $LOG)"
echo "$kver" >"$new/VERSION"
dpkg-deb -f "$deb" Version >"$new/PACKAGE_VERSION"
rm -rf "$KDIR"
mv "$new" "$KDIR"
echo "setup.sh: ready: vng $VNG_VERSION, kernel $kver ($(cat "$KDIR/PACKAGE_VERSION")) in $CACHE"

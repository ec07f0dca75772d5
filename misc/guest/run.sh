#!/usr/bin/env bash
# Runs one command as root inside Debian 12's Linux 6.1 kernel, booted once in a qemu guest (virtme-ng,
# TCG software emulation) over this machine's root filesystem, and returns the command's exit status.
#
#   misc/guest/run.sh [options] -- CMD [ARGS...]
#     --cpus N          guest CPUs (default 2)
#     --memory M        guest memory, qemu syntax (default 2G)
#     --timeout SECS    kill the guest after SECS seconds, exit 124 (default 1800)
#     --cwd DIR         working directory inside (default: this repository's root)
#     --rwdir DIR       also make DIR writable inside (repeatable; the repository's target/, or
#                       $CARGO_TARGET_DIR when set, always is)
#     --scratch DIR     host directory shared read-write as $FLOWCTL_GUEST_SCRATCH, kept afterwards
#                       (default: a fresh /tmp/flowctl-guest.XXXXXX, removed afterwards)
#     --env NAME[=VAL]  pass a variable (repeatable); RUST_LOG, RUST_BACKTRACE, RUST_TEST_THREADS,
#                       RUST_MIN_STACK, PROPTEST_*, CARGO_TARGET_DIR, CI, NO_COLOR and FLOWCTL_* pass anyway
#     --verbose         show the guest kernel's console (for boot problems)
#
# Inside: PATH=/root/.cargo/bin:/usr/local/sbin:...:/bin, HOME=/root, bpffs mounted at /sys/fs/bpf (empty,
# with the host's mode; FLOWCTL_GUEST_BPFFS_MODE overrides), lo up. / and /root and the repository (shared explicitly when it lies under /tmp, /var/tmp, /run, ..., which vng hides) are read-only there except the --rwdir directories and target/;
# /tmp, /etc, /usr, /var and /home are throw-away overlays over the host's (writes never reach the host).
# Needs misc/guest/setup.sh first. Exit status: CMD's; 124 on timeout; 125 when the guest cannot run it.
set -euo pipefail

CACHE="${FLOWCTL_GUEST_CACHE:-/var/lib/flowctl-guest}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cpus=2 memory=2G timeout=1800 cwd="$REPO" scratch="" verbose=0
rwdirs=() envs=()

die() { echo "run.sh: $*" >&2; exit 125; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2; exit "${1:-125}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --cpus) cpus="${2:?}"; shift 2 ;;
        --memory) memory="${2:?}"; shift 2 ;;
        --timeout) timeout="${2:?}"; shift 2 ;;
        --cwd) cwd="${2:?}"; shift 2 ;;
        --rwdir) rwdirs+=("${2:?}"); shift 2 ;;
        --scratch) scratch="${2:?}"; shift 2 ;;
        --env) envs+=("${2:?}"); shift 2 ;;
        --verbose) verbose=1; shift ;;
        --) shift; break ;;
        -h|--help) usage 0 ;;
        *) echo "run.sh: unknown option $1 (the command goes after --)" >&2; usage ;;
    esac
done
[ $# -gt 0 ] || { echo "run.sh: no command given" >&2; usage; }
[[ "$cpus" =~ ^[1-9][0-9]*$ ]] || die "--cpus wants a positive integer, got '$cpus'"
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] || die "--timeout wants seconds, got '$timeout'"
[ "$(id -u)" -eq 0 ] || die "run as root (the guest runs CMD as the calling user, and the tests need root)"

# --- what setup.sh left ----------------------------------------------------------------------------------
VNG="$CACHE/venv/bin/vng"
KDIR="$CACHE/kernel"
if [ ! -x "$VNG" ] || [ ! -s "$KDIR/VERSION" ]; then
    die "no guest kernel or vng in $CACHE: run misc/guest/setup.sh first"
fi
kver="$(cat "$KDIR/VERSION")"
[ -r "$KDIR/boot/vmlinuz-$kver" ] || die "$KDIR/boot/vmlinuz-$kver missing: rerun misc/guest/setup.sh"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: rerun misc/guest/setup.sh"
[ -d "$cwd" ] || die "--cwd $cwd is not a directory"
cwd="$(cd "$cwd" && pwd)"

# --- scratch directory and the guest-side script -----------------------------------------------------------
keep_scratch=1
if [ -z "$scratch" ]; then
    scratch="$(mktemp -d /tmp/flowctl-guest.XXXXXX)"
    keep_scratch=0
fi
mkdir -p "$scratch"
scratch="$(cd "$scratch" && pwd)"
rm -f "$scratch/.guest-started" "$scratch/.guest-status"

# bpffs in the guest gets the host's mode (1777 on this machine kind, 0700 where systemd mounts it), so that
# tests which let another user reach its pins behave as on the host; FLOWCTL_GUEST_BPFFS_MODE overrides.
bpffs_mode="${FLOWCTL_GUEST_BPFFS_MODE:-}"
if [ -z "$bpffs_mode" ]; then
    bpffs_mode=0700
    if [ "$(stat -f -c %T /sys/fs/bpf 2>/dev/null)" = bpf_fs ]; then bpffs_mode="$(stat -c %a /sys/fs/bpf)"; fi
fi
[[ "$bpffs_mode" =~ ^[0-7]{3,4}$ ]] || die "FLOWCTL_GUEST_BPFFS_MODE=$bpffs_mode is not an octal mode"

target="${CARGO_TARGET_DIR:-$REPO/target}"
shares=("$scratch")
[ -d "$target" ] && shares+=("$(cd "$target" && pwd)")
for d in "${rwdirs[@]}"; do
    [ -d "$d" ] || die "--rwdir $d is not a directory"
    shares+=("$(cd "$d" && pwd)")
done
# vng puts a tmpfs over these trees in the guest: a repository (or --cwd) in one of them, e.g. a clone
# in /var/tmp, would be missing there, so it is shared read-only.
hidden_in_guest() {
    case "$1/" in /tmp/*|/var/tmp/*|/var/cache/*|/var/log/*|/var/lib/apt/*|/var/lib/private/*|/run/*) return 0 ;; esac
    return 1
}
rodirs=()
hidden_in_guest "$REPO" && rodirs+=("$REPO")
hidden_in_guest "$cwd" && [[ "$cwd/" != "$REPO/"* ]] && rodirs+=("$cwd")

{
    echo '#!/bin/bash'
    echo 'set -u'
    echo 'export PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    echo 'export HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 TMPDIR=/tmp'
    printf 'export FLOWCTL_GUEST=1 FLOWCTL_GUEST_SCRATCH=%q\n' "$scratch"
    # The variables that pass through when set on the host.
    while IFS='=' read -r name _; do
        case "$name" in
            RUST_LOG|RUST_BACKTRACE|RUST_LIB_BACKTRACE|RUST_TEST_THREADS|RUST_TEST_NOCAPTURE|RUST_MIN_STACK|\
            PROPTEST_*|CARGO_TARGET_DIR|CI|NO_COLOR|TERM|FLOWCTL_*)
                case "$name" in FLOWCTL_GUEST|FLOWCTL_GUEST_SCRATCH|FLOWCTL_GUEST_BPFFS_MODE) continue ;; esac
                printf 'export %s=%q\n' "$name" "${!name}" ;;
        esac
    done < <(env -0 | tr '\0' '\n' | grep -E '^[A-Za-z_][A-Za-z0-9_]*=' || true)
    for e in "${envs[@]}"; do
        name="${e%%=*}"
        [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "--env $e: bad variable name"
        if [[ "$e" == *=* ]]; then val="${e#*=}"; else val="${!name-}"; fi
        printf 'export %s=%q\n' "$name" "$val"
    done
    printf 'bpffs_mode=%q\n' "$bpffs_mode"
    cat <<'EOF'
ulimit -l unlimited 2>/dev/null
ip link set lo up 2>/dev/null
if ! mountpoint -q /sys/fs/bpf; then
    mount -t bpf -o "mode=$bpffs_mode" bpf /sys/fs/bpf ||
        { echo "run.sh (guest): cannot mount bpffs on /sys/fs/bpf" >&2; exit 125; }
fi
EOF
    printf ': >%q/.guest-started\n' "$scratch"
    printf 'cd %q || exit 125\n' "$cwd"
    printf '%q ' "$@"; echo
    echo 'rc=$?'
    printf 'echo "$rc" >%q/.guest-status\n' "$scratch"
    echo 'exit "$rc"'
} >"$scratch/.guest.sh"
chmod 755 "$scratch/.guest.sh"

# --- boot --------------------------------------------------------------------------------------------------
# Drivers for qemu's emulated hardware that the tests never use: not loading them shortens the boot under TCG.
blacklist=ahci,libahci,libata,ata_piix,ata_generic,sr_mod,cdrom,sd_mod,evdev,psmouse,serio_raw,i8042,
blacklist+=i6300esb,iTCO_wdt,lpc_ich,i2c_i801,i2c_smbus,pcspkr,joydev,button,floppy,parport_pc,bochs,
blacklist+=kvm,kvm_intel,kvm_amd,irqbypass,intel_rapl_msr,intel_rapl_common,intel_pmc_core,
blacklist+=aesni_intel,ghash_clmulni_intel,crc32_pclmul,crct10dif_pclmul,polyval_clmulni,sha256_ssse3,
blacklist+=sha512_ssse3,sha1_ssse3,rapl,qemu_fw_cfg,virtio_rng,rng_core
# --force-9p: vng otherwise first tries virtiofsd for / and for every --rwdir, finds only qemu 7.2's C one
# (which it refuses), and waits 3.1 s for each before falling back to 9p anyway.
vng_args=(--run "$KDIR/boot/vmlinuz-$kver" --disable-kvm --cpus "$cpus" --memory "$memory"
    --force-9p --cwd / --append "modprobe.blacklist=$blacklist")
for d in "${rodirs[@]}"; do vng_args+=(--rodir "$d"); done
for d in "${shares[@]}"; do vng_args+=(--rwdir "$d"); done
[ "$verbose" -eq 1 ] && vng_args+=(--verbose)

pgid=""
stop_guest() {
    [ -n "$pgid" ] || return 0
    kill -TERM -- "-$pgid" 2>/dev/null || return 0
    for _ in $(seq 20); do pgrep -g "$pgid" >/dev/null || return 0; sleep 0.5; done
    kill -KILL -- "-$pgid" 2>/dev/null || true
}
io=""
cleanup() {
    set +e   # (a failing kill must not end the cleanup early, nor change the exit status)
    stop_guest
    [ -n "${out_cat:-}" ] && kill "$out_cat" "$err_cat" 2>/dev/null
    [ -n "$io" ] && rm -rf "$io"
    [ "$keep_scratch" -eq 1 ] || rm -rf "$scratch"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted: guest stopped" >&2; exit 130' INT
trap 'echo "run.sh: terminated: guest stopped" >&2; exit 143' TERM HUP

# qemu reopens its stdout and stderr through /proc/self/fd/1 and /proc/self/fd/2: were they one regular file
# (run.sh >log 2>&1), the two new descriptions would both write from offset 0 over each other. Pipes keep
# them apart, and the output intact.
io="$(mktemp -d /tmp/flowctl-guest-io.XXXXXX)"
mkfifo "$io/out" "$io/err"
cat "$io/out" &
out_cat=$!
cat "$io/err" >&2 &
err_cat=$!

# timeout(1) leads a process group of its own with vng and qemu in it, and on expiry signals that whole
# group; an interrupt or the end of this script signals it too, so no qemu outlives this script.
PATH="$CACHE/venv/bin:$PATH" timeout -k 10 "$timeout" "$VNG" "${vng_args[@]}" --exec "$scratch/.guest.sh" \
    </dev/null >"$io/out" 2>"$io/err" &
pgid=$!
set +e
wait "$pgid"
vng_rc=$?
wait "$out_cat" "$err_cat"
set -e

if [ -s "$scratch/.guest-status" ]; then
    exit "$(cat "$scratch/.guest-status")"
fi
if [ "$vng_rc" -eq 124 ] || [ "$vng_rc" -eq 137 ]; then
    echo "run.sh: timed out after ${timeout}s (--timeout): guest stopped" >&2
    exit 124
fi
if [ ! -e "$scratch/.guest-started" ]; then
    echo "run.sh: the guest did not boot or could not start the command (vng exit $vng_rc, kernel $kver, --cpus $cpus --memory $memory); rerun with --verbose to see its console" >&2
    exit 125
fi
echo "run.sh: the guest stopped before the command finished (vng exit $vng_rc): out of memory or a kernel crash? rerun with --verbose" >&2
exit 125

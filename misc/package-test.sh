#!/usr/bin/env bash
# The installed-package test: lintian on the .deb, then a fresh Debian 12
# root made by mmdebstrap from Debian's archive, the .deb installed there by
# `apt-get install ./flowctl_*.deb` (apt resolves its dependencies), and
#  1. without booting it: flowctl --version, man -w for every page, the
#     shipped /etc/flowctl/agent.yaml refused with the "no collector"
#     message, systemd-analyze verify of the unit (man pages installed),
#     the unit installed but not enabled, the conffile, completions, no
#     clang;
#  2. booted with systemd-nspawn --boot (its own network namespace, a bpffs
#     instance of its own, never the host's): the unconfigured service fails
#     once with exit 78 and is not restarted; configured (a collector on
#     127.0.0.1 in the container, lo metered), `systemctl enable --now`
#     returns once the agent said READY=1, the watchdog (WatchdogSec=2s
#     here) keeps it alive, UDP sent to 127.0.0.1 inside the container
#     reaches the collector as a flow record, `systemctl reload` and
#     `systemctl stop` succeed; `apt-get remove` detaches and unpins,
#     `apt-get purge` removes the conffile and the spool.
#
#   bash misc/package-test.sh [DEB]     # as root; DEB: misc/package.sh's (built when not given)
#
# Installs mmdebstrap, systemd-container and lintian if missing. Everything
# it makes is under one directory in /var/tmp, removed at the end (the
# container stopped, the bpffs instance unmounted) even on failure or
# interrupt; FLOWCTL_PACKAGE_TEST_KEEP=1 keeps the root for a look.
# Ends with one "package test: N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d "${HOME:-/root}/.cargo/bin" ] && PATH="${HOME:-/root}/.cargo/bin:$PATH"

die() { echo "package-test.sh: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
[ "$(id -u)" -eq 0 ] || die "run as root (it builds a root file system and boots it in a container)"

need=()
have mmdebstrap || need+=(mmdebstrap)
have systemd-nspawn || need+=(systemd-container)
have lintian || need+=(lintian)
have nsenter || need+=(util-linux)
if [ "${#need[@]}" -gt 0 ]; then
    echo "package-test.sh: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

deb="${1:-}"
if [ -z "$deb" ]; then
    deb="$(bash misc/package.sh | tail -n 1)"
fi
[ -f "$deb" ] || die "$deb: no such package"
deb="$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")"
version="$(dpkg-deb -f "$deb" Version)"

work="$(mktemp -d /var/tmp/flowctl-package-test.XXXXXX)"
root="$work/root"
nspawn_pid=""
stop_container() {
    [ -n "$nspawn_pid" ] || return 0
    if kill -0 "$nspawn_pid" 2>/dev/null; then
        kill -TERM "$nspawn_pid" 2>/dev/null   # nspawn asks the container's systemd to power off
        for _ in $(seq 60); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$nspawn_pid" 2>/dev/null || true
    fi
    wait "$nspawn_pid" 2>/dev/null || true   # (its exit status tells nothing here)
    nspawn_pid=""
}
cleanup() {
    set +e
    stop_container
    mountpoint -q "$work/bpffs" && umount "$work/bpffs"
    if [ "${FLOWCTL_PACKAGE_TEST_KEEP:-0}" = 1 ]; then
        echo "package-test.sh: kept $work"
    else
        rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }
check() { # check DESCRIPTION COMMAND...
    local what="$1"; shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}

# --- lintian -----------------------------------------------------------------------------------------------
# Errors fail the test; warnings and informational tags are printed (docs/operations.md says which are kept and why).
echo "== lintian $(lintian --version | cut -d' ' -f2) on $(basename "$deb")"
lintian_out="$(lintian --display-info --pedantic --show-overrides "$deb" 2>&1 | grep -v '^running with root privileges' || true)"
[ -z "$lintian_out" ] || echo "$lintian_out"
check "lintian reports no error" bash -c '! grep -q "^E: " <<<"$1"' _ "$lintian_out"

# --- a fresh Debian 12 root --------------------------------------------------------------------------------
echo "== mmdebstrap: Debian 12 (minbase + systemd, man-db, bash-completion)"
s=$SECONDS
# The package lists stay (cleanup/apt/lists skipped) so that apt can fetch
# what the .deb depends on and minbase lacks.
mmdebstrap --quiet --variant=minbase --include=systemd,systemd-sysv,dbus,man-db,bash-completion \
    --skip=cleanup/apt/lists bookworm "$root" http://deb.debian.org/debian ||
    die "mmdebstrap failed (Debian's archive unreachable?)"
echo "root made in $((SECONDS - s)) s"

# Commands in the root without booting it (nspawn mounts /proc, /sys, /dev and a private /tmp).
# (Its complaint on exit about /run/systemd/nspawn/propagate, where /run is no tmpfs, is filtered.)
in_root() { systemd-nspawn --quiet --register=no --keep-unit -D "$root" --pipe "$@" 2> >(grep -v 'propagate' >&2); }
export -f in_root
export root

echo "== apt-get install ./$(basename "$deb")"
in_root --bind-ro="$(dirname "$deb"):/mnt/pkg" --chdir=/mnt/pkg -- \
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./$(basename "$deb")" >"$work/apt.log" 2>&1 ||
    { cat "$work/apt.log"; die "apt-get install of the package failed"; }
check "the package is installed ($version)" \
    bash -c '[ "$(in_root -- dpkg-query -W -f="\${Status} \${Version}" flowctl)" = "install ok installed $1" ]' _ "$version"

# --- 1. checks without booting -----------------------------------------------------------------------------
out="$(in_root -- flowctl --version)"
check "flowctl --version: $out" bash -c '[[ "$1" == "flowctl ${2%-*} (datapath layout v"* ]]' _ "$out" "$version"
pages=(flowctl flowctl-agent flowctl-attach flowctl-detach flowctl-status flowctl-dump flowctl-flush
    flowctl-config-check flowctl-collect flowctl-ipfix-send flowctl-completions flowctl-agent-status)
for p in "${pages[@]}"; do
    check "man -w $p" bash -c '[ "$(in_root -- man -w "$1")" = "/usr/share/man/man1/$1.1.gz" ]' _ "$p"
done
set +e
cc_out="$(in_root -- flowctl config check /etc/flowctl/agent.yaml 2>&1)"
cc_rc=$?
set -e
echo "   $cc_out"
check "the shipped agent.yaml is refused: no collector (exit $cc_rc)" \
    bash -c '[ "$1" -ne 0 ] && [[ "$2" == *"collectors: no collector configured: the agent does not start without one"* ]]' \
    _ "$cc_rc" "$cc_out"
verify="$(in_root -- systemd-analyze verify flowctl.service 2>&1)"
check "systemd-analyze verify flowctl.service (with its Documentation= pages)" [ -z "$verify" ]
[ -z "$verify" ] || echo "$verify"
check "the unit is installed, not enabled" bash -c '[ "$(in_root -- systemctl is-enabled flowctl)" = disabled ]'
check "/etc/flowctl/agent.yaml is a conffile" \
    bash -c 'in_root -- dpkg-query -W -f="\${Conffiles}" flowctl | grep -q "^ /etc/flowctl/agent.yaml "'
check "bash completion loads" \
    bash -c 'in_root -- bash -c ". /usr/share/bash-completion/completions/flowctl && complete -p flowctl" | grep -q flowctl'
check "zsh and fish completions are in place" \
    in_root -- test -s /usr/share/zsh/vendor-completions/_flowctl -a -s /usr/share/fish/vendor_completions.d/flowctl.fish
check "copyright and docs under /usr/share/doc/flowctl" \
    in_root -- test -s /usr/share/doc/flowctl/copyright -a -s /usr/share/doc/flowctl/operations.md.gz -a -s /usr/share/doc/flowctl/examples/agent.yaml
check "no clang where the package is installed" bash -c '! in_root -- sh -c "command -v clang" >/dev/null'

# --- 2. booted: the service for real -----------------------------------------------------------------------
echo "== systemd-nspawn --boot"
mkdir -p "$work/bpffs"
mount -t bpf -o mode=0700 bpf "$work/bpffs"   # a bpffs instance of the container's own
# Watchdog of 2 s instead of 30 s: pings (every 1 s) are seen to keep it alive within the test.
mkdir -p "$root/etc/systemd/system/flowctl.service.d"
printf '[Service]\nWatchdogSec=2s\n' >"$root/etc/systemd/system/flowctl.service.d/package-test.conf"
# nspawn's own seccomp filter refuses bpf() unless allowed (flowctl then
# reports the first kernel feature probe as missing).
systemd-nspawn --quiet --register=no --keep-unit -D "$root" --boot --private-network \
    --bind="$work/bpffs:/sys/fs/bpf" --capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN,CAP_SYS_ADMIN \
    --system-call-filter=bpf \
    </dev/null >"$work/console.log" 2>&1 &
nspawn_pid=$!
init=""
for _ in $(seq 120); do
    init="$(pgrep -P "$nspawn_pid" | head -n 1 || true)"
    [ -n "$init" ] && [ "$(cat "/proc/$init/comm" 2>/dev/null)" = systemd ] && break
    init=""
    sleep 0.5
done
[ -n "$init" ] || { cat "$work/console.log"; die "the container's systemd did not start"; }
in_ct() { nsenter -t "$init" -a "$@"; }
state=""
for _ in $(seq 120); do
    state="$(in_ct systemctl is-system-running 2>/dev/null || true)"
    case "$state" in running|degraded) break ;; esac
    sleep 0.5
done
check "the container booted (systemd: $state)" bash -c '[ "$1" = running ] || [ "$1" = degraded ]' _ "$state"
prop() { in_ct systemctl show -p "$2" --value "$1"; }

# Unconfigured, as shipped: one failure with EX_CONFIG, no restart loop.
set +e
in_ct systemctl start flowctl 2>/dev/null
start_rc=$?
set -e
sleep 7   # longer than RestartSec=5s
check "unconfigured: systemctl start fails" [ "$start_rc" -ne 0 ]
check "unconfigured: exit status 78, not restarted ($(prop flowctl NRestarts) restarts)" \
    bash -c '[ "$1" = 78 ] && [ "$2" = 0 ] && [ "$3" = failed ]' _ \
    "$(prop flowctl ExecMainStatus)" "$(prop flowctl NRestarts)" "$(prop flowctl ActiveState)"
check "unconfigured: the journal says no collector is configured" \
    bash -c 'nsenter -t "$1" -a journalctl -u flowctl --no-pager | grep -q "no collector configured"' _ "$init"

# Configured: a collector on loopback in the container, lo metered.
in_ct systemctl reset-failed flowctl
in_ct systemd-run --quiet --unit=ipfix-collector -p StandardOutput=file:/root/collect.json \
    flowctl collect --listen 127.0.0.1:4739 -o json
cat >"$root/etc/flowctl/agent.yaml" <<'EOF'
collectors:
  - address: 127.0.0.1:4739
interfaces:
  - name: lo
    direction: ingress
timers:
  idleTimeout: 1s
  scanInterval: 200ms
log:
  format: json
EOF
chmod 0644 "$root/etc/flowctl/agent.yaml"
s=$SECONDS
check "systemctl enable --now flowctl returns once the agent is ready" in_ct systemctl enable --quiet --now flowctl
echo "   started in $((SECONDS - s)) s: $(prop flowctl StatusText)"
check "active (running), the agent's STATUS= line shown" \
    bash -c '[ "$1" = running ] && [[ "$2" == "exporting to 1 collector(s)"* ]]' _ "$(prop flowctl SubState)" "$(prop flowctl StatusText)"
check "the journal has 'agent running' as a JSON line (log.format: json)" \
    bash -c 'nsenter -t "$1" -a journalctl -u flowctl -o cat --no-pager | grep -q "^{.*\"message\":\"agent running"' _ "$init"
# Flows: UDP to 127.0.0.1:47999 from inside the container.
in_ct bash -c 'for i in 1 2 3 4 5; do echo flowctl-package-test >/dev/udp/127.0.0.1/47999; done'
seen=0
for _ in $(seq 60); do
    if grep -q '"destinationTransportPort":47999' "$root/root/collect.json" 2>/dev/null; then seen=1; break; fi
    sleep 0.5
done
check "the collector received the flow to 127.0.0.1:47999" [ "$seen" = 1 ]
[ "$seen" = 1 ] || tail -n 5 "$root/root/collect.json" 2>/dev/null || true
w1="$(prop flowctl WatchdogTimestampMonotonic)"
sleep 5   # more than twice WatchdogSec=2s
w2="$(prop flowctl WatchdogTimestampMonotonic)"
check "the watchdog is pinged (last ping $w1 -> $w2 us) and the agent is alive after 5 s" \
    bash -c '[ "$1" != 0 ] && [ "$2" -gt "$1" ] && [ "$3" = running ] && [ "$4" = 0 ]' _ \
    "$w1" "$w2" "$(prop flowctl SubState)" "$(prop flowctl NRestarts)"
check "flowctl status and flowctl agent status work next to the service" \
    bash -c 'nsenter -t "$1" -a flowctl status | grep -q "lo" && nsenter -t "$1" -a flowctl agent status | grep -q "127.0.0.1:4739"' _ "$init"
check "systemctl reload flowctl" in_ct systemctl reload flowctl
check "reloaded and still running" \
    bash -c '[ "$1" = running ] && nsenter -t "$2" -a journalctl -u flowctl -o cat --no-pager | grep -q "configuration reloaded"' _ \
    "$(prop flowctl SubState)" "$init"
check "systemctl stop flowctl" in_ct systemctl stop flowctl
check "stopped cleanly (exit 0)" bash -c '[ "$1" = success ] && [ "$2" = 0 ]' _ "$(prop flowctl Result)" "$(prop flowctl ExecMainStatus)"

# Removal takes the classifier off and the pins away; purge removes the conffile and the spool.
# (flowctl's pins only: the kernel's own progs.debug and maps.debug are in every bpffs)
pinned() { find "$work/bpffs/flowctl" ! -type d 2>/dev/null | wc -l; }
check "the flow cache and links are pinned ($(pinned) pins) after the stop" [ "$(pinned)" -gt 0 ]
check "apt-get remove flowctl" bash -c 'nsenter -t "$1" -a env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q flowctl >"$2" 2>&1' _ "$init" "$work/remove.log"
check "removed: no pin left, the conffile kept" bash -c '[ "$1" = 0 ] && [ -f "$2/etc/flowctl/agent.yaml" ]' _ "$(pinned)" "$root"
check "apt-get purge flowctl" bash -c 'nsenter -t "$1" -a env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q flowctl >>"$2" 2>&1' _ "$init" "$work/remove.log"
check "purged: /etc/flowctl/agent.yaml and /var/lib/flowctl are gone" \
    bash -c '[ ! -e "$1/etc/flowctl/agent.yaml" ] && [ ! -e "$1/var/lib/flowctl" ]' _ "$root"
if [ "$failed" -gt 0 ]; then
    echo "== the container's journal for flowctl (a check failed)"
    in_ct journalctl -u flowctl -u ipfix-collector --no-pager -o short-monotonic | tail -n 40
    cat "$work/remove.log"
    find "$work/bpffs" -mindepth 1
fi
stop_container

echo "package test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

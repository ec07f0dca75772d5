# shellcheck shell=bash
# Helpers shared by the benchmark scripts in misc/bench/ (source this file).
#
#   bench_require_root NAME          exit unless root
#   bench_on_exit CMD...             run CMD at exit (LIFO); installs the trap
#   bench_netns_pair PREFIX          namespaces ${PREFIX}a / ${PREFIX}b, veth0 in each,
#                                    10.${BENCH_NET}.0.1/24 <-> .2/24, no default route;
#                                    removed at exit. Sets BENCH_NS_A, BENCH_NS_B,
#                                    BENCH_DEV, BENCH_IP_A, BENCH_IP_B, BENCH_MAC_B.
#   bench_in NS CMD...               run CMD in namespace NS (nsenter --net, keeps /sys/fs/bpf)
#   bench_bg CMD...                  start CMD in the background, killed at exit unless
#                                    bench_stop'ed before; sets BENCH_PID
#   bench_wait PID                   wait for a bench_bg process to end by itself
#   bench_stop PID                   SIGTERM PID and wait for it (bounded, then SIGKILL)
#   bench_wait_for FILE PATTERN      wait (10 s at most) until FILE contains PATTERN;
#                                    on timeout prints FILE and fails
#   bench_now                        wall clock, seconds with ns (float)
#   bench_sys_jiffies                sys+irq+softirq jiffies of all CPUs (/proc/stat)
#   bench_proc_ticks PID [utime|stime|both]  CPU ticks of a process (/proc/PID/stat)
#   bench_peak_rss_kb PID            peak RSS (VmHWM) of a process in KiB
#   bench_rx_packets NS DEV          rx packets of DEV in NS (ip -s -j link)
#   bench_median V...                median of numbers
#   bench_clk_tck                    clock ticks per second

bench_require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "$1: run as root (it loads eBPF and creates network namespaces)" >&2
        exit 1
    fi
}

BENCH_EXIT_CMDS=()
BENCH_BG_PIDS=" "
bench_run_exit_cmds() {
    local i
    for i in $BENCH_BG_PIDS; do bench_stop "$i"; done
    for ((i = ${#BENCH_EXIT_CMDS[@]} - 1; i >= 0; i--)); do
        eval "${BENCH_EXIT_CMDS[$i]}" >/dev/null 2>&1 || true
    done
    BENCH_EXIT_CMDS=()
}
bench_on_exit() {
    BENCH_EXIT_CMDS+=("$*")
    trap bench_run_exit_cmds EXIT
    trap 'exit 130' INT TERM
}

bench_netns_pair() {
    local p=$1
    BENCH_NS_A=${p}a BENCH_NS_B=${p}b BENCH_DEV=veth0
    BENCH_NET=${BENCH_NET:-$((100 + $$ % 100))}
    BENCH_IP_A=10.$BENCH_NET.0.1 BENCH_IP_B=10.$BENCH_NET.0.2
    ip netns add "$BENCH_NS_A"
    bench_on_exit "ip netns del $BENCH_NS_A"
    ip netns add "$BENCH_NS_B"
    bench_on_exit "ip netns del $BENCH_NS_B"
    ip link add veth0 netns "$BENCH_NS_A" type veth peer name veth0 netns "$BENCH_NS_B"
    local ns
    for ns in "$BENCH_NS_A" "$BENCH_NS_B"; do ip -n "$ns" link set lo up; done
    ip -n "$BENCH_NS_A" addr add "$BENCH_IP_A/24" dev veth0
    ip -n "$BENCH_NS_B" addr add "$BENCH_IP_B/24" dev veth0
    ip -n "$BENCH_NS_A" link set veth0 up
    ip -n "$BENCH_NS_B" link set veth0 up
    BENCH_MAC_B=$(ip -n "$BENCH_NS_B" -j link show dev veth0 | grep -o '"address":"[^"]*"' | head -1 | cut -d'"' -f4)
}

bench_in() {
    local ns=$1
    shift
    nsenter --net="/var/run/netns/$ns" "$@"
}

bench_bg() {
    "$@" &
    BENCH_PID=$!
    BENCH_BG_PIDS="$BENCH_BG_PIDS$BENCH_PID "
    bench_on_exit true
}

bench_stop() {
    local pid=$1 i
    BENCH_BG_PIDS=${BENCH_BG_PIDS// $pid / }
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

bench_wait() {
    local rc=0
    wait "$1" || rc=$?
    BENCH_BG_PIDS=${BENCH_BG_PIDS// $1 / }
    return "$rc"
}

bench_wait_for() {
    local i
    for i in $(seq 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "${0##*/}: timed out waiting for '$2' in $1:" >&2
    cat "$1" >&2
    return 1
}

bench_now() { date +%s.%N; }

bench_sys_jiffies() { awk '$1 == "cpu" { print $4 + $7 + $8; exit }' /proc/stat; }

bench_proc_ticks() {
    # Fields after the ")" that ends comm: utime is the 12th, stime the 13th.
    local what=${2:-both}
    sed 's/.*) //' "/proc/$1/stat" | awk -v w="$what" '{ if (w == "utime") print $12; else if (w == "stime") print $13; else print $12 + $13 }'
}

bench_peak_rss_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

bench_rx_packets() {
    ip -n "$1" -s -j link show dev "$2" | grep -o '"rx":{[^}]*}' | head -1 | grep -o '"packets":[0-9]*' | cut -d: -f2
}

bench_median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

bench_clk_tck() { getconf CLK_TCK; }

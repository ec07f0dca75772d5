#!/usr/bin/env bash
# flowctl versus pcap-based exporters at equal offered load (run as root).
#
# `flowctl-bench send` paces FLOWS UDP flows (IPv4 total length SIZE) out of
# veth0 in namespace A to a bound, never-read UDP socket in namespace B, at
# RATE packets/s for DURATION seconds. One exporter observes A's veth0 and
# exports IPFIX to nfcapd on 127.0.0.1 inside A:
#   none       no exporter (baseline of the system CPU)
#   flowctl    `flowctl attach` (tcx egress of veth0) + `flowctl agent` in A
#   pmacctd    pmacctd + nfprobe plugin, nfprobe_version 10 (misc/bench/peers/pmacctd.conf.in)
#   softflowd  softflowd -v 10, with the pcap timeout shim (see below)
# Every exporter gets the same timers (idle IDLE s, active ACTIVE s, 1 s
# scans) and 65536 flow slots, and is stopped cleanly so it exports what it
# still holds: SIGTERM for flowctl and pmacctd, `softflowctl shutdown` for
# softflowd (softflowd -d installs no signal handler: SIGTERM kills it
# without exporting).
#
# softflowd 1.1.0 asks libpcap for a 0 ms timeout. libpcap 1.10 (Debian 12)
# captures with TPACKET_V3 and turns 0 ms into a block-retire timeout of
# UINT_MAX ms: a 256 KiB ring block reaches softflowd only once it is full.
# A slow interface is never read (0 packets processed), a fast one in bursts,
# and the last partly filled block of a run is never read. peers.sh preloads
# misc/bench/peers/pcap_timeout_shim.c, which turns that 0 ms into 1000 ms
# (what pmacctd and tcpdump ask for). SOFTFLOWD_SHIM=0 runs softflowd as
# packaged, to see the loss.
#
# Per run, over a window of DURATION + SETTLE seconds (SETTLE lets the pcap
# peers drain their rings before they are stopped):
#   sent        packets the sender put on the wire (its JSON "sent")
#   collector   packets of the test flows in nfcapd's files (nfdump)
#   own ns/pkt  the exporter's utime+stime / sent (pmacctd: core + plugin)
#   total ns/pkt the exporter's utime + (sys+irq+softirq of all CPUs in this
#               run - the same in the `none` run of the same round, scaled to
#               the same window) / sent: the exporter's own system time plus
#               what it costs the sending path (tc program, packet taps)
#   peak RSS    VmHWM of the exporter's processes (BPF maps are kernel memory,
#               not in flowctl's RSS)
# and where packets are lost: the peers' pcap counters (received/dropped by
# libpcap), pmacct's "missing data" (core -> plugin queue), flowctl's
# not-recorded counter, UDP receive-buffer errors in A, nfcapd's sequence
# errors. The table shows medians over ROUNDS; ratios are peer / flowctl.
#
# Environment: DURATION (s, default 10), SETTLE (s, default 2), ROUNDS
# (default 1), RATES (default "50000 200000"), SIZES (default "64 1500"),
# FLOWS (default 1000), EXPORTERS (default "none flowctl pmacctd softflowd";
# none is always run; "bare" adds the bare per-CPU-hash tc counter of
# datapath.sh, which exports nothing: its share is 0, its CPU the floor), IDLE (s, default 2), ACTIVE (s, default 5),
# PMACCT_BUFFER (plugin_buffer_size, default 40960; 0 = pmacct's default),
# SOFTFLOWD_SHIM (1 default, 0 = as packaged), BUILD (1 default; 0 uses the
# binaries in target/release as they are), RESULTS (per-run TSV file).
# Traffic stays inside the two namespaces it creates (no default route) and
# their loopback; namespaces, processes and pins are removed at exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
# rustup's cargo may not be on PATH in a bare root shell or CI.
[ -d "${HOME:-/root}/.cargo/bin" ] && PATH="${HOME:-/root}/.cargo/bin:$PATH"
# shellcheck source=misc/bench/lib.sh
. misc/bench/lib.sh

DURATION=${DURATION:-10}
SETTLE=${SETTLE:-2}
ROUNDS=${ROUNDS:-1}
RATES=${RATES:-"50000 200000"}
SIZES=${SIZES:-"64 1500"}
FLOWS=${FLOWS:-1000}
EXPORTERS=${EXPORTERS:-"none flowctl pmacctd softflowd"}
IDLE=${IDLE:-2}
ACTIVE=${ACTIVE:-5}
PMACCT_BUFFER=${PMACCT_BUFFER:-40960}
SOFTFLOWD_SHIM=${SOFTFLOWD_SHIM:-1}
BUILD=${BUILD:-1}
MAX_FLOWS=65536
SINK_PORT=9
IPFIX_PORT=9995

die() {
    echo "peers.sh: $*" >&2
    exit 2
}
bench_require_root misc/bench/peers.sh
for v in DURATION SETTLE ROUNDS FLOWS IDLE ACTIVE PMACCT_BUFFER; do
    case ${!v} in '' | *[!0-9]*) die "$v must be a whole number (got '${!v}')" ;; esac
done
if [ "$DURATION" -eq 0 ] || [ "$ROUNDS" -eq 0 ]; then die "DURATION and ROUNDS must be > 0"; fi
for r in $RATES; do case $r in '' | 0 | *[!0-9]*) die "RATES are packets/s > 0 (got '$r')" ;; esac; done
for s in $SIZES; do case $s in '' | *[!0-9]*) die "SIZES are IPv4 total lengths 64..1500 (got '$s')" ;; esac; done
ex_list=(none)
for e in $EXPORTERS; do
    case $e in
    none) ;;
    bare | flowctl | pmacctd | softflowd) ex_list+=("$e") ;;
    *) die "unknown exporter $e (none, bare, flowctl, pmacctd, softflowd)" ;;
    esac
done

# --- dependencies: the peers, the collector, a C compiler for the shim.
need=()
command -v pmacctd >/dev/null || need+=(pmacct)
command -v softflowd >/dev/null && command -v softflowctl >/dev/null || need+=(softflowd)
command -v nfcapd >/dev/null && command -v nfdump >/dev/null || need+=(nfdump)
command -v cc >/dev/null || need+=(gcc)
command -v bpftool >/dev/null || need+=(bpftool)
if [ "${#need[@]}" -gt 0 ]; then
    echo "== installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
bash misc/deps.sh

if [ "$BUILD" = 1 ]; then
    echo "== building (release)"
    cargo build --release -q -p flowctl -p flowctl-bench
fi
flowctl=${CARGO_TARGET_DIR:-$PWD/target}/release/flowctl
bench=${CARGO_TARGET_DIR:-$PWD/target}/release/flowctl-bench
if [ ! -x "$flowctl" ] || [ ! -x "$bench" ]; then die "missing $flowctl or $bench (run with BUILD=1)"; fi

n_pairs=$(($(wc -w <<<"$RATES") * $(wc -w <<<"$SIZES")))
n_runs=$((ROUNDS * n_pairs * ${#ex_list[@]}))
per_run=$((DURATION + SETTLE + 5))
echo "== $n_runs runs ($ROUNDS round(s) x rates [$RATES] x sizes [$SIZES] x [${ex_list[*]}]), about $((n_runs * per_run / 60 + 1)) min"

P=fcpr$$
export FLOWCTL_PIN_DIR=/sys/fs/bpf/$P
WORK=$(mktemp -d "/tmp/$P.XXXX")
bench_on_exit "rm -rf $WORK"
BPF_STATS_BEFORE=$(cat /proc/sys/kernel/bpf_stats_enabled)
bench_on_exit "echo $BPF_STATS_BEFORE >/proc/sys/kernel/bpf_stats_enabled"
bench_on_exit "$flowctl detach --all --purge; rm -rf $FLOWCTL_PIN_DIR"
bench_netns_pair "$P"
A=$BENCH_NS_A B=$BENCH_NS_B DEV=$BENCH_DEV
RESULTS=${RESULTS:-$WORK/results.tsv}
HZ=$(bench_clk_tck)
shim=$WORK/pcap_timeout_shim.so
cc -O2 -shared -fPIC -o "$shim" misc/bench/peers/pcap_timeout_shim.c -ldl

bench_bg "$bench" sink --netns "$B" --bind "$BENCH_IP_B:$SINK_PORT"
sleep 0.3

# Waits (bounded, 10 s) until PID is gone.
wait_gone() {
    local i
    for i in $(seq 100); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# PID and its children (pmacctd's plugin runs as a child of the core process).
tree_pids() { { echo "$1"; pgrep -P "$1" || true; } | tr '\n' ' '; }
sum_ticks() {
    local t=0 p what=$1
    shift
    for p in "$@"; do t=$((t + $(bench_proc_ticks "$p" "$what" 2>/dev/null || echo 0))); done
    echo "$t"
}
# Scheduler run time of processes in ns (/proc/PID/schedstat, exact).
sum_runtime_ns() {
    local t=0 p v
    for p in "$@"; do
        v=$(cut -d' ' -f1 "/proc/$p/schedstat" 2>/dev/null || echo 0)
        t=$((t + v))
    done
    echo "$t"
}
# ksoftirqd threads: softirq work the kernel defers out of the sender's context.
read -r -a KSOFTIRQD <<<"$(grep -l '^ksoftirqd/' /proc/[0-9]*/comm 2>/dev/null | cut -d/ -f3 | tr '\n' ' ')"
# "user sys" of the children of a `times` output, in ns.
times_children_ns() { awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] } printf "%.0f", t * 1e9 }' "$1"; }
sum_rss_kb() {
    local t=0 p
    for p in "$@"; do t=$((t + $(bench_peak_rss_kb "$p" 2>/dev/null || echo 0))); done
    echo "$t"
}
# UDP receive-buffer errors in namespace A (datagrams the collector lost).
# shellcheck disable=SC2016 # awk program
udp_rcvbuf_errors() { bench_in "$A" awk '/^Udp:/ { n++; if (n == 1) for (i = 1; i <= NF; i++) c[$i] = i; else print $c["RcvbufErrors"] }' /proc/net/snmp; }

# Starts EXPORTER; sets EX_PID (the process whose tree is measured).
start_exporter() {
    EX_PID=
    case $1 in
    none) ;;
    bare)
        echo 1 >/proc/sys/kernel/bpf_stats_enabled
        bench_bg "$bench" bare --netns "$A" --ifname "$DEV" >"$WORK/bare.json" 2>"$WORK/bare.log"
        EX_PID=$BENCH_PID
        bench_wait_for "$WORK/bare.log" "attached"
        ;;
    flowctl)
        # The kernel's own per-program timing (run_time_ns / run_cnt), on
        # for flowctl runs only: it adds two clock reads per packet to the
        # flowctl runs' path CPU, never to the others.
        echo 1 >/proc/sys/kernel/bpf_stats_enabled
        "$flowctl" attach --netns "$A" --interface "$DEV" --direction egress --max-flows "$MAX_FLOWS" >/dev/null
        RUST_LOG=info bench_bg nsenter --net="/var/run/netns/$A" "$flowctl" agent --interface "$DEV" --direction egress \
            --collector "udp://127.0.0.1:$IPFIX_PORT" --idle-timeout "${IDLE}s" --active-timeout "${ACTIVE}s" \
            --scan-interval 1s --max-flows "$MAX_FLOWS" 2>"$WORK/agent.log"
        EX_PID=$BENCH_PID
        bench_wait_for "$WORK/agent.log" "agent running"
        ;;
    pmacctd)
        local buffer_line="! plugin_buffer_size: pmacct's default"
        [ "$PMACCT_BUFFER" -gt 0 ] && buffer_line="plugin_buffer_size: $PMACCT_BUFFER"
        sed -e "s|@WORK@|$WORK|g" -e "s|@IFACE@|$DEV|g" -e "s|@COLLECTOR@|127.0.0.1:$IPFIX_PORT|g" \
            -e "s|@MAX_FLOWS@|$MAX_FLOWS|g" -e "s|@IDLE@|$IDLE|g" -e "s|@ACTIVE@|$ACTIVE|g" \
            -e "s|@BUFFER_LINE@|$buffer_line|g" misc/bench/peers/pmacctd.conf.in >"$WORK/pmacctd.conf"
        : >"$WORK/pmacctd.log"
        bench_bg nsenter --net="/var/run/netns/$A" pmacctd -f "$WORK/pmacctd.conf" >"$WORK/pmacctd.err" 2>&1
        EX_PID=$BENCH_PID
        bench_wait_for "$WORK/pmacctd.log" "Exporting flows to"
        ;;
    softflowd)
        local preload=
        [ "$SOFTFLOWD_SHIM" = 1 ] && preload=$shim
        rm -f "$WORK/softflowd.ctl"
        LD_PRELOAD=$preload bench_bg nsenter --net="/var/run/netns/$A" softflowd -d -i "$DEV" -n "127.0.0.1:$IPFIX_PORT" -v 10 \
            -m "$MAX_FLOWS" -c "$WORK/softflowd.ctl" -p "$WORK/softflowd.pid" -t "udp=$IDLE" -t "tcp=$IDLE" \
            -t "icmp=$IDLE" -t "general=$IDLE" -t "maxlife=$ACTIVE" -t expint=1 >"$WORK/softflowd.err" 2>&1
        EX_PID=$BENCH_PID
        bench_wait_for "$WORK/softflowd.err" "starting data collection"
        ;;
    esac
    sleep 0.5
}

# Mean run time per packet of the tc program named $1, as the kernel measured
# it (kernel.bpf_stats_enabled: run_time_ns / run_cnt).
prog_ns() {
    bpftool prog show name "$1" -j 2>/dev/null | tr -d ' \n' |
        sed -n 's/.*"run_time_ns":\([0-9]*\).*"run_cnt":\([0-9]*\).*/\1 \2/p' |
        awk '$2 > 0 { printf "%.1f", $1 / $2 }'
}

# Loss counters read while the exporter still runs, as "key=value ..." in EX_DIAG.
exporter_diag() {
    EX_DIAG=
    case $1 in
    bare)
        EX_DIAG="prog_ns=$(prog_ns bare_counter)"
        ;;
    flowctl)
        EX_DIAG="not_recorded=$("$flowctl" status -o json | tr -d ' \n' | grep -o '"not_recorded_packets":[0-9]*' | cut -d: -f2)"
        EX_DIAG+=" prog_ns=$(prog_ns flowctl_egress)"
        ;;
    softflowd)
        local st
        st=$(softflowctl -c "$WORK/softflowd.ctl" statistics 2>&1 || true)
        EX_DIAG="processed=$(awk -F': ' '/^Packets processed/ { print $2 }' <<<"$st")"
        EX_DIAG+=" pcap_recv=$(awk -F': ' '/received by libpcap/ { print $2 }' <<<"$st")"
        EX_DIAG+=" pcap_drop=$(awk -F': ' '/dropped by libpcap/ { print $2 }' <<<"$st")"
        EX_DIAG+=" if_drop=$(awk -F': ' '/dropped by interface/ { print $2 }' <<<"$st")"
        ;;
    esac
}

# Stops EXPORTER cleanly (it exports what it holds); appends to EX_DIAG.
stop_exporter() {
    case $1 in
    none) ;;
    bare)
        bench_stop "$EX_PID"
        echo "$BPF_STATS_BEFORE" >/proc/sys/kernel/bpf_stats_enabled
        ;;
    flowctl)
        bench_stop "$EX_PID"
        local fin
        fin=$(grep -o '[0-9]* records in [0-9]* messages, [0-9]* not sent' "$WORK/agent.log" | tail -1 || true)
        EX_DIAG+=" records=$(cut -d' ' -f1 <<<"$fin") not_sent=$(cut -d' ' -f6 <<<"$fin")"
        "$flowctl" detach --all --purge >/dev/null
        echo "$BPF_STATS_BEFORE" >/proc/sys/kernel/bpf_stats_enabled
        ;;
    pmacctd)
        local pids
        pids=$(tree_pids "$EX_PID")
        bench_stop "$EX_PID"
        for p in $pids; do wait_gone "$p" || kill -KILL "$p" 2>/dev/null || true; done
        # On SIGTERM the core prints "[veth0,0] received_packets=N dropped_packets=M".
        EX_DIAG+=" pcap_recv=$(grep -o 'received_packets=[0-9]*' "$WORK/pmacctd.err" | tail -1 | cut -d= -f2 || true)"
        EX_DIAG+=" pcap_drop=$(grep -o 'dropped_packets=[0-9]*' "$WORK/pmacctd.err" | tail -1 | cut -d= -f2 || true)"
        EX_DIAG+=" pipe_missing=$(grep -c 'missing data' "$WORK/pmacctd.log" || true)"
        ;;
    softflowd)
        softflowctl -c "$WORK/softflowd.ctl" shutdown >/dev/null 2>&1 || true
        if wait_gone "$EX_PID"; then
            bench_wait "$EX_PID" || true
        else
            echo "peers.sh: softflowd ignored 'shutdown', killing it" >&2
            bench_stop "$EX_PID"
        fi
        ;;
    esac
}

# One run; sets RUN_LINE (TSV: round rate size exporter sent collector
# own_ns user_ticks sys_ticks window_s rss_kb path_ns diag). own_ns: the
# exporter's run time; user_ticks: its utime; sys_ticks: sys+irq+softirq of
# all CPUs; path_ns: the sender's user+sys plus ksoftirqd's run time.
run_one() {
    local round=$1 rate=$2 size=$3 ex=$4
    local nfdir=$WORK/nfcapd.$ex.$rate.$size.$round
    mkdir -p "$nfdir"
    bench_bg nsenter --net="/var/run/netns/$A" nfcapd -b 127.0.0.1 -p "$IPFIX_PORT" -w "$nfdir" -B 16777216 >"$WORK/nfcapd.log" 2>&1
    local nfcapd_pid=$BENCH_PID
    bench_wait_for "$WORK/nfcapd.log" "Startup"
    start_exporter "$ex" >&2
    local -a pids=()
    [ -n "$EX_PID" ] && read -r -a pids <<<"$(tree_pids "$EX_PID")"
    local udp0 t0 sys0 own0 usr0 ksi0 t1 sys1 own1 usr1 ksi1 rss sender_ns
    udp0=$(udp_rcvbuf_errors)
    t0=$(bench_now) sys0=$(bench_sys_jiffies) usr0=$(sum_ticks utime "${pids[@]}")
    own0=$(sum_runtime_ns "${pids[@]}") ksi0=$(sum_runtime_ns "${KSOFTIRQD[@]}")
    # In a subshell so that `times` reports the sender's own user+sys time.
    (
        timeout $((DURATION + 30)) "$bench" send --netns "$A" --ifname "$DEV" --dst-mac "$BENCH_MAC_B" \
            --src-ip "$BENCH_IP_A" --dst-ip "$BENCH_IP_B" --dst-port "$SINK_PORT" --flows "$FLOWS" --size "$size" \
            --rate "$rate" --duration "$DURATION" >"$WORK/send.json"
        times >"$WORK/send.times"
    )
    sleep "$SETTLE"
    [ -n "$EX_PID" ] && read -r -a pids <<<"$(tree_pids "$EX_PID")"
    t1=$(bench_now) sys1=$(bench_sys_jiffies) usr1=$(sum_ticks utime "${pids[@]}")
    own1=$(sum_runtime_ns "${pids[@]}") ksi1=$(sum_runtime_ns "${KSOFTIRQD[@]}")
    sender_ns=$(times_children_ns "$WORK/send.times")
    rss=$(sum_rss_kb "${pids[@]}")
    exporter_diag "$ex"
    stop_exporter "$ex"
    sleep 0.5
    bench_stop "$nfcapd_pid"
    local seq_err udp_err sent got
    seq_err=$(grep -o 'Sequence Errors: [0-9]*' "$WORK/nfcapd.log" | tail -1 | grep -o '[0-9]*$' || echo '?')
    udp_err=$(($(udp_rcvbuf_errors) - udp0))
    sent=$(grep -o '"sent":[0-9]*' "$WORK/send.json" | cut -d: -f2)
    got=$(timeout 60 nfdump -R "$nfdir" -q -N -o 'fmt:%pkt' \
        "proto udp and src ip $BENCH_IP_A and dst ip $BENCH_IP_B and dst port $SINK_PORT" 2>/dev/null |
        awk '{ n += $1 } END { print n + 0 }')
    rm -rf "$nfdir"
    RUN_LINE=$(printf '%s\t' "$round" "$rate" "$size" "$ex" "$sent" "$got" $((own1 - own0)) $((usr1 - usr0)) \
        $((sys1 - sys0)) "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" "$rss" \
        $((sender_ns + ksi1 - ksi0)))
    RUN_LINE+="$EX_DIAG udp_rcvbuf_err=$udp_err nfcapd_seq_err=$seq_err"
}

echo "== $A:$DEV ($BENCH_IP_A) -> $B:$DEV ($BENCH_IP_B), $FLOWS UDP flows, ${DURATION}s sends + ${SETTLE}s settle, collector nfcapd 127.0.0.1:$IPFIX_PORT in $A"
echo "== timers: idle ${IDLE}s, active ${ACTIVE}s; softflowd shim: $SOFTFLOWD_SHIM; pmacct plugin_buffer_size: $PMACCT_BUFFER"
echo "== other load on this machine skews the CPU figures; $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$RESULTS"
n_ex=${#ex_list[@]}
for round in $(seq "$ROUNDS"); do
    for rate in $RATES; do
        for size in $SIZES; do
            for i in $(seq 0 $((n_ex - 1))); do
                ex=${ex_list[$(((i + round - 1) % n_ex))]}
                run_one "$round" "$rate" "$size" "$ex"
                echo "$RUN_LINE" >>"$RESULTS"
                IFS=$'\t' read -r _ _ _ _ sent got own _ _ win rss path diag <<<"$RUN_LINE"
                printf 'round %s %7s pps %5s B %-9s sent %8s collector %8s own %6.1f ms path %7.1f ms %6.2fs rss %6s KiB %s\n' \
                    "$round" "$rate" "$size" "$ex" "$sent" "$got" "$(awk -v v="$own" 'BEGIN { print v / 1e6 }')" \
                    "$(awk -v v="$path" 'BEGIN { print v / 1e6 }')" "$win" "$rss" "$diag"
            done
        done
    done
done

# Per run (exporters only): share, own CPU and both totals per sent packet,
# against the none run of the same round, rate and size.
#   total(path) = own + (sender + ksoftirqd) - the same in the none run
#   total(stat) = exporter utime + sys+irq+softirq of all CPUs - the same in
#                 the none run (scaled to this run's window)
summary=$WORK/summary.tsv
awk -F'\t' -v hz="$HZ" '
    { key = $1 SUBSEP $2 SUBSEP $3; row[NR] = $0 }
    $4 == "none" { b_sys[key] = $9; b_win[key] = $10; b_path[key] = $12 / ($5 > 0 ? $5 : 1) }
    END {
        tick = 1e9 / hz
        for (i = 1; i <= NR; i++) {
            split(row[i], f, "\t")
            if (f[4] == "none") continue
            k = f[1] SUBSEP f[2] SUBSEP f[3]
            sent = f[5] > 0 ? f[5] : 1
            path = (f[7] + f[12]) / sent - b_path[k]
            stat = (f[8] * tick + (f[9] - b_sys[k] * (b_win[k] > 0 ? f[10] / b_win[k] : 1)) * tick) / sent
            printf "%s\t%s\t%s\t%s\t%s\t%s\t%.4f\t%.1f\t%.1f\t%.1f\t%.1f\n", f[1], f[2], f[3], f[4], f[5], f[6],
                100 * f[6] / sent, f[7] / sent, path, stat, f[11] / 1024
        }
    }' "$RESULTS" >"$summary"

med() { # median of summary column C for rate R, size S, exporter E
    local -a v
    mapfile -t v < <(awk -F'\t' -v r="$1" -v s="$2" -v e="$3" -v c="$4" '$2 == r && $3 == s && $4 == e { print $c }' "$summary")
    if [ "${#v[@]}" -gt 0 ]; then bench_median "${v[@]}"; else echo 0; fi
}
echo
echo "== medians over $ROUNDS round(s); per-run lines in $RESULTS"
echo "   (round rate size exporter sent collector own_ns user_ticks sys_ticks window_s rss_kb path_ns diag)"
printf '%-9s %6s %4s %9s %9s %8s | %7s %8s %8s | %7s | %-17s\n' exporter rate size sent collector "share%" \
    "own ns" "total ns" "total ns" "RSS" "peer / flowctl"
printf '%-9s %6s %4s %9s %9s %8s | %7s %8s %8s | %7s | %5s %5s %5s\n' "" pps B "" "" "" "/pkt" "(path)" "(stat)" \
    MiB path stat RSS
for rate in $RATES; do
    for size in $SIZES; do
        fc_path=$(med "$rate" "$size" flowctl 9) fc_stat=$(med "$rate" "$size" flowctl 10)
        fc_rss=$(med "$rate" "$size" flowctl 11)
        for ex in "${ex_list[@]}"; do
            [ "$ex" = none ] && continue
            awk -v e="$ex" -v r="$rate" -v s="$size" -v sent="$(med "$rate" "$size" "$ex" 5)" \
                -v got="$(med "$rate" "$size" "$ex" 6)" -v share="$(med "$rate" "$size" "$ex" 7)" \
                -v own="$(med "$rate" "$size" "$ex" 8)" -v path="$(med "$rate" "$size" "$ex" 9)" \
                -v stat="$(med "$rate" "$size" "$ex" 10)" -v rss="$(med "$rate" "$size" "$ex" 11)" \
                -v fp="$fc_path" -v fs="$fc_stat" -v fr="$fc_rss" '
                function ratio(a, b) { return b > 0 ? sprintf("%5.2f", a / b) : "  n/a" }
                BEGIN {
                    printf "%-9s %6s %4s %9d %9d %8.3f | %7.1f %8.1f %8.1f | %7.1f | %s %s %s\n", e, r, s, sent, got,
                        share, own, path, stat, rss, ratio(path, fp), ratio(stat, fs), ratio(rss, fr)
                }'
        done
    done
done
cat <<'EOF'

share% = packets of the test flows in nfcapd's files / packets sent.
own    = the exporter's CPU run time (pmacctd: core + plugin) per sent packet.
total (path) = own + the extra CPU of the sending path over the none run
       (sender user+sys + ksoftirqd: tc program, packet taps, wake-ups).
total (stat) = the exporter's utime + the extra sys+irq+softirq of ALL CPUs
       over the none run (/proc/stat, 1/HZ ticks): what other work on the
       machine disturbs most; (path) is the steadier figure on a busy box.
RSS    = peak RSS (VmHWM) of the exporter's processes; flowctl's flow cache is
       a BPF map (kernel memory), not in its RSS.
EOF

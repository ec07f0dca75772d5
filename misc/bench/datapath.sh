#!/usr/bin/env bash
# Datapath cost benchmark (run as root).
#
# 64-byte UDP (IPv4 total length) sent by `flowctl-bench send` as fast as one
# core can, out of veth0 in namespace A to a bound (never read) UDP socket in
# namespace B, for 1 and 10,000 flows, in three modes:
#   none     nothing attached
#   bare     `flowctl-bench bare`: a bare per-CPU-hash tc counter (tcx egress)
#   bare60   the same counter with its 16-byte key padded to 60 bytes, the
#            width of flowctl's (`bare --wide-key`; not run by default):
#            what the key's width alone costs
#   flowctl  `flowctl attach` on A's veth0 egress + `flowctl agent` running in A,
#            exporting IPFIX to a UDP sink on 127.0.0.1 (default scan interval)
# Modes alternate within every round (the order rotates each round); the
# table shows medians over rounds, and the ratios are computed per round
# (same round = neighbouring runs), then the median is taken.
#
# Measured over DURATION seconds after a 1 s warm-up:
#   rx pps        packets received by B's veth0 (ip -s link) / wall seconds
#   sys ns/pkt    sys+irq+softirq time of ALL CPUs (/proc/stat) / rx packets
#                 (sender's syscalls, tc programs, veth and the receiver's stack)
#   agent ns/pkt  the agent's utime+stime / rx packets (flowctl mode only)
#   total ns/pkt  sys ns/pkt + the agent's utime (its stime is already in sys)
#   path ns/pkt   CPU of the sender + ksoftirqd + the agent / rx packets: the
#                 processes that move the packets (without IRQ time
#                 accounting, softirqs count to the task they interrupt), so
#                 other load shows in it less (it still slows the CPU and
#                 evicts caches)
# Then, with no traffic, the programs' own cost on one 64-byte frame as the
# kernel measures it (BPF_PROG_TEST_RUN, `flowctl-bench prog-cost`): far less
# noisy than the rates, it shows what the datapath adds over the bare counter.
#
# SENDERS=2 runs two senders, pinned to CPUs 0 and 1, on the same flows: with
# FLOWS=1 both CPUs count into one flow at once (the contention case).
#
# Environment: DURATION (s, default 10), ROUNDS (default 3), FLOWS (default
# "1 10000"), MODES (default "none bare flowctl"), SIZE (default 64),
# SENDERS (1 or 2, default 1),
# RESULTS (file for the per-run TSV, default: a temp file that is printed),
# AGENT=0 (flowctl mode without the agent: the datapath's cost alone),
# SAMPLE=N (flowctl mode attaches with `--sample-interval N`, SAMPLE_MODE
# random or deterministic, default random; prog-cost also measures the
# classifier sampling 1 in N against the unsampled one, alternating),
# BASELINE_OBJECT (another build of the classifier, e.g. the previous
# release's bpf/flowctl.bpf.c compiled with the same clang flags:
# prog-cost measures it alternating with this one, `flowctl_over_baseline`).
# Traffic stays inside the two namespaces it creates (no default route) and
# on their loopback; everything is removed at exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
# rustup's cargo may not be on PATH in a bare root shell or CI.
[ -d "${HOME:-/root}/.cargo/bin" ] && PATH="${HOME:-/root}/.cargo/bin:$PATH"
# shellcheck source=misc/bench/lib.sh
. misc/bench/lib.sh

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
FLOWS=${FLOWS:-"1 10000"}
MODES=${MODES:-"none bare flowctl"}
SIZE=${SIZE:-64}
AGENT=${AGENT:-1}
SENDERS=${SENDERS:-1}
SAMPLE=${SAMPLE:-1}
SAMPLE_MODE=${SAMPLE_MODE:-random}
BASELINE_OBJECT=${BASELINE_OBJECT:-}
WARMUP=1
SINK_PORT=9
IPFIX_PORT=4739

bench_require_root misc/bench/datapath.sh
for m in $MODES; do
    case $m in none | bare | bare60 | flowctl) ;; *) echo "datapath.sh: unknown mode $m (none, bare, bare60, flowctl)" >&2; exit 2 ;; esac
done
case $DURATION$ROUNDS in *[!0-9]*) echo "datapath.sh: DURATION and ROUNDS are whole numbers" >&2; exit 2 ;; esac
case $SENDERS in 1 | 2) ;; *) echo "datapath.sh: SENDERS is 1 or 2" >&2; exit 2 ;; esac

echo "== building (release)"
cargo build --release -q -p flowctl -p flowctl-bench
flowctl=${CARGO_TARGET_DIR:-$PWD/target}/release/flowctl
bench=${CARGO_TARGET_DIR:-$PWD/target}/release/flowctl-bench

P=fcdp$$
export FLOWCTL_PIN_DIR=/sys/fs/bpf/$P
WORK=$(mktemp -d "/tmp/$P.XXXX")
bench_on_exit "rm -rf $WORK"
bench_on_exit "$flowctl detach --all --purge; rm -rf $FLOWCTL_PIN_DIR"
bench_netns_pair "$P"
A=$BENCH_NS_A B=$BENCH_NS_B DEV=$BENCH_DEV
RESULTS=${RESULTS:-$WORK/results.tsv}
HZ=$(bench_clk_tck)

bench_bg "$bench" sink --netns "$B" --bind "$BENCH_IP_B:$SINK_PORT"
bench_bg "$bench" sink --netns "$A" --bind "127.0.0.1:$IPFIX_PORT"
sleep 0.3

# Sets MODE_PID after attaching MODE; MODE_PID is the process whose CPU is
# reported (the agent) or the bare counter.
start_mode() {
    MODE_PID=
    case $1 in
    none) ;;
    bare | bare60)
        bench_bg "$bench" bare --netns "$A" --ifname "$DEV" $([ "$1" = bare60 ] && echo --wide-key) \
            >"$WORK/bare.json" 2>"$WORK/bare.log"
        MODE_PID=$BENCH_PID
        bench_wait_for "$WORK/bare.log" "attached"
        ;;
    flowctl)
        "$flowctl" attach --netns "$A" --interface "$DEV" --direction egress \
            --sample-interval "$SAMPLE" --sample-mode "$SAMPLE_MODE" >/dev/null
        [ "$AGENT" = 0 ] && return 0
        RUST_LOG=info bench_bg nsenter --net="/var/run/netns/$A" "$flowctl" agent --interface "$DEV" \
            --direction egress --collector "udp://127.0.0.1:$IPFIX_PORT" 2>"$WORK/agent.log"
        MODE_PID=$BENCH_PID
        bench_wait_for "$WORK/agent.log" "agent running"
        ;;
    esac
}

# Detaches MODE; prints what it counted (a sanity check).
stop_mode() {
    case $1 in
    none) ;;
    bare | bare60)
        bench_stop "$MODE_PID"
        echo "$1 counted $(cat "$WORK/bare.json")"
        ;;
    flowctl)
        local flows
        flows=$("$flowctl" status -o json | tr -d ' \n' | grep -o '"flows":[0-9]*' | cut -d: -f2)
        if [ -n "$MODE_PID" ]; then
            echo "flowctl cache: $flows flows, agent peak RSS $(bench_peak_rss_kb "$MODE_PID") KiB"
            bench_stop "$MODE_PID"
        else
            echo "flowctl cache: $flows flows (no agent)"
        fi
        "$flowctl" detach --all --purge >/dev/null
        ;;
    esac
}

# CPU ticks of the ksoftirqd threads (they run what the sender's context
# leaves of the receive softirqs).
ksoftirqd_ticks() {
    local pid sum=0
    for pid in $(pgrep '^ksoftirqd/'); do sum=$((sum + $(bench_proc_ticks "$pid"))); done
    echo "$sum"
}

# Prints "wall rx sys-jiffies agent-ticks agent-utime path-ticks" now;
# path = the senders + ksoftirqd + the agent, the processes that move packets.
sample() {
    local senders=$1 agent=${2:-} t rx sys ag=0 agu=0 path pid
    t=$(bench_now) rx=$(bench_rx_packets "$B" "$DEV") sys=$(bench_sys_jiffies)
    if [ -n "$agent" ]; then ag=$(bench_proc_ticks "$agent") agu=$(bench_proc_ticks "$agent" utime); fi
    path=$(($(ksoftirqd_ticks) + ag))
    for pid in $senders; do path=$((path + $(bench_proc_ticks "$pid"))); done
    echo "$t $rx $sys $ag $agu $path"
}

# One run: sets RUN_LINE to the TSV "flows mode round pps sys_ns agent_ns
# total_ns path_ns sender-json".
run_one() {
    local flows=$1 mode=$2 round=$3
    start_mode "$mode" >&2
    local senders="" cpu pin=()
    for cpu in $(seq 0 $((SENDERS - 1))); do
        [ "$SENDERS" -gt 1 ] && pin=(taskset -c "$cpu")
        bench_bg "${pin[@]}" "$bench" send --netns "$A" --ifname "$DEV" --dst-mac "$BENCH_MAC_B" --src-ip "$BENCH_IP_A" \
            --dst-ip "$BENCH_IP_B" --dst-port "$SINK_PORT" --flows "$flows" --size "$SIZE" --rate 0 \
            --duration $((WARMUP + DURATION + 3)) >"$WORK/sender$cpu.json"
        senders="$senders $BENCH_PID"
    done
    local agent=
    [ "$mode" = flowctl ] && agent=$MODE_PID
    # The senders outlast the second sample by 3 s: on a loaded machine
    # taking a sample can take a second or more.
    sleep "$WARMUP"
    local s0 s1 pid
    s0=$(sample "$senders" "$agent")
    sleep "$DURATION"
    s1=$(sample "$senders" "$agent")
    for pid in $senders; do bench_wait "$pid"; done
    cat "$WORK"/sender*.json | tr "\n" " " >"$WORK/send.json"
    stop_mode "$mode" >&2
    RUN_LINE=$(awk -v f="$flows" -v m="$mode" -v r="$round" -v s0="$s0" -v s1="$s1" -v hz="$HZ" \
        -v sent="$(cat "$WORK/send.json")" \
        'BEGIN {
            split(s0, a, " "); split(s1, b, " ")
            p = b[2] - a[2]; if (p <= 0) p = 1
            ns = 1e9 / hz / p
            sys = (b[3] - a[3]) * ns; ag = (b[4] - a[4]) * ns; agu = (b[5] - a[5]) * ns
            printf "%s\t%s\t%s\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\n", f, m, r, p / (b[1] - a[1]), sys, ag, sys + agu, (b[6] - a[6]) * ns, sent
        }')
}

echo "== $A:veth0 ($BENCH_IP_A) -> $B:veth0 ($BENCH_IP_B), $SIZE-byte UDP, ${DURATION}s runs, $ROUNDS rounds, flows: $FLOWS, modes: $MODES, senders: $SENDERS$([ "$AGENT" = 0 ] && echo ' (flowctl without the agent)')"
echo "== other load on this machine skews the figures; $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$RESULTS"
read -r -a mode_list <<<"$MODES"
n_modes=${#mode_list[@]}
for round in $(seq "$ROUNDS"); do
    for flows in $FLOWS; do
        for i in $(seq 0 $((n_modes - 1))); do
            mode=${mode_list[$(((i + round - 1) % n_modes))]}
            run_one "$flows" "$mode" "$round"
            line=$RUN_LINE
            echo "$line" >>"$RESULTS"
            printf 'round %s  flows %-6s %-8s rx %9s pps  sys %6s  agent %5s  total %6s  path %6s ns/pkt  sender %s\n' \
                $(cut -f3 <<<"$line") "$flows" "$mode" $(cut -f4-9 <<<"$line")
        done
    done
done

col() { awk -F'\t' -v f="$1" -v m="$2" -v c="$3" '$1 == f && $2 == m { print $c }' "$RESULTS"; }
has_mode() { [[ " $MODES " == *" $1 "* ]]; }
# Median over rounds of the per-round ratio of column C between modes M1 and M2.
ratio() {
    local f=$1 m1=$2 m2=$3 c=$4
    local r
    r=$(awk -F'\t' -v f="$f" -v a="$m1" -v b="$m2" -v c="$c" '
        $1 == f && $2 == a { x[$3] = $c } $1 == f && $2 == b { y[$3] = $c }
        END { for (k in x) if (k in y && y[k] > 0) print x[k] / y[k] }' "$RESULTS")
    [ -n "$r" ] && printf '%.3f' "$(bench_median $r)" || printf 'n/a'
}

echo
echo "== medians over $ROUNDS rounds (per-run TSV in $RESULTS: flows mode round pps sys agent total path sender)"
printf '%-7s %-8s %10s %12s %14s %14s %13s\n' flows mode "rx pps" "sys ns/pkt" "agent ns/pkt" "total ns/pkt" "path ns/pkt"
for flows in $FLOWS; do
    for mode in $MODES; do
        printf '%-7s %-8s %10.0f %12.1f %14.1f %14.1f %13.1f\n' "$flows" "$mode" \
            "$(bench_median $(col "$flows" "$mode" 4))" "$(bench_median $(col "$flows" "$mode" 5))" \
            "$(bench_median $(col "$flows" "$mode" 6))" "$(bench_median $(col "$flows" "$mode" 7))" \
            "$(bench_median $(col "$flows" "$mode" 8))"
    done
done
if has_mode flowctl; then
    echo
    echo "== ratios (per round, median)   targets: pps flowctl/none >= 0.90, pps flowctl/bare >= 0.95, cpu (total) flowctl/bare <= 1.10"
    printf '%-10s %7s %10s %10s %12s %12s\n' "" flows "flowctl/" "flowctl/" "bare/none" "cpu(total)"
    printf '%-10s %7s %10s %10s %12s %12s\n' "" "" none bare "" "flowctl/bare"
    for flows in $FLOWS; do
        printf '%-10s %7s %10s %10s %12s %12s\n' "rx pps" "$flows" "$(ratio "$flows" flowctl none 4)" \
            "$(ratio "$flows" flowctl bare 4)" "$(ratio "$flows" bare none 4)" "$(ratio "$flows" flowctl bare 7)"
        # Packets per CPU-second of the packet path: the rate each mode would
        # reach with a core of its own (1 / path ns/pkt), less moved by other load.
        printf '%-10s %7s %10s %10s %12s %12s\n' "pps/path" "$flows" "$(ratio "$flows" none flowctl 8)" \
            "$(ratio "$flows" bare flowctl 8)" "$(ratio "$flows" none bare 8)" "$(ratio "$flows" flowctl bare 8)"
    done
    echo "(pps/path rows: the pps ratios computed as packets per CPU-second of sender + ksoftirqd + agent;"
    echo " their last column is path CPU flowctl/bare. On a busy machine they are less noisy than rx pps.)"
fi
if has_mode bare60 && has_mode bare; then
    echo
    echo "== the key's width (per round, median): bare60 hashes bare's 5-tuple padded to flowctl's 60 bytes"
    printf '%-10s %7s %10s %10s\n' "" flows "bare60/" "flowctl/"
    printf '%-10s %7s %10s %10s\n' "" "" bare bare60
    for flows in $FLOWS; do
        printf '%-10s %7s %10s %10s\n' "rx pps" "$flows" "$(ratio "$flows" bare60 bare 4)" "$(ratio "$flows" flowctl bare60 4)"
        printf '%-10s %7s %10s %10s\n' "pps/path" "$flows" "$(ratio "$flows" bare bare60 8)" "$(ratio "$flows" bare60 flowctl 8)"
    done
fi

echo
echo "== program cost per packet, no traffic (BPF_PROG_TEST_RUN, $SIZE-byte UDP, 1 flow, median of 5 x 1M runs)"
PROG_COST_ARGS=()
[ "$SAMPLE" -gt 1 ] && PROG_COST_ARGS+=(--sample-interval "$SAMPLE" --sample-mode "$SAMPLE_MODE")
[ -n "$BASELINE_OBJECT" ] && PROG_COST_ARGS+=(--baseline-object "$BASELINE_OBJECT")
"$bench" prog-cost --size "$SIZE" "${PROG_COST_ARGS[@]}" | tr -d '{}"' | tr ',' '\n' | sed 's/:/ /' | sort | awk '{ printf "  %-22s %s\n", $1, $2 }'

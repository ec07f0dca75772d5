#!/usr/bin/env bash
# Encoder throughput (IPFIX, NetFlow v9): runs the criterion bench of the agent's encode path
# (crates/flowctl-agent/benches/encoder.rs) and prints records/s per core for
# each case and its ratio to the 1,000,000 records/s target.
#
#   misc/bench/encoder.sh [CRITERION ARGS...]    e.g. misc/bench/encoder.sh udp1472
#
# The bench runs on one thread, so its records/s are per core. Timings vary
# with the load of the machine: the figure is criterion's estimate with its
# 95% confidence bounds.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d "${HOME:-/root}/.cargo/bin" ] && PATH="${HOME:-/root}/.cargo/bin:$PATH"

TARGET=1000000
log=$(mktemp)
trap 'rm -f "$log"' EXIT

cargo bench -p flowctl-agent --bench encoder -- "$@" 2>&1 | tee "$log"

echo
awk -v target="$TARGET" '
    function per_sec(v, unit) {
        if (unit ~ /^Gelem/) return v * 1e9
        if (unit ~ /^Melem/) return v * 1e6
        if (unit ~ /^Kelem/) return v * 1e3
        return v
    }
    /^encoder\// { name = $1 }
    # Only the estimate: the "change:" section also has thrpt lines, in %.
    /thrpt:/ && $3 ~ /elem\/s$/ {
        gsub(/[][]/, "")
        lo = per_sec($2, $3); mid = per_sec($4, $5); hi = per_sec($6, $7)
        rows[++n] = sprintf("%-24s %14.0f %14.0f %14.0f %8.2fx", name, mid, lo, hi, mid / target)
        if (min == "" || mid < min) min = mid
    }
    END {
        if (n == 0) { print "misc/bench/encoder.sh: no throughput in the bench output" > "/dev/stderr"; exit 1 }
        printf "%-24s %14s %14s %14s %9s\n", "case (records/s per core)", "estimate", "low", "high", "÷ target"
        for (i = 1; i <= n; i++) print rows[i]
        printf "slowest case: %.0f records/s per core, %.2f times the %d records/s target: %s\n",
            min, min / target, target, (min >= target ? "met" : "NOT met")
    }
' "$log"

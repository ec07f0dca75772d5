#!/usr/bin/env bash
# Kernel memory per flow of the flow cache, old layout against new, for 2, 8
# and 32 possible CPUs (run as root; needs misc/guest/setup.sh).
#
# The per-CPU cost can only show with many CPUs, so each CPU count is a boot
# of the Debian 12 Linux 6.1 kernel guest (misc/guest/run.sh --cpus N: its
# possible CPUs follow N). Inside, for FLOWS entries (default 1,000,000),
# bpftool creates the maps of each layout exactly as the datapath declares
# them, and the script prints, per flow:
#   memlock   what the kernel reports for the maps (bpftool map show); on
#             6.1 an estimate from key, value and entry counts
#   used      what the maps really took: the growth of vmalloc'd memory
#             (VmallocUsed: hash elements and buckets, arrays), per-CPU
#             allocations (Percpu: per-CPU values) and unreclaimable slab
#             (SUnreclaim) in /proc/meminfo, allocator overhead included
# Old layout (flowctl up to layout 2): one per-CPU hash, 60-byte keys and
# 40-byte values per possible CPU. New layout (4): a hash of 60-byte keys to
# 4-byte slot indexes, an array of 120-byte slots, the ring of free slots
# (4 bytes a position, a power of two of them), its positions, a per-CPU
# spare slot and the CPUs' front caches (16,384 8-byte entries for each of
# the first 512 possible CPUs, whatever the number of flows).
#
# A 32-CPU guest takes about two minutes to boot under software emulation;
# the whole run about five. Figures are printed, never asserted.
#
# Environment: FLOWS (default 1000000), CPUS (default "2 8 32").
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${1:-}" = --in-guest ]; then
    flows=$2
    dir=/sys/fs/bpf/memory-bench
    used_kb() { awk '/^(VmallocUsed|Percpu|SUnreclaim):/ { s += $2 } END { print s }' /proc/meminfo; }
    memlock() { bpftool map show pinned "$1" | sed -n 's/.*memlock \([0-9]*\)B.*/\1/p'; }
    # Creates the maps given as "name type key value entries flags" lines;
    # prints memlock and used bytes.
    measure() {
        rm -rf "$dir" && mkdir -p "$dir"
        local before after total=0 name type key value entries flags
        before=$(used_kb)
        while read -r name type key value entries flags; do
            bpftool map create "$dir/$name" type "$type" key "$key" value "$value" entries "$entries" \
                name "$name" flags "$flags"
            total=$((total + $(memlock "$dir/$name")))
        done
        after=$(used_kb)
        echo "$total $(((after - before) * 1024))"
        rm -rf "$dir"
        # Maps are freed in the background: wait until the memory is back,
        # so that the next measurement does not see it go.
        local last=-1 now i
        for i in $(seq 100); do
            now=$(used_kb)
            [ $((now - last)) -lt 1024 ] && [ $((last - now)) -lt 1024 ] && break
            last=$now
            sleep 0.2
        done
    }
    # Possible CPUs ("0-31", or a list such as "0-3,8-11"), as the kernel counts them.
    possible=$(awk -F, '{ for (i = 1; i <= NF; i++) { n = split($i, r, "-"); c += n == 2 ? r[2] - r[1] + 1 : 1 } } END { print c }' \
        /sys/devices/system/cpu/possible)
    front_cpus=$((possible < 512 ? possible : 512))
    pow2=1
    while [ "$pow2" -lt "$flows" ]; do pow2=$((pow2 * 2)); done
    old=$(measure <<<"flows percpu_hash 60 40 $flows 0")
    new=$(measure <<MAPS
flows hash 60 4 $flows 0
slots array 4 120 $flows 1024
ring array 4 8 $((pow2 / 2)) 1024
ringctl array 4 24 1 1024
spare percpu_array 4 8 1 0
front array 4 8 $((front_cpus * 16384)) 0
MAPS
)
    cpus=$(cat /sys/devices/system/cpu/possible)
    awk -v f="$flows" -v c="$cpus" -v o="$old" -v n="$new" 'BEGIN {
        split(o, a, " "); split(n, b, " ")
        printf "RESULT possible CPUs %s: old %.0f B/flow (memlock %.0f), new %.0f B/flow (memlock %.0f)\n", c, a[2] / f, a[1] / f, b[2] / f, b[1] / f
    }'
    exit 0
fi

FLOWS=${FLOWS:-1000000}
CPUS=${CPUS:-"2 8 32"}
[ "$(id -u)" = 0 ] || { echo "memory.sh: run as root" >&2; exit 1; }
echo "== kernel memory per flow of a $FLOWS-flow cache (Debian 12's Linux 6.1 guest, per CPU count)"
for n in $CPUS; do
    # Memory for the old layout at 32 CPUs: about 1.4 GB.
    bash misc/guest/run.sh --cpus "$n" --memory 6G --timeout 900 -- \
        bash misc/bench/memory.sh --in-guest "$FLOWS" | grep '^RESULT' | sed 's/^RESULT /  /'
done

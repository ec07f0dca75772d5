#!/usr/bin/env bash
# The layering the architecture promises (docs/architecture.md): the flow
# model, aging and IPFIX encoding depend on neither aya nor the datapath
# crate (so they build and test without clang, the eBPF object or root).
# Checked on cargo's own dependency graph, normal and build edges.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for crate in flowctl-model flowctl-aging flowctl-ipfix; do
    bad=$(cargo tree --locked --offline -p "$crate" -e normal,build --prefix none \
        | grep -E '^(aya|aya-obj|flowctl-datapath) ' | sort -u || true)
    if [ -n "$bad" ]; then
        echo "misc/check-layers.sh: $crate depends on $(echo "$bad" | tr '\n' ' ')" >&2
        status=1
    fi
done
[ "$status" -eq 0 ] && echo "layers: flowctl-model, flowctl-aging and flowctl-ipfix depend on neither aya nor flowctl-datapath"
exit "$status"

#!/usr/bin/env bash
# Runs every flowctl test: formatting, lints, unit tests and the root-only
# end-to-end tests with real eBPF in network namespaces the tests create.
# Installs missing build and test dependencies first. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
# rustup's cargo may not be on PATH in a bare root shell or CI.
[ -d "${HOME:-/root}/.cargo/bin" ] && PATH="${HOME:-/root}/.cargo/bin:$PATH"

if [ "$(id -u)" -ne 0 ]; then
    echo "misc/test.sh: run as root (the tests load eBPF and create network namespaces)" >&2
    exit 1
fi
bash misc/deps.sh tshark nfdump

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked 2>&1 | tee /tmp/flowctl-test.log
# One summary line over every test binary.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, i }' /tmp/flowctl-test.log

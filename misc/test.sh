#!/usr/bin/env bash
# Runs every flowctl test. Run as root; installs missing build and test
# dependencies first.
#
#  1. formatting and lints (cargo fmt --check, clippy -D warnings);
#  2. the layering check (misc/check-layers.sh);
#  3. `cargo test --workspace` as an unprivileged user (misc/test-unprivileged.sh):
#     every test that needs no privilege, and the model, aging and IPFIX
#     crates also with clang out of reach; root-only tests say they are
#     ignored and why;
#  4. the root-only tests (#[ignore = "needs root: ..."]), as root: real
#     eBPF in network namespaces the tests create, real collectors;
#  5. the datapath and agent end-to-end tests again inside Debian 12's own
#     Linux 6.1 (no tcx, tunnel modules present), booted in a qemu guest over
#     this machine's root filesystem (misc/guest/);
#  6. the Debian package (misc/package.sh: a release build, cargo-deb) and
#     the installed-package test (misc/package-test.sh: lintian, a fresh
#     Debian 12 root, apt-get install, the service booted in systemd-nspawn).
#
# Everything builds into /var/tmp/flowctl-unprivileged/target, which the
# unprivileged user and root share (the package's release build too).
set -euo pipefail
cd "$(dirname "$0")/.."
# rustup's cargo may not be on PATH in a bare root shell or CI.
[ -d "${HOME:-/root}/.cargo/bin" ] && PATH="${HOME:-/root}/.cargo/bin:$PATH"

if [ "$(id -u)" -ne 0 ]; then
    echo "misc/test.sh: run as root (the tests load eBPF and create network namespaces)" >&2
    exit 1
fi
bash misc/deps.sh tshark nfdump openssl
export CARGO_TARGET_DIR=/var/tmp/flowctl-unprivileged/target

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
bash misc/check-layers.sh
bash misc/test-unprivileged.sh /tmp/flowctl-test-unprivileged.log
echo "as root: the root-only tests"
cargo test --workspace --locked -- --ignored 2>&1 | tee /tmp/flowctl-test-root.log
echo "kernel guest: Debian 12's Linux 6.1 (misc/guest/)"
bash misc/guest/setup.sh
# The binaries whose tests depend on the kernel: the verifier, map
# operations, slots reused and handed over between CPUs, the slot each CPU
# remembers, both hooks, bare-IP and tunnel interfaces, the agent's export,
# the capability sets, packet sampling. (faults, metrics, fuzz_parser and
# cli_args repeat on 6.1 what the host run checks; under software emulation
# they would take another ten minutes.)
FLOWCTL_GUEST=1 bash misc/guest/test.sh parser flow_table pins scanner flowctl_datapath-lib \
    recycling owner_handover recent_slot tunnels datapath_e2e attach_modes bare_ip agent_export lossless security sampling sampling_export 2>&1 | tee /tmp/flowctl-test-guest.log
echo "the Debian package: misc/package.sh, then misc/package-test.sh"
package_start=$SECONDS
deb="$(bash misc/package.sh | tail -n 1)"
# The documented `cargo install --locked --path crates/flowctl` (the same
# release build: only linked again), into a throw-away root.
install_root="$(mktemp -d /tmp/flowctl-cargo-install.XXXXXX)"
cargo install --quiet --locked --offline --path crates/flowctl --root "$install_root"
"$install_root/bin/flowctl" --version
rm -rf "$install_root"
bash misc/package-test.sh "$deb" 2>&1 | tee /tmp/flowctl-test-package.log
echo "the package step took $((SECONDS - package_start)) s"
# One summary line over both host runs: a test the unprivileged run reports
# as ignored (root-only) counts once, when root runs it; "skipped" are tests
# that ran in neither. Then the guest's own line.
awk -v root=/tmp/flowctl-test-root.log '
    /^test result:/ {
        p += $4; f += $6
        if (FILENAME == root) { ran_as_root += $4 + $6; skipped += $8 } else { root_only += $8 }
    }
    END {
        skipped += root_only - ran_as_root
        printf "%d passed, %d failed, %d skipped (%d root-only tests ran as root)", p, f, skipped, ran_as_root
    }' /tmp/flowctl-test-unprivileged.log /tmp/flowctl-test-root.log
printf "; on Linux 6.1: %s; %s\n" "$(tail -n 1 /tmp/flowctl-test-guest.log)" \
    "$(grep '^package test:' /tmp/flowctl-test-package.log | tail -n 1)"

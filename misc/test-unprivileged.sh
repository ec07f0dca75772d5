#!/usr/bin/env bash
# Runs `cargo test --workspace` as an unprivileged user (nobody), the way a
# developer without root runs it: every test that needs no privilege runs,
# and the root-only ones report themselves ignored with the reason. First,
# the flow model, aging and IPFIX are built and tested with clang out of
# reach (CLANG points nowhere), as on a machine without it.
#
# Run as root by misc/test.sh after the crates are fetched (the user builds
# offline). The toolchain under /root is shown to the user through bind
# mounts in a private mount namespace; nothing outside it changes. Output:
# cargo's, then the log at $1 (default /tmp/flowctl-test-unprivileged.log).
set -euo pipefail
cd "$(dirname "$0")/.."
log=${1:-/tmp/flowctl-test-unprivileged.log}
user_id=65534 # nobody
work=/var/tmp/flowctl-unprivileged
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}

if [ "$(id -u)" -ne 0 ]; then
    echo "misc/test-unprivileged.sh: run as root (it switches to uid $user_id itself)" >&2
    exit 1
fi
mkdir -p "$work/target"
# Root builds here too (misc/test.sh): hand everything back to the user.
chown -R "$user_id:$user_id" "$work"

# The user must read the sources: use this tree if it can, else a copy.
src=$PWD
if ! setpriv --reuid=$user_id --regid=$user_id --clear-groups test -r "$src/Cargo.toml"; then
    src=$work/src
    rm -rf "$src"
    mkdir -p "$src"
    git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$src"
    chown -R "$user_id:$user_id" "$src"
fi

# Inside a private mount namespace: /root becomes a readable tmpfs holding
# bind mounts of the cargo and rustup homes, so the user can run them.
unshare --mount --propagation private bash -euo pipefail -s -- "$src" "$log" <<SCRIPT
src=\$1 log=\$2
mkdir -p /run/flowctl-unprivileged/cargo /run/flowctl-unprivileged/rustup
mount --bind "$cargo_home" /run/flowctl-unprivileged/cargo
mount --bind "$rustup_home" /run/flowctl-unprivileged/rustup
mount -t tmpfs -o mode=755 tmpfs /root
mkdir /root/.cargo /root/.rustup
mount --bind /run/flowctl-unprivileged/cargo /root/.cargo
mount --bind /run/flowctl-unprivileged/rustup /root/.rustup
cd "\$src"
as_user() {
    setpriv --reuid=$user_id --regid=$user_id --clear-groups --inh-caps=-all --bounding-set=-all \
        env -i HOME=$work PATH=/root/.cargo/bin:/usr/local/bin:/usr/bin:/bin \
        CARGO_HOME=/root/.cargo RUSTUP_HOME=/root/.rustup CARGO_TARGET_DIR=$work/target "\$@"
}
echo "as uid $user_id: the flow model, aging and IPFIX without clang"
as_user env CLANG=/nonexistent/clang cargo test --locked --offline -q \
    -p flowctl-model -p flowctl-aging -p flowctl-ipfix 2>&1 | awk '/^test result:|FAILED|panicked|^error/'
echo "as uid $user_id: cargo test --workspace"
as_user cargo test --workspace --locked --offline 2>&1 | tee "\$log"
SCRIPT

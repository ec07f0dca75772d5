#!/usr/bin/env bash
# Installs what flowctl's build, tests and demo need, if it is missing.
# Debian/Ubuntu with apt-get; needs root. Rust (cargo) must already be there.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have clang || need+=(clang)
have llvm-strip || need+=(llvm)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
[ -e "/usr/include/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/asm/types.h" ] || need+=(linux-libc-dev)
have cc || need+=(gcc)
have ip || need+=(iproute2)
have nsenter || need+=(util-linux)
have ping || need+=(iputils-ping)
have iperf3 || need+=(iperf3)
for extra in "$@"; do
    case "$extra" in
        tshark) have tshark || need+=(tshark) ;;
        nfdump) have nfdump || need+=(nfdump) ;;
        openssl) have openssl || need+=(openssl) ;;
    esac
done

if [ "${#need[@]}" -gt 0 ]; then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! have cargo; then
    echo "cargo not found: install Rust (rustup) first" >&2
    exit 1
fi

#!/usr/bin/env bash
# flowctl end-to-end demo on a fresh machine (run as root):
# builds flowctl, creates two network namespaces joined by a veth pair,
# attaches the datapath, sends TCP, UDP, ICMP and ICMPv6 traffic, shows the
# flow cache, and removes everything it created, even on failure.
# Traffic stays inside the namespaces (no default route).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "misc/demo.sh: run as root (it loads eBPF and creates network namespaces)" >&2
    exit 1
fi
bash misc/deps.sh
cargo build --release --locked -q
flowctl=$PWD/target/release/flowctl

A=flowctl-demo-a B=flowctl-demo-b
export FLOWCTL_PIN_DIR=/sys/fs/bpf/flowctl-demo
cleanup() {
    "$flowctl" detach --all --purge >/dev/null 2>&1 || true
    ip netns pids "$B" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_a() { nsenter --net="/var/run/netns/$A" "$@"; }
in_b() { nsenter --net="/var/run/netns/$B" "$@"; }

step "topology: $A (veth0 10.77.0.1, fd77::1) <-> $B (veth0 10.77.0.2, fd77::2)"
ip netns add "$A"
ip netns add "$B"
ip link add veth0 netns "$A" type veth peer name veth0 netns "$B"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" addr add 10.77.0.1/24 dev veth0
ip -n "$A" addr add fd77::1/64 dev veth0 nodad
ip -n "$B" addr add 10.77.0.2/24 dev veth0
ip -n "$B" addr add fd77::2/64 dev veth0 nodad
ip -n "$A" link set veth0 up
ip -n "$B" link set veth0 up
sleep 1

step "flowctl attach --netns $A --interface veth0 --direction both"
"$flowctl" attach --netns "$A" --interface veth0 --direction both

step "traffic: ping, ping -6, iperf3 TCP (1 s) and UDP (1 s)"
in_a ping -c 3 -i 0.2 -q 10.77.0.2 | tail -1
in_a ping -6 -c 3 -i 0.2 -q fd77::2 | tail -1
in_b iperf3 -s -D -1 -p 5201 >/dev/null && sleep 0.5
in_a iperf3 -c 10.77.0.2 -p 5201 -t 1 | grep -E 'sender|receiver' || true
in_b iperf3 -s -D -1 -p 5202 >/dev/null && sleep 0.5
in_a iperf3 -c fd77::2 -p 5202 -u -b 10M -l 1200 -t 1 | grep -E 'sender|receiver' || true

step "flowctl status"
"$flowctl" status

step "flowctl dump --sort bytes"
"$flowctl" dump --sort bytes

step "flowctl dump -o json -p icmp"
"$flowctl" dump -o json -p icmp

step "flowctl flush --all, then detach and clean up"
"$flowctl" flush --all

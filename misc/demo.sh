#!/usr/bin/env bash
# flowctl end-to-end demo on a fresh machine (run as root):
# builds flowctl, creates two network namespaces joined by a veth pair, runs
# the agent (which attaches the datapath) exporting IPFIX to flowctl's
# embedded collector on 127.0.0.1, sends TCP, UDP, ICMP and ICMPv6 traffic,
# shows the flow cache and the flow records the collector decoded, and
# removes everything it created, even on failure. Traffic stays inside the
# namespaces (no default route) and on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
# rustup's cargo may not be on PATH in a bare root shell or CI.
[ -d "${HOME:-/root}/.cargo/bin" ] && PATH="${HOME:-/root}/.cargo/bin:$PATH"

if [ "$(id -u)" -ne 0 ]; then
    echo "misc/demo.sh: run as root (it loads eBPF and creates network namespaces)" >&2
    exit 1
fi
bash misc/deps.sh
cargo build --release --locked -q
flowctl=$PWD/target/release/flowctl

A=flowctl-demo-a B=flowctl-demo-b
export FLOWCTL_PIN_DIR=/sys/fs/bpf/flowctl-demo
PORT=47390
cleanup() {
    [ -n "${AGENT:-}" ] && kill "$AGENT" 2>/dev/null || true
    [ -n "${COLLECTOR:-}" ] && kill "$COLLECTOR" 2>/dev/null || true
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

step "flowctl collect --listen 127.0.0.1:$PORT   (records are printed as they arrive)"
"$flowctl" collect --listen "127.0.0.1:$PORT" &
COLLECTOR=$!
sleep 0.5

step "flowctl agent --netns $A --interface veth0 --direction both --collector udp://127.0.0.1:$PORT"
RUST_LOG=info "$flowctl" agent --netns "$A" --interface veth0 --direction both \
    --collector "udp://127.0.0.1:$PORT" --idle-timeout 2s --active-timeout 10s \
    --metrics-address 127.0.0.1:0 2>/tmp/flowctl-demo-agent.log &
AGENT=$!
for _ in $(seq 50); do grep -q "agent running" /tmp/flowctl-demo-agent.log 2>/dev/null && break; sleep 0.2; done
grep -q "agent running" /tmp/flowctl-demo-agent.log || { cat /tmp/flowctl-demo-agent.log; exit 1; }

step "traffic: ping, ping -6, iperf3 TCP (1 s) and UDP (1 s)"
in_a ping -c 3 -i 0.2 -q 10.77.0.2 | tail -1
in_a ping -6 -c 3 -i 0.2 -q fd77::2 | tail -1
in_b iperf3 -s -D -1 -p 5201 >/dev/null && sleep 0.5
in_a iperf3 -c 10.77.0.2 -p 5201 -t 1 | grep -E 'sender|receiver' || true
in_b iperf3 -s -D -1 -p 5202 >/dev/null && sleep 0.5
in_a iperf3 -c fd77::2 -p 5202 -u -b 10M -l 1200 -t 1 | grep -E 'sender|receiver' || true

step "flowctl status"
"$flowctl" status

step "flowctl dump --sort bytes   (the live cache; the agent empties it as flows end)"
"$flowctl" dump --sort bytes

step "waiting for the idle timeout, then a few Prometheus metrics from the agent"
sleep 3
METRICS=$(sed -n 's|.*metrics on http://\([0-9.]*:[0-9]*\)/metrics.*|\1|p' /tmp/flowctl-demo-agent.log | head -1)
if [ -n "$METRICS" ]; then
    exec 3<>"/dev/tcp/${METRICS%:*}/${METRICS#*:}"
    printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$METRICS" >&3
    grep -E '^flowctl_(cache_flows|flows_ended_total|export_records_total|datapath_not_recorded_packets_total)' <&3 || true
    exec 3<&-
fi

step "SIGTERM: the agent exports every remaining flow"
kill -TERM "$AGENT"
wait "$AGENT"
AGENT=
sleep 1
kill "$COLLECTOR" 2>/dev/null || true
wait "$COLLECTOR" 2>/dev/null || true
COLLECTOR=
grep -E "records in" /tmp/flowctl-demo-agent.log || true

step "clean up: detach, remove pins and namespaces"

#!/usr/bin/env bash
# Builds flowctl's test binaries on the host and runs the root-only ones (real eBPF, network namespaces)
# inside Debian 12's Linux 6.1 kernel, all in one guest boot (misc/guest/run.sh).
#
#   misc/guest/test.sh [--cpus N] [--memory M] [--timeout SECS] [TEST...]
#     TEST      test binaries to run, by target name (parser, datapath_e2e, ...; a crate's unit tests are
#               <crate>-lib or <crate>-bin); default: every test binary of the workspace
#
# Each binary runs with `--ignored --test-threads=1`, i.e. the root-only tests (#[ignore = "needs root: ..."]);
# FLOWCTL_GUEST_TEST_ARGS replaces those arguments (e.g. "--include-ignored --test-threads=1", or
# "--test-threads=1" for trees from before the split). Each binary gets a 20-minute limit, and its crate's
# directory as working directory and CARGO_MANIFEST_DIR, like cargo test. Logs: <target>/guest-tests/.
# Ends with one "N passed, N failed, N skipped" line; exits 1 if a test failed, 125 if the guest could not run.
# Run misc/guest/setup.sh once first.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# ---------------------------------------------------------------------------------------------------------
# Inside the guest: run the listed binaries.
if [ "${1:-}" = --in-guest ]; then
    list="$2"
    logs="$3"
    read -r -a args <<<"${FLOWCTL_GUEST_TEST_ARGS:---ignored --test-threads=1}"
    mkdir -p "$logs"
    echo "guest: $(uname -r), $(nproc) CPUs, booted in $(cut -d' ' -f1 /proc/uptime) s"
    # The first tshark start in a fresh guest takes ~25 s under TCG (cold translation cache), later ones ~8 s;
    # the tests wait 20 s for it. One throw-away capture first.
    if grep -qE '^(agent_export|sampling_export) ' "$list" && command -v tshark >/dev/null; then
        s=$SECONDS
        timeout 120 tshark -i lo -a duration:1 -w /dev/null >/dev/null 2>&1 || true
        echo "guest: tshark warmed up in $((SECONDS - s)) s"
    fi
    passed=0 failed=0 ignored=0 bad=()
    while read -r name dir exe; do
        s=$SECONDS
        echo "=== $name"
        set +e
        (cd "$dir" && CARGO_MANIFEST_DIR="$dir" timeout -k 10 1200 "$exe" "${args[@]}") 2>&1 | tee "$logs/$name.log"
        rc=${PIPESTATUS[0]}
        set -e
        result="$(grep -E '^test result:' "$logs/$name.log" | tail -n1 || true)"
        p=0 f=0 i=0
        read -r p f i < <(sed -nE 's/.* ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored.*/\1 \2 \3/p' <<<"$result") || true
        passed=$((passed + ${p:-0})) failed=$((failed + ${f:-0})) ignored=$((ignored + ${i:-0}))
        if [ "$rc" -ne 0 ]; then
            bad+=("$name")
            [ -n "$result" ] || failed=$((failed + 1))   # crashed or timed out before its summary
        fi
        echo "=== $name: exit $rc in $((SECONDS - s)) s: ${result:-no summary (crash or timeout)}"
    done <"$list"
    left_pins="$(find /sys/fs/bpf -mindepth 1 -maxdepth 1 -printf '%f ')"
    left_netns="$(ip netns list | cut -d' ' -f1 | tr '\n' ' ')"
    [ -z "$left_pins" ] || echo "guest: left in /sys/fs/bpf: $left_pins"
    [ -z "$left_netns" ] || echo "guest: network namespaces left: $left_netns"
    [ "${#bad[@]}" -eq 0 ] || echo "guest: failing binaries: ${bad[*]} (logs in $logs)"
    echo "$passed passed, $failed failed, $ignored skipped"
    [ "${#bad[@]}" -eq 0 ]
    exit
fi

# ---------------------------------------------------------------------------------------------------------
# On the host.
repo="$(cd "$here/../.." && pwd)"
run_args=() tests=()
while [ $# -gt 0 ]; do
    case "$1" in
        --cpus|--memory|--timeout) run_args+=("$1" "${2:?}"); shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2; exit 0 ;;
        -*) echo "test.sh: unknown option $1" >&2; exit 125 ;;
        *) tests+=("$1"); shift ;;
    esac
done
[ -d "${HOME:-/root}/.cargo/bin" ] && PATH="${HOME:-/root}/.cargo/bin:$PATH"
command -v cargo >/dev/null || { echo "test.sh: cargo not found" >&2; exit 125; }

cd "$repo"
target="${CARGO_TARGET_DIR:-$repo/target}"
mkdir -p "$target"
msgs="$(mktemp /tmp/flowctl-guest-build.XXXXXX)"
trap 'rm -f "$msgs"' EXIT
if ! cargo test --workspace --no-run --locked --message-format=json-render-diagnostics >"$msgs"; then
    echo "test.sh: cargo test --no-run failed" >&2
    exit 125
fi

# name, crate directory and executable of each test binary, as cargo reported them.
list="$target/guest-tests.list"
/usr/bin/python3 - "$msgs" "${tests[@]}" >"$list" <<'EOF'
import json, os, sys
msgs, wanted = sys.argv[1], sys.argv[2:]
found = {}
for line in open(msgs):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable") or not m["profile"]["test"]:
        continue
    t = m["target"]
    name = t["name"] if t["kind"] == ["test"] else f'{t["name"]}-{"+".join(t["kind"])}'
    found[name] = (os.path.dirname(m["manifest_path"]), m["executable"])
names = wanted or sorted(found)
missing = [n for n in names if n not in found]
if missing:
    sys.exit(f"test.sh: no test binary named {' '.join(missing)} (have: {' '.join(sorted(found))})")
for n in names:
    print(n, *found[n])
EOF

rm -f "$msgs"
logs="$target/guest-tests"
rm -rf "$logs"
export CARGO_TARGET_DIR="$target"
exec "$here/run.sh" --cwd "$repo" --timeout 5400 "${run_args[@]}" -- bash "$here/test.sh" --in-guest "$list" "$logs"

#!/usr/bin/env bash
# Builds flowctl's Debian package with cargo-deb:
#
#   bash misc/package.sh        # as root on Debian 12; prints the .deb's path last
#
# -> ${CARGO_TARGET_DIR:-target}/debian/flowctl_<version>-1_amd64.deb, holding
#    /usr/bin/flowctl (stripped), /usr/lib/systemd/system/flowctl.service
#    (misc/flowctl.service: installed, neither enabled nor started),
#    /etc/flowctl/agent.yaml (conffile: misc/deb/agent.yaml, refuses to start
#    until a collector is set), man pages for flowctl and every subcommand
#    (`flowctl man`, from the CLI definition), bash, zsh and fish completions
#    (`flowctl completions`), and README, docs/ and configs/ under
#    /usr/share/doc/flowctl. The package metadata is [package.metadata.deb]
#    in crates/flowctl/Cargo.toml.
#
# Installs what it needs if missing: the build dependencies (misc/deps.sh:
# clang, libbpf-dev, ...), dpkg-dev (dpkg-shlibdeps computes the libc
# dependency) and cargo-deb from crates.io (pinned below). Nothing of it is
# needed where the package is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d "${HOME:-/root}/.cargo/bin" ] && PATH="${HOME:-/root}/.cargo/bin:$PATH"
CARGO_DEB_VERSION=3.8.0

die() { echo "package.sh: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# --- what the build needs ----------------------------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
    bash misc/deps.sh
    if ! have dpkg-shlibdeps; then
        echo "package.sh: installing dpkg-dev"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null; }
    fi
fi
have cargo || die "cargo not found: install Rust (rustup) first"
have dpkg-shlibdeps || die "dpkg-shlibdeps not found: apt-get install dpkg-dev (or run as root)"
if [ "$(cargo deb --version 2>/dev/null || true)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
    echo "package.sh: installing cargo-deb $CARGO_DEB_VERSION from crates.io (a few minutes, once)"
    cargo install --quiet --locked --force cargo-deb --version "$CARGO_DEB_VERSION" ||
        die "cargo install cargo-deb $CARGO_DEB_VERSION failed"
fi

# --- the binary --------------------------------------------------------------------------------------------
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
[ -n "$version" ] || die "no version in Cargo.toml's [workspace.package]"
changelog_version="$(sed -n '1s/^flowctl (\([^)]*\)).*/\1/p' misc/deb/changelog)"
[ "$changelog_version" = "$version-1" ] ||
    die "misc/deb/changelog starts with $changelog_version, the package is $version-1: add a changelog entry"
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked -p flowctl
bin="$target/release/flowctl"

# --- generated files: target/release/package/ (cargo-deb maps target/release/ to $target/release/) ----------
out="$target/release/package"
rm -rf "$out"
mkdir -p "$out/man" "$out/completions" "$out/doc"
# The pages carry the last commit's date, so that a rebuild gives the same package.
date="$(git log -1 --format=%cs 2>/dev/null || date -u +%F)"
"$bin" man --dir "$out/man" --date "$date" >/dev/null
gzip -9n "$out"/man/*.1
"$bin" completions bash >"$out/completions/flowctl"
"$bin" completions zsh >"$out/completions/_flowctl"
"$bin" completions fish >"$out/completions/flowctl.fish"
# Documentation, compressed as Debian policy asks (12.3); the examples stay plain.
cp README.md docs/*.md "$out/doc/"
gzip -9n "$out"/doc/*.md
# copyright: misc/deb/copyright.in with the statically linked crates and their licenses.
crates="$(cargo tree --locked --offline -p flowctl -e normal --prefix none -f '{p} {l}' |
    grep -v -e '^flowctl' -e '(proc-macro)' | sed 's/ (\*)$//; s/ v\([0-9]\)/ \1/' | sort -u | sed 's/^/ /')"
[ -n "$crates" ] || die "cargo tree listed no crate"
awk -v crates="$crates" '$0 == "@CRATES@" { print crates; next } { print }' misc/deb/copyright.in >"$out/copyright"

# --- the package -------------------------------------------------------------------------------------------
# (--no-strip: the release profile strips already)
deb="$(cargo deb -p flowctl --no-build --no-strip --quiet)"
[ -f "$deb" ] || die "cargo deb produced no package"
echo "package.sh: $(du -k "$deb" | cut -f1) KiB, $(dpkg-deb -c "$deb" | wc -l) entries"
echo "$deb"

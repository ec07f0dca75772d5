//! Compiles the bare per-CPU-hash tc counter (`bpf/bench/bare_counter.bpf.c`)
//! with clang into an eBPF object that `flowctl-bench bare` embeds.

use std::{env, path::PathBuf, process::Command};

fn main() {
    let src = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../bpf/bench/bare_counter.bpf.c");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bare_counter.bpf.o");
    println!("cargo:rerun-if-changed={}", src.display());
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());

    // linux/types.h pulls in asm/types.h, which Debian keeps under the multiarch dir.
    let multiarch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86_64-linux-gnu",
        Ok("aarch64") => "aarch64-linux-gnu",
        Ok(other) => panic!("unsupported host architecture for the BPF build: {other}"),
        Err(_) => "x86_64-linux-gnu",
    };
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-c"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {clang} to build the bare counter ({e}); install clang and libbpf-dev"));
    assert!(status.success(), "clang failed to compile bpf/bench/bare_counter.bpf.c");
}

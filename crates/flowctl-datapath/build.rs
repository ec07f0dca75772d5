//! Compiles the C datapath (`bpf/flowctl.bpf.c`) with clang into an eBPF
//! object that `flowctl-datapath` embeds.

use std::{env, path::PathBuf, process::Command};

fn main() {
    let bpf_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../bpf");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("flowctl.bpf.o");
    for f in ["flowctl.bpf.c", "flowctl.h"] {
        println!("cargo:rerun-if-changed={}", bpf_dir.join(f).display());
    }
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
        .arg("-I")
        .arg(&bpf_dir)
        .arg(bpf_dir.join("flowctl.bpf.c"))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {clang} to build the eBPF datapath ({e}); install clang and libbpf-dev")
        });
    assert!(status.success(), "clang failed to compile bpf/flowctl.bpf.c");
}

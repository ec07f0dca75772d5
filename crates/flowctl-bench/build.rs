//! Compiles, with clang, the eBPF object `flowctl-bench` embeds: the bare
//! per-CPU-hash tc counter (`bpf/bench/bare_counter.bpf.c`), with the same
//! flags as `flowctl-datapath`'s build of the datapath (which `prog-cost`
//! takes from that crate).

use std::{env, path::Path, path::PathBuf, process::Command};

fn main() {
    let bpf_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../bpf");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let src = bpf_dir.join("bench/bare_counter.bpf.c");
    println!("cargo:rerun-if-changed={}", src.display());
    compile(&bpf_dir, &src, &out_dir.join("bare_counter.bpf.o"));
}

fn compile(include: &Path, src: &Path, out: &Path) {
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
        .arg(include)
        .arg(src)
        .arg("-o")
        .arg(out)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {clang} to build {} ({e}); install clang and libbpf-dev",
                src.display()
            )
        });
    assert!(status.success(), "clang failed to compile {}", src.display());
}

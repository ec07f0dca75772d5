//! Compiles the C datapath (`bpf/flowctl.bpf.c`) with clang into an eBPF
//! object that `flowctl-datapath` embeds.

include!("build_bpf.rs");

fn main() {
    run(|| {
        let bpf_dir = cargo_dir("CARGO_MANIFEST_DIR")?.join("../../bpf");
        for header in ["flowctl.h", "encap.h"] {
            println!("cargo:rerun-if-changed={}", bpf_dir.join(header).display());
        }
        let out = cargo_dir("OUT_DIR")?.join("flowctl.bpf.o");
        compile_bpf(&bpf_dir.join("flowctl.bpf.c"), &bpf_dir, &out)
    });
}

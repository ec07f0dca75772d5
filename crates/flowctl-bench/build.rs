//! Compiles, with clang, the eBPF object `flowctl-bench` embeds: the bare
//! per-CPU-hash tc counter (`bpf/bench/bare_counter.bpf.c`), with the same
//! flags as `flowctl-datapath`'s build of the datapath (which `prog-cost`
//! takes from that crate).

include!("../flowctl-datapath/build_bpf.rs");

fn main() {
    run(|| {
        let bpf_dir = cargo_dir("CARGO_MANIFEST_DIR")?.join("../../bpf");
        let out = cargo_dir("OUT_DIR")?.join("bare_counter.bpf.o");
        compile_bpf(&bpf_dir.join("bench/bare_counter.bpf.c"), &bpf_dir, &out)
    });
}

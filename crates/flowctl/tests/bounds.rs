//! Inputs from outside stay bounded (root needed): a flow cache the memory
//! available cannot hold is refused before the kernel is asked for it.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use support::{
    cgroup::MemoryCgroup,
    flowctl_cli::{control_socket, Flowctl},
    netns::{Topology, A_IF},
};

#[test]
#[ignore = "needs root: creates a memory cgroup, namespaces and eBPF pins (misc/test.sh runs it as root)"]
fn a_cache_larger_than_the_memory_left_is_refused_with_the_figures() {
    let topo = Topology::new("bndmem");
    let fc = Flowctl::new("bndmem");
    let cgroup = MemoryCgroup::new("bndmem", 256 << 20);
    let attach = |max_flows: &str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flowctl"));
        command
            .args(["attach", "--netns", &topo.a, "-i", A_IF, "--max-flows", max_flows])
            .env("FLOWCTL_PIN_DIR", &fc.pin_dir)
            .env("FLOWCTL_CONTROL_SOCKET", control_socket(&fc.pin_dir));
        cgroup.enter(&mut command);
        command.output().unwrap()
    };

    // About 290 MiB with 2 CPUs (more with more): above half of 256 MiB.
    let out = attach("1000000");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let line = stderr.trim();
    assert!(!line.contains('\n'), "{line}");
    assert!(
        line.contains("a flow cache of 1000000 flows takes about")
            && line.contains("MiB available (/sys/fs/cgroup/")
            && line.ends_with("lower maxFlows"),
        "{line}"
    );
    // Nothing was created.
    let dump = fc.run(&["dump"]);
    let stderr = String::from_utf8_lossy(&dump.stderr);
    assert!(!dump.status.success() && stderr.contains("not attached"), "{stderr}");

    // A cache that fits is created in the same cgroup.
    let out = attach("10000");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    fc.ok(&["detach", "--all", "--purge"]);
}

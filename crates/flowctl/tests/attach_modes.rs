//! Attaching on real kernels (root needed): both hooks (tcx and a tc filter
//! under clsact), attachments left stale by a namespace that went away and
//! came back, and flowctl's place in a chain of programs.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use serde_json::Value;
use support::{
    blocker::Blocker,
    flowctl_cli::Flowctl,
    kernel,
    netns::{ip, wait_until_up, Topology, A4, A_IF, B4, B_IF},
    traffic,
};

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// (packets, bytes) of the UDP flow from source port `sport`, if any.
fn udp_flow(dump: &[Value], sport: u64) -> Option<(u64, u64)> {
    dump.iter()
        .find(|f| f["proto"] == 17 && f["sport"] == sport)
        .map(|f| (f["packets"].as_u64().unwrap(), f["bytes"].as_u64().unwrap()))
}

fn status(fc: &Flowctl) -> Value {
    serde_json::from_str(&fc.ok(&["status", "-o", "json"])).unwrap()
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn each_hook_attaches_counts_shows_its_mode_and_detaches() {
    for mode in kernel::attach_modes() {
        let topo = Topology::new(&format!("hook-{mode}"));
        let fc = Flowctl::new("hook");
        let out = fc.ok(&[
            "attach",
            "--netns",
            &topo.a,
            "-i",
            A_IF,
            "--direction",
            "both",
            "--attach-mode",
            mode,
        ]);
        assert_eq!(out.matches(&format!(", {mode})")).count(), 2, "{out}");
        traffic::udp(&topo.a, sa(A4, 43001), &topo.b, sa(B4, 43002), 4, 100);
        assert_eq!(udp_flow(&fc.dump(), 43001), Some((4, 4 * 128)), "{mode}");
        let s = status(&fc);
        let attachments = s["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 2);
        assert!(
            attachments
                .iter()
                .all(|a| a["mode"] == mode && a["state"] == "attached"),
            "{s}"
        );
        // Idempotent, whatever the mode asked for the second time.
        let again = fc.ok(&["attach", "--netns", &topo.a, "-i", A_IF, "--direction", "both"]);
        assert_eq!(again.matches("already attached").count(), 2, "{again}");
        // It outlived the flowctl process that attached it, and goes away on detach.
        let out = fc.ok(&["detach", "--netns", &topo.a, "-i", A_IF]);
        assert_eq!(out.matches("detached:").count(), 2, "{out}");
        traffic::udp(&topo.a, sa(A4, 43003), &topo.b, sa(B4, 43004), 4, 100);
        assert_eq!(
            udp_flow(&fc.dump(), 43003),
            None,
            "{mode}: nothing metered after detach"
        );
        assert!(status(&fc)["attachments"].as_array().unwrap().is_empty());
    }
}

/// Deletes the veth pair and creates it again with the same interface
/// indexes: a new device where the old attachment's pin says the old one was.
fn recreate_veth(topo: &Topology) {
    let (ia, ib) = (Topology::ifindex(&topo.a, A_IF), Topology::ifindex(&topo.b, B_IF));
    ip(&["-n", &topo.a, "link", "del", A_IF]);
    ip(&[
        "link",
        "add",
        A_IF,
        "netns",
        &topo.a,
        "index",
        &ia.to_string(),
        "type",
        "veth",
        "peer",
        "name",
        B_IF,
        "netns",
        &topo.b,
        "index",
        &ib.to_string(),
    ]);
    let ends = [(&topo.a, A_IF, A4), (&topo.b, B_IF, B4)];
    for (ns, dev, v4) in ends {
        ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }
    for (ns, dev, _) in ends {
        wait_until_up(ns, dev);
    }
    assert_eq!(Topology::ifindex(&topo.a, A_IF), ia);
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn a_stale_attachment_is_replaced_when_its_interface_comes_back() {
    for mode in kernel::attach_modes() {
        let tag = format!("stale-{mode}");
        let fc = Flowctl::new(&tag);
        let mut topo = Topology::new(&tag);
        for (round, how) in ["same namespace, same ifindex", "namespace re-created"]
            .iter()
            .enumerate()
        {
            fc.ok(&["attach", "--netns", &topo.a, "-i", A_IF, "--attach-mode", mode]);
            if round == 0 {
                recreate_veth(&topo);
            } else {
                // The namespace and its veth go away and come back under the
                // same names (the same ifindex, sometimes the same inode).
                drop(topo);
                topo = Topology::new(&tag);
            }
            let s = status(&fc);
            assert!(
                s["attachments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|a| a["state"] == "defunct"),
                "{mode}, {how}: {s}"
            );
            let out = fc.ok(&["attach", "--netns", &topo.a, "-i", A_IF, "--attach-mode", mode]);
            assert!(
                out.starts_with("attached:"),
                "{mode}, {how}: the stale attachment is replaced: {out}"
            );
            let sport = 43011 + 2 * round as u16;
            traffic::udp(&topo.a, sa(A4, sport), &topo.b, sa(B4, sport + 1), 3, 50);
            assert_eq!(
                udp_flow(&fc.dump(), u64::from(sport)),
                Some((3, 3 * 78)),
                "{mode}, {how}"
            );
            fc.ok(&["detach", "--all"]);
        }
    }
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn flowctl_goes_first_so_a_program_that_ends_processing_hides_nothing() {
    if !kernel::has_tcx() {
        eprintln!("skipped: tcx chain order needs Linux 6.6");
        return;
    }
    let topo = Topology::new("chain");
    let fc = Flowctl::new("chain");
    // A program that returns TC_ACT_OK for every packet is there first.
    let pin = std::path::PathBuf::from(format!("/sys/fs/bpf/flowctl-test-blocker-{}", std::process::id()));
    let _blocker = Blocker::attach_egress(&topo.a, A_IF, pin);

    fc.ok(&["attach", "--netns", &topo.a, "-i", A_IF]);
    traffic::udp(&topo.a, sa(A4, 43021), &topo.b, sa(B4, 43022), 5, 100);
    assert_eq!(
        udp_flow(&fc.dump(), 43021),
        Some((5, 5 * 128)),
        "first in the chain: every packet"
    );

    // Appended after it, flowctl sees nothing: the order is what made the difference.
    fc.ok(&["detach", "--netns", &topo.a, "-i", A_IF]);
    fc.ok(&["attach", "--netns", &topo.a, "-i", A_IF, "--attach-order", "last"]);
    traffic::udp(&topo.a, sa(A4, 43023), &topo.b, sa(B4, 43024), 5, 100);
    assert_eq!(udp_flow(&fc.dump(), 43023), None, "behind a TC_ACT_OK program");
}

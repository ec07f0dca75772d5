//! Tunnel GSO end to end (root needed): a VXLAN between two namespaces over
//! a veth underlay that the test creates, TSO on, a bulk TCP transfer across
//! the VXLAN, flowctl on the underlay. Each inner wire packet leaves the
//! underlay as exactly one outer packet of inner IP length + 14 (inner
//! Ethernet) + 8 (VXLAN) + 8 (UDP) + 20 (outer IPv4) octets, so an AF_PACKET
//! capture of the VXLAN device (GSO expanded from the vnet header) is the
//! ground truth for the outer UDP flow.
//!
//! Also MPLS: labelled frames sent out of a veth show their top label in
//! `flowctl dump -o json`.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;

use etherparse::PacketBuilder;
use serde_json::{json, Value};

use support::{
    capture::{self, Capture},
    flowctl_cli::Flowctl,
    kernel,
    netns::{ip, sysctl, Topology, A4, A_IF, B4, B_IF},
    traffic,
};

/// Inner addresses of the VXLAN.
const A_INNER: &str = "10.206.0.1";
const B_INNER: &str = "10.206.0.2";
const A_MAC: &str = "02:00:00:20:60:01";
const B_MAC: &str = "02:00:00:20:60:02";
const VXLAN_DEV: &str = "vx0";
const VXLAN_PORT: u64 = 4789;
/// What VXLAN adds to an inner IP packet: inner Ethernet, VXLAN, UDP, outer IPv4.
const VXLAN_OVERHEAD: u64 = 14 + 8 + 8 + 20;

/// A point-to-point VXLAN between a and b over their veth (IPv4 underlay),
/// with static neighbours and no IPv6, so that only the test's traffic
/// crosses it. `false` if this kernel lacks the vxlan module.
fn vxlan(topo: &Topology) -> bool {
    let ends = [
        (&topo.a, A_IF, A4, B4, A_MAC, A_INNER, B_INNER, B_MAC),
        (&topo.b, B_IF, B4, A4, B_MAC, B_INNER, A_INNER, A_MAC),
    ];
    for (ns, underlay, local, remote, mac, ..) in ends {
        let out = std::process::Command::new("ip")
            .args([
                "-n", ns, "link", "add", VXLAN_DEV, "address", mac, "type", "vxlan", "id", "42", "local", local,
                "remote", remote, "dstport", "4789", "dev", underlay,
            ])
            .output()
            .unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!kernel::in_guest(), "vxlan in the kernel guest: {err}");
            eprintln!("skipped: no vxlan: {err}");
            return false;
        }
    }
    for (ns, _, _, _, _, inner, peer, peer_mac) in ends {
        sysctl(ns, &format!("net.ipv6.conf.{VXLAN_DEV}.disable_ipv6"), "1");
        ip(&["-n", ns, "addr", "add", &format!("{inner}/24"), "dev", VXLAN_DEV]);
        ip(&[
            "-n",
            ns,
            "neigh",
            "add",
            peer,
            "lladdr",
            peer_mac,
            "dev",
            VXLAN_DEV,
            "nud",
            "permanent",
        ]);
        ip(&["-n", ns, "link", "set", VXLAN_DEV, "up"]);
    }
    true
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn vxlan_underlay_counts_every_inner_segment_with_its_outer_headers() {
    let topo = Topology::new("vxlan");
    if !vxlan(&topo) {
        return;
    }
    let fc = Flowctl::new("vxlan");
    fc.ok(&["attach", "--netns", &topo.a, "-i", A_IF, "--direction", "egress"]);
    let vx = Topology::ifindex(&topo.a, VXLAN_DEV);
    let cap = Capture::start(&topo.a, vx);
    let sa = |ip: &str, port| SocketAddr::new(ip.parse().unwrap(), port);
    traffic::tcp_session(&topo.a, sa(A_INNER, 40101), &topo.b, sa(B_INNER, 5301), 1 << 20);
    let captured = cap.stop();
    let dump = fc.dump();

    // Ground truth: what a sent into the VXLAN, in inner wire packets.
    let truth = capture::flows(&captured);
    let sent: Vec<_> = truth.iter().filter(|(k, _)| k.direction == "egress").collect();
    assert!(!sent.is_empty(), "nothing captured on {VXLAN_DEV}");
    for (k, _) in &sent {
        assert!(
            k.proto == 6 && k.src.to_string() == A_INNER && k.sport == 40101,
            "only the test's TCP connection crosses the VXLAN: {sent:#?}"
        );
    }
    let not_ipv4 = captured
        .iter()
        .filter(|p| p.outgoing && p.frame.get(12..14) != Some(&[0x08, 0x00][..]))
        .count();
    assert_eq!(not_ipv4, 0, "frames other than IPv4 crossed the VXLAN");
    let inner_packets: u64 = sent.iter().map(|(_, c)| c.packets).sum();
    let inner_octets: u64 = sent.iter().map(|(_, c)| c.bytes).sum();
    let gso_skbs: u64 = sent.iter().map(|(_, c)| c.gso_skbs).sum();
    assert!(
        gso_skbs > 0,
        "the 1 MiB send crossed the VXLAN as GSO super-packets (TSO on)"
    );
    assert!(
        inner_packets > (1 << 20) / 1500,
        "wire packets, not skbs: {inner_packets}"
    );

    // The dump: the underlay's outer UDP flow(s) from a to b's VXLAN port
    // (the outer source port is a hash of the inner flow).
    let outer: Vec<_> = dump
        .iter()
        .filter(|f| {
            f["direction"] == "egress"
                && f["proto"] == 17
                && f["src"] == A4
                && f["dst"] == B4
                && f["dport"] == VXLAN_PORT
        })
        .collect();
    assert!(!outer.is_empty(), "no outer VXLAN flow in the dump: {dump:#?}");
    let packets: u64 = outer.iter().map(|f| f["packets"].as_u64().unwrap()).sum();
    let bytes: u64 = outer.iter().map(|f| f["bytes"].as_u64().unwrap()).sum();
    assert_eq!(
        (packets, bytes),
        (inner_packets, inner_octets + inner_packets * VXLAN_OVERHEAD),
        "outer flow {outer:#?} against {gso_skbs} GSO skbs of inner traffic"
    );
}

/// An Ethernet frame with an MPLS label stack ((label, TC) pairs, top first)
/// over IPv4/UDP 10.207.0.1:sport -> 10.207.0.2:9 with `payload` bytes.
fn mpls_frame(stack: &[(u32, u8)], sport: u16, payload: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x0a, 0x88, 0x47]);
    for (i, &(label, tc)) in stack.iter().enumerate() {
        let bottom = u32::from(i + 1 == stack.len());
        f.extend_from_slice(&((label << 12) | (u32::from(tc) << 9) | (bottom << 8) | 64).to_be_bytes());
    }
    PacketBuilder::ipv4([10, 207, 0, 1], [10, 207, 0, 2], 64)
        .udp(sport, 9)
        .write(&mut f, &vec![0x44; payload])
        .unwrap();
    f
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn mpls_frames_show_their_top_label_in_the_dump() {
    let topo = Topology::new("mpls");
    let fc = Flowctl::new("mpls");
    fc.ok(&["attach", "--netns", &topo.a, "-i", A_IF, "--direction", "egress"]);
    let mut frames = vec![mpls_frame(&[(100, 5)], 41001, 100); 3];
    frames.extend(vec![mpls_frame(&[(200, 0), (16, 1), (17, 2)], 41002, 50); 2]);
    traffic::raw_frames(&topo.a, A_IF, frames);
    let dump = fc.dump();
    let flow = |sport: u64| -> &Value {
        dump.iter()
            .find(|f| f["sport"] == sport && f["src"] == "10.207.0.1")
            .unwrap_or_else(|| panic!("no flow from port {sport}: {dump:#?}"))
    };
    let got = |sport| {
        let f = flow(sport);
        (f["mpls_label"].clone(), f["packets"].clone(), f["bytes"].clone())
    };
    assert_eq!(
        got(41001),
        (
            json!({"label": 100, "tc": 5, "bottom_of_stack": true}),
            json!(3),
            json!(3 * (20 + 8 + 100))
        )
    );
    assert_eq!(
        got(41002),
        (
            json!({"label": 200, "tc": 0, "bottom_of_stack": false}),
            json!(2),
            json!(2 * (20 + 8 + 50))
        )
    );
    // Unlabelled flows say so.
    assert!(
        dump.iter()
            .filter(|f| f["src"] != "10.207.0.1")
            .all(|f| f["mpls_label"].is_null()),
        "{dump:#?}"
    );
}

//! End to end with real eBPF (root needed): two namespaces joined by a veth
//! pair that the test creates, flowctl attached to one end, known traffic,
//! and `flowctl dump -o json` compared with an AF_PACKET capture of the same
//! interface, flow by flow, in packets and octets.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{collections::BTreeMap, net::IpAddr, net::SocketAddr, path::Path};

use serde_json::Value;
use support::{
    capture::{self, Capture, TruthCount, TruthKey},
    flowctl_cli::Flowctl,
    netns::{Topology, A4, A6, A_IF, B4, B6, B_IF},
    traffic,
};

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Key of a dump entry in the capture's terms.
fn dump_key(f: &Value) -> TruthKey {
    TruthKey {
        direction: if f["direction"] == "egress" {
            "egress"
        } else {
            "ingress"
        },
        proto: f["proto"].as_u64().unwrap() as u8,
        src: f["src"].as_str().unwrap().parse().unwrap(),
        dst: f["dst"].as_str().unwrap().parse().unwrap(),
        sport: f["sport"].as_u64().unwrap() as u16,
        dport: f["dport"].as_u64().unwrap() as u16,
        vlan: f["vlan"].as_u64().unwrap() as u16,
        inner_vlan: f["inner_vlan"].as_u64().unwrap() as u16,
    }
}

/// The flows this test generates (not ARP/ND/MLD chatter of the link).
fn is_test_flow(k: &TruthKey) -> bool {
    const PORTS: [u16; 12] = [
        40001, 40002, 40003, 40004, 40005, 5201, 40006, 5202, 40007, 40008, 40009, 40010,
    ];
    match k.proto {
        6 | 17 => PORTS.contains(&k.sport) && PORTS.contains(&k.dport),
        1 => k.dport == 0x0800 || k.dport == 0x0000,
        58 => k.dport == 0x8000 || k.dport == 0x8100,
        _ => false,
    }
}

fn truth_of(truth: &BTreeMap<TruthKey, TruthCount>, k: &TruthKey) -> TruthCount {
    *truth.get(k).unwrap_or_else(|| panic!("no captured flow {k:?}"))
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn dump_equals_captured_ground_truth_for_every_flow() {
    ground_truth("truth", "auto");
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn dump_equals_captured_ground_truth_with_a_tc_filter() {
    ground_truth("truth-tc", "tc");
}

/// Known traffic of every kind through a veth metered with `mode`, and the
/// dump compared flow by flow with a capture of the same interface.
fn ground_truth(tag: &str, mode: &str) {
    let topo = Topology::new(tag);
    let fc = Flowctl::new(tag);
    let va = Topology::ifindex(&topo.a, A_IF);
    let cap = Capture::start(&topo.a, va);
    fc.ok(&[
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

    traffic::udp(&topo.a, sa(A4, 40001), &topo.b, sa(B4, 40002), 5, 200);
    traffic::udp(&topo.a, sa(A6, 40003), &topo.b, sa(B6, 40004), 4, 300);
    traffic::tcp_session(&topo.a, sa(A4, 40005), &topo.b, sa(B4, 5201), 4096);
    traffic::tcp_session(&topo.a, sa(A6, 40006), &topo.b, sa(B6, 5202), 256 * 1024);
    traffic::ping(&topo.a, ip(B4), 3, 56);
    traffic::ping(&topo.a, ip(B6), 3, 56);
    // Tagged frames: sent by a with in-band tags (802.1Q, and QinQ), and by b
    // towards a, where the kernel moves the outer tag into skb metadata.
    let (a4, b4) = ([10, 201, 0, 1], [10, 201, 0, 2]);
    let vlan_frames = |tags: &[u16], n, sport, dport| {
        (0..n)
            .map(|_| traffic::vlan_udp_frame(tags, a4, b4, sport, dport, 100))
            .collect::<Vec<_>>()
    };
    traffic::raw_frames(&topo.a, A_IF, vlan_frames(&[100], 6, 40007, 40008));
    traffic::raw_frames(&topo.a, A_IF, vlan_frames(&[200, 300], 2, 40009, 40010));
    let from_b = |tags: &[u16], n| {
        (0..n)
            .map(|_| traffic::vlan_udp_frame(tags, b4, a4, 40008, 40007, 50))
            .collect::<Vec<_>>()
    };
    traffic::raw_frames(&topo.b, B_IF, from_b(&[100], 4));
    traffic::raw_frames(&topo.b, B_IF, from_b(&[200, 300], 3));

    let dump = fc.dump();
    let truth = capture::flows(&cap.stop());

    // Anchors computed by hand: the capture itself is right.
    let key = |direction, proto, src: &str, sport, dst: &str, dport, vlans: (u16, u16)| TruthKey {
        direction,
        proto,
        src: ip(src),
        dst: ip(dst),
        sport,
        dport,
        vlan: vlans.0,
        inner_vlan: vlans.1,
    };
    let egress = |proto, src, sport, dst, dport, vlans| key("egress", proto, src, sport, dst, dport, vlans);
    let ingress = |proto, src, sport, dst, dport| key("ingress", proto, src, sport, dst, dport, (0, 0));
    let pb = |c: TruthCount| (c.packets, c.bytes);
    assert_eq!(
        pb(truth_of(&truth, &egress(17, A4, 40001, B4, 40002, (0, 0)))),
        (5, 5 * (20 + 8 + 200))
    );
    assert_eq!(
        pb(truth_of(&truth, &egress(17, A6, 40003, B6, 40004, (0, 0)))),
        (4, 4 * (40 + 8 + 300))
    );
    assert_eq!(
        pb(truth_of(&truth, &egress(1, A4, 0, B4, 0x0800, (0, 0)))),
        (3, 3 * (20 + 8 + 56))
    );
    assert_eq!(
        pb(truth_of(&truth, &ingress(1, B4, 0, A4, 0x0000))),
        (3, 3 * (20 + 8 + 56))
    );
    assert_eq!(
        pb(truth_of(&truth, &egress(58, A6, 0, B6, 0x8000, (0, 0)))),
        (3, 3 * (40 + 8 + 56))
    );
    assert_eq!(
        pb(truth_of(&truth, &ingress(58, B6, 0, A6, 0x8100))),
        (3, 3 * (40 + 8 + 56))
    );
    let udp100 = 20 + 8 + 100;
    assert_eq!(
        pb(truth_of(&truth, &egress(17, A4, 40007, B4, 40008, (100, 0)))),
        (6, 6 * udp100)
    );
    assert_eq!(
        pb(truth_of(&truth, &egress(17, A4, 40009, B4, 40010, (200, 300)))),
        (2, 2 * udp100)
    );
    let tagged_in = |vlans| key("ingress", 17, B4, 40008, A4, 40007, vlans);
    assert_eq!(pb(truth_of(&truth, &tagged_in((100, 0)))), (4, 4 * (20 + 8 + 50)));
    assert_eq!(pb(truth_of(&truth, &tagged_in((200, 300)))), (3, 3 * (20 + 8 + 50)));
    let tcp_out = truth_of(&truth, &egress(6, A4, 40005, B4, 5201, (0, 0)));
    let tcp_in = truth_of(&truth, &ingress(6, B4, 5201, A4, 40005));
    assert_eq!(tcp_out.tcp_flags & 0x13, 0x13, "SYN, ACK and FIN left");
    assert_eq!(tcp_in.tcp_flags & 0x13, 0x13, "SYN, ACK and FIN came back");
    let gso = truth_of(&truth, &egress(6, A6, 40006, B6, 5202, (0, 0)));
    assert!(
        gso.gso_skbs > 0,
        "the 256 KiB send went out as GSO super-packets (TSO on)"
    );
    assert!(gso.packets > 256 * 1024 / 65536, "wire packets, not skbs");

    // The comparison: every test flow, exactly, and nothing else.
    let expected: BTreeMap<_, _> = truth
        .iter()
        .filter(|(k, _)| is_test_flow(k))
        .map(|(k, c)| (k.clone(), (c.packets, c.bytes)))
        .collect();
    let got: BTreeMap<_, _> = dump
        .iter()
        .map(|f| {
            (
                dump_key(f),
                (f["packets"].as_u64().unwrap(), f["bytes"].as_u64().unwrap()),
            )
        })
        .filter(|(k, _)| is_test_flow(k))
        .collect();
    assert_eq!(expected.len(), 14, "test traffic flows in the capture: {expected:#?}");
    assert_eq!(got, expected);

    // Every entry names the interface and carries real timestamps and flags.
    let now = std::time::SystemTime::now();
    for f in dump.iter().filter(|f| is_test_flow(&dump_key(f))) {
        let (name_key, index_key) = if f["direction"] == "egress" {
            ("out_if", "out_ifindex")
        } else {
            ("in_if", "in_ifindex")
        };
        assert_eq!(f[name_key], A_IF, "{f}");
        assert_eq!(f[index_key], va, "{f}");
        if f["direction"] == "egress" {
            assert_eq!(f["in_ifindex"], 0, "locally generated: {f}");
        }
        for t in ["start", "end"] {
            let ts = humantime::parse_rfc3339(f[t].as_str().unwrap()).unwrap();
            let age = now.duration_since(ts).unwrap_or_default();
            assert!(age.as_secs() < 60, "{t} of {f} is {age:?} old");
        }
        if f["proto"] == 6 {
            let k = dump_key(f);
            assert_eq!(f["tcp_flags"].as_u64().unwrap() as u16, truth[&k].tcp_flags, "{f}");
        }
    }
}

/// Frames longer than a page sent through AF_PACKET keep only the Ethernet
/// header in the skb's linear area: the VLAN tags, IP and UDP headers are in
/// paged data, where the datapath cannot read them directly.
#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn headers_outside_the_linear_area_count_right() {
    let topo = Topology::new("paged");
    let fc = Flowctl::new("paged");
    for (ns, dev) in [(&topo.a, A_IF), (&topo.b, B_IF)] {
        support::netns::ip(&["-n", ns, "link", "set", dev, "mtu", "9000"]);
    }
    fc.ok(&["attach", "--netns", &topo.a, "-i", A_IF, "--direction", "egress"]);
    let (a4, b4) = ([10, 202, 0, 1], [10, 202, 0, 2]);
    let frames = |tags: &[u16], n, sport, payload| {
        (0..n)
            .map(|_| traffic::vlan_udp_frame(tags, a4, b4, sport, 42000, payload))
            .collect::<Vec<_>>()
    };
    traffic::raw_frames(&topo.a, A_IF, frames(&[100], 3, 42001, 6000));
    traffic::raw_frames(&topo.a, A_IF, frames(&[200, 300], 2, 42002, 5000));

    let dump = fc.dump();
    let flow = |sport: u64| {
        let found: Vec<_> = dump.iter().filter(|f| f["sport"] == sport).collect();
        assert_eq!(found.len(), 1, "one flow with source port {sport}: {dump:#?}");
        found[0].clone()
    };
    for (sport, packets, payload, vlan, inner) in [(42001, 3, 6000, 100, 0), (42002, 2, 5000, 200, 300)] {
        let f = flow(sport);
        assert_eq!(
            (
                f["src"].as_str(),
                f["dst"].as_str(),
                f["dport"].as_u64(),
                f["proto"].as_u64()
            ),
            (Some("10.202.0.1"), Some("10.202.0.2"), Some(42000), Some(17)),
            "{f}"
        );
        assert_eq!(
            (f["packets"].as_u64(), f["bytes"].as_u64()),
            (Some(packets), Some(packets * (20 + 8 + payload))),
            "{f}"
        );
        assert_eq!(
            (f["vlan"].as_u64(), f["inner_vlan"].as_u64()),
            (Some(vlan), Some(inner)),
            "{f}"
        );
    }
    let status: Value = serde_json::from_str(&fc.ok(&["status", "-o", "json"])).unwrap();
    assert_eq!(status["malformed_packets"].as_u64(), Some(0), "{status}");
}

fn flows_matching(dump: &[Value], proto: u64, sport: u64) -> usize {
    dump.iter()
        .filter(|f| f["proto"] == proto && f["sport"] == sport)
        .count()
}

fn udp_flows(dump: &[Value]) -> usize {
    dump.iter().filter(|f| f["proto"] == 17).count()
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn flush_of_one_flow_removes_exactly_that_flow() {
    let topo = Topology::new("flush");
    let fc = Flowctl::new("flush");
    fc.ok(&["attach", "--netns", &topo.a, "-i", A_IF]);
    traffic::udp(&topo.a, sa(A4, 41001), &topo.b, sa(B4, 41002), 2, 10);
    traffic::udp(&topo.a, sa(A4, 41003), &topo.b, sa(B4, 41004), 2, 10);
    traffic::udp(&topo.a, sa(A6, 41001), &topo.b, sa(B6, 41002), 2, 10);
    let before = fc.dump();
    assert_eq!(flows_matching(&before, 17, 41001), 2, "{before:#?}");
    assert_eq!(flows_matching(&before, 17, 41003), 1);

    let out = fc.ok(&[
        "flush",
        "--discard",
        "-p",
        "udp",
        "-s",
        A4,
        "-S",
        "41001",
        "-d",
        B4,
        "-D",
        "41002",
    ]);
    assert_eq!(out.trim(), "flushed 1 flow(s): discarded, not exported");
    let after = fc.dump();
    // Only UDP is compared: neighbour discovery may add ICMPv6 flows at any time.
    assert_eq!(udp_flows(&after), udp_flows(&before) - 1);
    assert_eq!(
        flows_matching(&after, 17, 41001),
        1,
        "the IPv6 flow with the same ports stays"
    );
    assert_eq!(
        after.iter().filter(|f| f["src"] == A4 && f["sport"] == 41001).count(),
        0
    );
    assert_eq!(flows_matching(&after, 17, 41003), 1);

    // --sort bytes: largest first.
    traffic::udp(&topo.a, sa(A4, 41005), &topo.b, sa(B4, 41006), 1, 1000);
    let sorted: Value = serde_json::from_str(&fc.ok(&["dump", "-o", "json", "--sort", "bytes"])).unwrap();
    let bytes: Vec<u64> = sorted
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["bytes"].as_u64().unwrap())
        .collect();
    assert!(bytes.windows(2).all(|w| w[0] >= w[1]), "{bytes:?}");
    assert_eq!(sorted[0]["sport"], 41005);

    // -i: every flow that entered or left by that interface.
    let va = Topology::ifindex(&topo.a, A_IF).to_string();
    let on_va = fc
        .dump()
        .iter()
        .filter(|f| f["out_ifindex"] == va.parse::<u64>().unwrap() && f["proto"] == 17)
        .count();
    let out = fc.ok(&["flush", "--discard", "-i", &va, "-p", "udp", "-S", "41005"]);
    assert_eq!(out.trim(), "flushed 1 flow(s): discarded, not exported");
    assert_eq!(
        on_va - 1,
        fc.dump()
            .iter()
            .filter(|f| f["out_ifindex"] == va.parse::<u64>().unwrap() && f["proto"] == 17)
            .count()
    );
    let after = fc.dump();

    let out = fc.ok(&["flush", "--discard", "-p", "udp", "-S", "9"]);
    assert_eq!(out.trim(), "flushed 0 flow(s): discarded, not exported");
    // Without an agent and without --discard, nothing is deleted.
    let refused = fc.run(&["flush", "--all"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("use --discard"));
    let out = fc.ok(&["flush", "--all", "--discard"]);
    let flushed: usize = out
        .trim()
        .strip_prefix("flushed ")
        .and_then(|s| s.strip_suffix(" flow(s): discarded, not exported"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected flush output {out:?}"));
    assert!(flushed >= after.len(), "flushed {flushed} of at least {}", after.len());
    assert_eq!(udp_flows(&fc.dump()), 0);
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn detach_removes_the_program_and_nothing_is_left_behind() {
    let topo = Topology::new("detach");
    let fc = Flowctl::new("detach");
    let out = fc.ok(&[
        "attach",
        "--netns",
        &topo.a,
        "-i",
        A_IF,
        "--direction",
        "both",
        "--max-flows",
        "1024",
    ]);
    assert!(
        out.contains("attached: va ingress") && out.contains("attached: va egress"),
        "{out}"
    );
    let again = fc.ok(&["attach", "--netns", &topo.a, "-i", A_IF, "--direction", "both"]);
    assert_eq!(
        again.matches("already attached").count(),
        2,
        "attach is idempotent: {again}"
    );

    let status: Value = serde_json::from_str(&fc.ok(&["status", "-o", "json"])).unwrap();
    assert_eq!(status["max_flows"], 1024);
    let attachments = status["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2);
    assert!(attachments
        .iter()
        .all(|a| a["state"] == "attached" && a["interface"] == A_IF && a["netns"] == topo.a.as_str()));
    let layout = fc.pin_dir.join(format!("v{}", flowctl_model::LAYOUT_VERSION));
    for p in ["flowctl_flows", "flowctl_stats", "links"] {
        assert!(layout.join(p).exists(), "{p} pinned");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&layout).unwrap().permissions().mode() & 0o777, 0o700);

    traffic::udp(&topo.a, sa(A4, 42001), &topo.b, sa(B4, 42002), 3, 10);
    let counted = fc.dump();
    assert_eq!(flows_matching(&counted, 17, 42001), 1);

    let out = fc.ok(&["detach", "--netns", &topo.a, "-i", A_IF]);
    assert_eq!(out.matches("detached:").count(), 2, "{out}");
    let status: Value = serde_json::from_str(&fc.ok(&["status", "-o", "json"])).unwrap();
    assert!(status["attachments"].as_array().unwrap().is_empty());

    // Not metered any more, and what was counted is still there.
    traffic::udp(&topo.a, sa(A4, 42003), &topo.b, sa(B4, 42004), 3, 10);
    let after = fc.dump();
    assert_eq!(flows_matching(&after, 17, 42003), 0, "no program after detach");
    assert_eq!(flows_matching(&after, 17, 42001), 1, "counted flows survive detach");
    let err = fc.run(&["detach", "--netns", &topo.a, "-i", A_IF]);
    assert!(!err.status.success());

    // Cleanup leaves nothing: pins, namespaces, links.
    let pin_dir = fc.pin_dir.clone();
    let (a, b) = (topo.a.clone(), topo.b.clone());
    drop(fc);
    drop(topo);
    assert!(!pin_dir.exists(), "pins removed");
    for ns in [a, b] {
        assert!(!Path::new("/var/run/netns").join(&ns).exists(), "netns {ns} removed");
    }
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn errors_are_one_clear_line_with_a_failing_exit_code() {
    let topo = Topology::new("errors");
    let fc = Flowctl::new("errors");
    let cases: &[(&[&str], &str)] = &[
        (&["dump"], "not attached"),
        (&["status"], "not attached"),
        (
            &["attach", "-i", "nosuchif0", "--netns", &topo.a],
            "interface \"nosuchif0\" not found",
        ),
        (
            &["attach", "-i", A_IF, "--netns", "no-such-netns"],
            "network namespace \"no-such-netns\" not found",
        ),
        (&["flush", "-s", "10.0.0.300"], "invalid"),
        (&["flush"], "needs --all or a selector"),
        (&["attach", "-i", A_IF, "--direction", "sideways"], "invalid value"),
        (&["attach", "-i", A_IF, "--max-flows", "0"], "invalid value"),
        (&["nonsense"], "unrecognized subcommand"),
    ];
    for (args, needle) in cases {
        let out = fc.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "flowctl {args:?} should fail");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line for {args:?}: {stderr}");
        assert!(stderr.contains(needle), "flowctl {args:?}: {stderr:?} lacks {needle:?}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Without privileges: says so, whatever the command.
    fc.ok(&["attach", "--netns", &topo.a, "-i", A_IF, "--max-flows", "512"]);
    for args in [
        &["status"][..],
        &["dump"],
        &["flush", "--all", "--discard"],
        &["attach", "-i", "lo"],
    ] {
        let out = std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                env!("CARGO_BIN_EXE_flowctl"),
            ])
            .args(args)
            .env("FLOWCTL_PIN_DIR", &fc.pin_dir)
            .env(
                "FLOWCTL_CONTROL_SOCKET",
                support::flowctl_cli::control_socket(&fc.pin_dir),
            )
            .output()
            .expect("setpriv (util-linux)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} as nobody must fail");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("missing capability CAP_BPF"),
            "flowctl {args:?} as nobody: {stderr}"
        );
    }
    // A size change on a live cache is refused rather than silently ignored.
    let out = fc.run(&[
        "attach",
        "--netns",
        &topo.a,
        "-i",
        A_IF,
        "--direction",
        "ingress",
        "--max-flows",
        "1024",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("holds 512 flows"), "{stderr}");
}

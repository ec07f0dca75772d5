//! Interfaces without a link-layer header (root needed): on tun, WireGuard,
//! ip tunnels and ppp a packet starts at the IP header. The counts must be
//! exact, and an IPv4 source address starting 8.0 (0x0800, the IPv4
//! ethertype, where an Ethernet parser would look) must not confuse them.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr, UdpSocket},
    time::Duration,
};

use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use serde_json::Value;
use support::{
    flowctl_cli::Flowctl,
    kernel,
    netns::{in_netns, ip, Topology, A4, B4},
    traffic,
    tun::Tun,
};

/// (direction, source, source port) -> (packets, bytes) of UDP flows.
type UdpFlows = BTreeMap<(String, IpAddr, u16), (u64, u64)>;

fn udp_flows_of_dump(dump: &[Value], interface: &str) -> UdpFlows {
    dump.iter()
        .filter(|f| f["proto"] == 17 && (f["in_if"] == interface || f["out_if"] == interface))
        .map(|f| {
            (
                (
                    f["direction"].as_str().unwrap().to_string(),
                    f["src"].as_str().unwrap().parse().unwrap(),
                    f["sport"].as_u64().unwrap() as u16,
                ),
                (f["packets"].as_u64().unwrap(), f["bytes"].as_u64().unwrap()),
            )
        })
        .collect()
}

/// Adds one IP packet (starting at the IP header) to `flows`.
fn count(flows: &mut UdpFlows, direction: &str, packet: &[u8]) {
    let Ok(h) = PacketHeaders::from_ip_slice(packet) else {
        return;
    };
    let (Some(net), Some(TransportHeader::Udp(udp))) = (h.net, h.transport) else {
        return;
    };
    let src: IpAddr = match net {
        NetHeaders::Ipv4(v4, _) => v4.source.into(),
        NetHeaders::Ipv6(v6, _) => v6.source.into(),
        _ => return,
    };
    let e = flows.entry((direction.to_string(), src, udp.source_port)).or_default();
    e.0 += 1;
    e.1 += packet.len() as u64;
}

fn udp_packet(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: usize) -> Vec<u8> {
    let builder = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => unreachable!("one IP version"),
    }
    .udp(sport, dport);
    let mut out = Vec::new();
    builder.write(&mut out, &vec![0x33; payload]).unwrap();
    out
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn a_tun_device_is_metered_exactly_from_the_ip_header() {
    let topo = Topology::new("tun");
    let ns = topo.a.clone();
    let mut tun = Tun::create(&ns, "tun0");
    // The tun's own address starts with 8.0: so do the sources of what it sends.
    ip(&["-n", &ns, "addr", "add", "8.0.0.1/32", "dev", "tun0"]);
    ip(&["-n", &ns, "addr", "add", "fd00:203::1/64", "dev", "tun0", "nodad"]);
    ip(&["-n", &ns, "route", "add", "10.203.0.0/24", "dev", "tun0"]);
    let fc = Flowctl::new("tun");
    fc.ok(&["attach", "--netns", &ns, "-i", "tun0", "--direction", "both"]);

    let mut truth = UdpFlows::new();
    // Received: IPv4 from 8.0.1.2 and IPv6, written into the device.
    let ours: IpAddr = "8.0.0.1".parse().unwrap();
    let ours6: IpAddr = "fd00:203::1".parse().unwrap();
    for (i, (src, dst)) in [
        ("8.0.1.2".parse().unwrap(), ours),
        ("fd00:203::2".parse().unwrap(), ours6),
    ]
    .into_iter()
    .enumerate()
    {
        for n in 0..5 {
            let p = udp_packet(src, dst, 44001 + i as u16, 44100, 100 + 10 * n);
            count(&mut truth, "ingress", &p);
            tun.inject(&p);
        }
    }
    // Sent: from 8.0.0.1 to a host behind the tun, read back from the device.
    in_netns(&ns, || {
        let s = UdpSocket::bind("8.0.0.1:44010").unwrap();
        for n in 0..4 {
            s.send_to(&vec![1; 200 + n], "10.203.0.2:44011").unwrap();
        }
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    for p in tun.sent() {
        count(&mut truth, "egress", &p);
    }
    assert_eq!(truth.len(), 3, "the test's flows: {truth:?}");

    let dump = fc.dump();
    let got = udp_flows_of_dump(&dump, "tun0");
    assert_eq!(got, truth, "dump against what went through the device: {dump:#?}");
    let status: Value = serde_json::from_str(&fc.ok(&["status", "-o", "json"])).unwrap();
    assert_eq!(status["non_ip_packets"], 0, "{status}");
    assert_eq!(status["malformed_packets"], 0, "{status}");
}

/// Creates tunnel `dev` of `kind` between a and b over their veth, with
/// inner addresses 10.205.0.1/.2; `false` if this kernel lacks the module.
fn tunnel(topo: &Topology, kind: &str, dev: &str) -> bool {
    let ends = [(&topo.a, A4, B4, "10.205.0.1"), (&topo.b, B4, A4, "10.205.0.2")];
    for (ns, local, remote, _) in ends {
        let out = std::process::Command::new("ip")
            .args([
                "-n", ns, "link", "add", dev, "type", kind, "local", local, "remote", remote,
            ])
            .output()
            .unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!kernel::in_guest(), "{kind} in the kernel guest: {err}");
            eprintln!("skipped {kind}: {err}");
            return false;
        }
    }
    for (ns, _, _, inner) in ends {
        ip(&["-n", ns, "addr", "add", &format!("{inner}/30"), "dev", dev]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }
    true
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn gre_and_ipip_tunnels_are_metered_exactly() {
    for (kind, dev, sport) in [("gre", "gt0", 44021), ("ipip", "it0", 44031)] {
        let topo = Topology::new(&format!("l3-{kind}"));
        if !tunnel(&topo, kind, dev) {
            continue;
        }
        let fc = Flowctl::new(kind);
        fc.ok(&["attach", "--netns", &topo.a, "-i", dev, "--direction", "both"]);
        let (a, b) = ("10.205.0.1", "10.205.0.2");
        let s = |ip: &str, port| SocketAddr::new(ip.parse().unwrap(), port);
        traffic::udp(&topo.a, s(a, sport), &topo.b, s(b, sport + 1), 6, 300);
        traffic::udp(&topo.b, s(b, sport + 1), &topo.a, s(a, sport), 3, 500);
        let got = udp_flows_of_dump(&fc.dump(), dev);
        let want: UdpFlows = [
            (
                ("egress".to_string(), a.parse().unwrap(), sport),
                (6, 6 * (20 + 8 + 300)),
            ),
            (
                ("ingress".to_string(), b.parse().unwrap(), sport + 1),
                (3, 3 * (20 + 8 + 500)),
            ),
        ]
        .into();
        assert_eq!(got, want, "{kind}");
    }
}

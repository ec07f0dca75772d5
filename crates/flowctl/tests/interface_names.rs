//! Interface names and the exporter address end to end (root needed): the
//! agent meters a veth in a namespace the test creates and sends interface
//! names options records (scope ingressInterface, interfaceName,
//! interfaceDescription) that tshark and `flowctl collect` decode for the
//! right ifindex, names from the metered namespace, a rename reflected at
//! once; and the exporter address, from the configuration or the socket's
//! local address, reaches a collector that sees another source address
//! (through a relay on a second loopback address).
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    net::{SocketAddr, UdpSocket},
    time::Duration,
};

use serde_json::Value;
use support::{
    agent::Agent,
    collect::{flow_records, Collect},
    collectors::{free_port, TempDir, Tshark},
    flowctl_cli::Flowctl,
    netns::{ip, Topology, A4, A_IF, B4},
    traffic,
};

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// Forwards every datagram to `to` from its own socket on 127.0.0.3, as a
/// relay (a samplicator) would: the collector sees 127.0.0.3.
fn relay(to: u16) -> u16 {
    let inbound = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = inbound.local_addr().unwrap().port();
    let outbound = UdpSocket::bind("127.0.0.3:0").unwrap();
    inbound.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = inbound.recv(&mut buf) {
            let _ = outbound.send_to(&buf[..n], ("127.0.0.1", to));
        }
    });
    port
}

/// The interface names records the collector printed: (ifindex, name, description).
fn names(lines: &[Value]) -> Vec<(u64, String, String)> {
    lines
        .iter()
        .filter(|l| l["options"] == true && l["fields"].get("interfaceName").is_some())
        .map(|l| {
            let f = &l["fields"];
            (
                f["ingressInterface"].as_u64().unwrap(),
                f["interfaceName"].as_str().unwrap().to_string(),
                f["interfaceDescription"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The exporter addresses of the statistics options records.
fn exporter_addresses(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["options"] == true)
        .filter_map(|l| l["fields"]["exporterIPv4Address"].as_str().map(String::from))
        .collect()
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn names_of_metered_interfaces_reach_tshark_and_collect_and_follow_a_rename() {
    let topo = Topology::new("ifn");
    let fc = Flowctl::new("ifn");
    let dir = TempDir::new("ifn");
    ip(&["-n", &topo.a, "link", "set", A_IF, "alias", "metered side"]);
    let va = Topology::ifindex(&topo.a, A_IF);
    let (direct, relayed) = (free_port(), free_port());
    let mut tshark = Tshark::start(direct);
    let collect = Collect::start(direct, &dir, "direct.json");
    let behind_relay = Collect::start(relayed, &dir, "relayed.json");
    let relay_port = relay(relayed);
    let config = dir.file(
        "agent.yaml",
        &format!(
            "interfaces:\n  - name: {A_IF}\n    netns: {ns}\n    direction: both\n\
             collectors:\n  - address: 127.0.0.1:{direct}\n    exporterAddress: 192.0.2.77\n\
             \x20 - address: 127.0.0.1:{relay_port}\n    localAddress: 127.0.0.2:0\n\
             timers:\n  idleTimeout: 1s\n  scanInterval: 200ms\n  templateRefresh: 2s\n\
             templates:\n  - id: 256\n    fields: [sourceIPv4Address, sourceTransportPort, packetDeltaCount, ingressInterface, egressInterface, exporterIPv4Address]\n\
             \x20 - id: 257\n    fields: [sourceIPv6Address, sourceTransportPort, packetDeltaCount, ingressInterface, egressInterface, exporterIPv6Address]\n",
            ns = topo.a
        ),
    );
    let agent = Agent::start(
        &fc.pin_dir,
        &["--config", config.to_str().unwrap()],
        &dir.0.join("agent.log"),
    );

    traffic::udp(&topo.a, sa(A4, 47001), &topo.b, sa(B4, 47002), 3, 100);
    collect.wait_until(Duration::from_secs(20), "the names of va", |l| {
        names(l).contains(&(u64::from(va), A_IF.into(), "metered side".into()))
    });
    collect.wait_for_flow(47001);

    // A rename (the link down, renamed, up) is sent at once, not at the next refresh.
    ip(&["-n", &topo.a, "link", "set", A_IF, "down"]);
    ip(&["-n", &topo.a, "link", "set", A_IF, "name", "wan7"]);
    ip(&["-n", &topo.a, "link", "set", "wan7", "alias", ""]);
    ip(&["-n", &topo.a, "link", "set", "wan7", "up"]);
    collect.wait_until(Duration::from_secs(1), "the new name", |l| {
        names(l).contains(&(u64::from(va), "wan7".into(), "wan7".into()))
    });
    behind_relay.wait_for_flow(47001);
    assert!(agent.stop().success());
    tshark.stop();

    let direct_lines = collect.stop();
    let records = flow_records(&direct_lines);
    let flow = records
        .iter()
        .find(|r| r["fields"]["sourceTransportPort"] == 47001)
        .unwrap();
    assert_eq!(
        flow["fields"]["egressInterface"],
        u64::from(va),
        "the flow names va by its ifindex"
    );
    assert_eq!(
        flow["fields"]["exporterIPv4Address"], "192.0.2.77",
        "the configured address"
    );
    assert!(exporter_addresses(&direct_lines).iter().all(|a| a == "192.0.2.77"));
    assert!(direct_lines
        .iter()
        .all(|l| l["exporter"].as_str().unwrap().starts_with("127.0.0.1:")));

    // Through the relay the collector sees 127.0.0.3; the records say 127.0.0.2.
    let relayed_lines = behind_relay.stop();
    assert!(relayed_lines
        .iter()
        .all(|l| l["exporter"].as_str().unwrap().starts_with("127.0.0.3:")));
    let flow = flow_records(&relayed_lines)
        .into_iter()
        .find(|r| r["fields"]["sourceTransportPort"] == 47001)
        .unwrap();
    assert_eq!(
        flow["fields"]["exporterIPv4Address"], "127.0.0.2",
        "the socket's local address"
    );
    let addresses = exporter_addresses(&relayed_lines);
    assert!(
        !addresses.is_empty() && addresses.iter().all(|a| a == "127.0.0.2"),
        "{addresses:?}"
    );

    // tshark decodes the same records: the names for va's index, before
    // and after the rename, and no malformed packet.
    let fields = tshark.read(&[
        "-T",
        "fields",
        "-e",
        "cflow.inputint",
        "-e",
        "cflow.if_name",
        "-e",
        "cflow.if_descr",
    ]);
    let named: Vec<(String, String, String)> = fields
        .lines()
        .flat_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let split = |i: usize| {
                cols.get(i)
                    .map(|c| c.split(',').map(String::from).collect::<Vec<_>>())
                    .unwrap_or_default()
            };
            let (idx, name, descr) = (split(0), split(1), split(2));
            // Options records list their index last among the message's ingress interfaces.
            let offset = idx.len().saturating_sub(name.len());
            (0..name.len())
                .map(|i| {
                    (
                        idx.get(offset + i).cloned().unwrap_or_default(),
                        name[i].clone(),
                        descr.get(i).cloned().unwrap_or_default(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let va = va.to_string();
    assert!(
        named.contains(&(va.clone(), A_IF.into(), "metered side".into())),
        "tshark: {fields}"
    );
    assert!(named.contains(&(va, "wan7".into(), "wan7".into())), "tshark: {fields}");
    let expert = tshark.read(&["-T", "fields", "-e", "_ws.malformed"]);
    assert!(expert.lines().all(|l| l.trim().is_empty()), "malformed: {expert}");
}

//! Packet sampling end to end (root needed): real eBPF on a veth pair in
//! namespaces the test creates, the agent metering 1 packet in N and
//! exporting over loopback to `flowctl collect` and tshark; `flowctl
//! attach`, `status` and re-attaching at another rate.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{net::SocketAddr, time::Duration};

use serde_json::Value;
use support::{
    agent::Agent,
    collect::{records_of, Collect},
    collectors::{free_port, TempDir, Tshark},
    flowctl_cli::Flowctl,
    netns::{Topology, A4, A_IF, B4},
    traffic,
};

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// Flow templates carrying the sampling of each flow.
const TEMPLATES: &str = r#"
collectors:
  - address: 127.0.0.1:9
templates:
  - id: 300
    fields: [sourceIPv4Address, destinationIPv4Address, sourceTransportPort, destinationTransportPort,
             protocolIdentifier, packetDeltaCount, octetDeltaCount, flowEndReason,
             selectorId, samplingPacketInterval, samplingPacketSpace, samplingInterval, samplingAlgorithm]
  - id: 301
    fields: [sourceIPv6Address, destinationIPv6Address, packetDeltaCount, octetDeltaCount, selectorId]
"#;

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn random_one_in_10_reaches_the_collector_with_its_selector() {
    let topo = Topology::new("smp");
    let fc = Flowctl::new("smp");
    let dir = TempDir::new("smp");
    let config = dir.file("agent.yaml", TEMPLATES);
    let port = free_port();
    let collect = Collect::start(port, &dir, "collect.json");
    let mut tshark = Tshark::start(port);
    let collector = format!("udp://127.0.0.1:{port}");
    let agent = Agent::start(
        &fc.pin_dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--netns",
            &topo.a,
            "-i",
            A_IF,
            "--collector",
            &collector,
            "--sample-interval",
            "10",
            "--scan-interval",
            "200ms",
        ],
        &dir.0.join("agent.log"),
    );
    let status: Value = serde_json::from_str(&fc.ok(&["status", "-o", "json"])).unwrap();
    let a = &status["attachments"][0];
    assert_eq!(
        (a["sample_interval"].as_u64(), a["sample_mode"].as_str()),
        (Some(10), Some("random")),
        "{status}"
    );

    let sent: u64 = 200_000;
    traffic::udp(&topo.a, sa(A4, 45001), &topo.b, sa(B4, 45002), sent as usize, 18);
    assert!(agent.stop().success(), "agent exits 0 on SIGTERM");
    tshark.stop();
    let lines = collect.stop();

    // Counted as they are, not scaled; x10 within 5 standard deviations of
    // the binomial mean.
    let recs = records_of(&lines, 45001);
    assert!(!recs.is_empty(), "the flow was exported");
    let sum = |f: &str| recs.iter().map(|r| r["fields"][f].as_u64().unwrap()).sum::<u64>();
    let (packets, octets) = (sum("packetDeltaCount"), sum("octetDeltaCount"));
    assert_eq!(octets, packets * 46, "each metered packet with its own 46 octets");
    let (n, p) = (sent as f64, 0.1);
    let sd = (n * p * (1.0 - p)).sqrt();
    let deviation = (packets as f64 - n * p) / sd;
    eprintln!(
        "random 1:10 over {sent} packets: collector sum {packets}, x10 = {} (sent {sent}), {deviation:+.2} standard deviations",
        packets * 10
    );
    assert!(deviation.abs() < 5.0, "{packets} of {sent} at 1:10: {deviation:.2} sd");

    let selector_id = (1u64 << 31) + 10;
    for r in &recs {
        let f = &r["fields"];
        let got = [
            "selectorId",
            "samplingPacketInterval",
            "samplingPacketSpace",
            "samplingInterval",
            "samplingAlgorithm",
        ]
        .map(|k| f[k].as_u64());
        assert_eq!(got, [Some(selector_id), Some(1), Some(9), Some(10), Some(2)], "{r}");
    }
    // The selector options record, before the flow's first record.
    let first_flow = lines
        .iter()
        .position(|l| l["fields"]["sourceTransportPort"] == 45001)
        .unwrap();
    let selector = lines
        .iter()
        .position(|l| l["options"] == true && l["fields"]["selectorId"] == selector_id)
        .expect("a selector record for random 1:10");
    assert!(selector < first_flow, "the selector is described before its flows");
    let s = &lines[selector]["fields"];
    let got = [
        "selectorAlgorithm",
        "samplingPacketInterval",
        "samplingPacketSpace",
        "samplingInterval",
        "samplingAlgorithm",
    ]
    .map(|k| s[k].as_u64());
    assert_eq!(got, [Some(3), Some(1), Some(9), Some(10), Some(2)], "{s}");

    // tshark decodes the same selector record.
    let out = tshark.read(&[
        "-Y",
        &format!("cflow.selector_id == {selector_id} && cflow.selector_algorithm"),
        "-T",
        "fields",
        "-e",
        "cflow.selector_algorithm",
        "-e",
        "cflow.sampling_packet_interval",
        "-e",
        "cflow.sampling_packet_space",
        "-e",
        "cflow.sampling_interval",
    ]);
    let first = out
        .lines()
        .next()
        .unwrap_or_else(|| panic!("tshark saw no selector record: {out:?}"));
    let cells: Vec<&str> = first.split('\t').map(|c| c.split(',').next().unwrap_or("")).collect();
    assert_eq!(cells, ["3", "1", "9", "10"], "tshark: {first:?}");
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn attach_at_another_rate_replaces_the_program_and_status_shows_it() {
    let topo = Topology::new("sma");
    let fc = Flowctl::new("sma");
    let attach = |extra: &[&str]| {
        let mut args = vec!["attach", "--netns", &topo.a, "-i", A_IF];
        args.extend_from_slice(extra);
        fc.ok(&args)
    };
    let attachment = || -> Value {
        let status: Value = serde_json::from_str(&fc.ok(&["status", "-o", "json"])).unwrap();
        status["attachments"][0].clone()
    };
    let out = attach(&["--sample-interval", "4", "--sample-mode", "deterministic"]);
    assert!(out.contains("sampling 1:4 deterministic"), "{out}");
    let a = attachment();
    assert_eq!(
        (a["sample_interval"].as_u64(), a["sample_mode"].as_str()),
        (Some(4), Some("deterministic"))
    );
    let first_prog = a["program_id"].as_u64().unwrap();
    let out = attach(&["--sample-interval", "4", "--sample-mode", "deterministic"]);
    assert!(out.starts_with("already attached"), "same rate: nothing to do: {out}");

    // 400 datagrams on one CPU's worth of a 1:4 count: about 100 metered.
    traffic::udp(&topo.a, sa(A4, 45101), &topo.b, sa(B4, 45102), 400, 10);
    let flows: Vec<Value> = fc.dump().into_iter().filter(|f| f["sport"] == 45101).collect();
    assert!(
        flows
            .iter()
            .all(|f| f["sample_interval"] == 4 && f["sample_mode"] == "deterministic"),
        "{flows:?}"
    );
    let metered: u64 = flows.iter().map(|f| f["packets"].as_u64().unwrap()).sum();
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    assert!(
        metered.abs_diff(100) <= cpus,
        "every 4th packet per CPU: {metered} of 400"
    );

    let out = attach(&[]);
    assert!(out.starts_with("attached"), "another rate replaces the program: {out}");
    let a = attachment();
    assert_eq!(a["sample_interval"].as_u64(), Some(1), "{a}");
    assert_ne!(a["program_id"].as_u64().unwrap(), first_prog);
    let table = fc.ok(&["status"]);
    assert!(table.contains("every packet"), "{table}");
    std::thread::sleep(Duration::from_millis(10));
}

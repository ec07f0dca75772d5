//! The agent end to end (root needed): real eBPF on a veth pair in namespaces
//! the test creates, the agent exporting over loopback to real collectors
//! (nfcapd read back with nfdump, tshark, and flowctl's own collector), and
//! the results compared with an AF_PACKET capture of the metered interface.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    process::Command,
    time::{Duration, SystemTime},
};

use serde_json::Value;
use support::{
    agent::Agent,
    capture::{self, Capture, TruthKey},
    collect::{records_of, Collect},
    collectors::{free_port, Nfcapd, TempDir, Tshark},
    flowctl_cli::Flowctl,
    netns::{Topology, A4, A6, A_IF, B4, B6},
    traffic,
};

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// Agent arguments metering va (both directions) with fast timers.
fn agent_args<'a>(topo: &'a Topology, collectors: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--netns",
        &topo.a,
        "-i",
        A_IF,
        "--direction",
        "both",
        "--scan-interval",
        "200ms",
    ];
    for c in collectors {
        a.extend(["--collector", c.as_str()]);
    }
    a.extend_from_slice(extra);
    a
}

/// A flow as nfdump prints it, in the capture's terms.
fn nfdump_key(f: &Value) -> TruthKey {
    let proto = f["proto"].as_u64().unwrap() as u8;
    let addr = |k4: &str, k6: &str| -> IpAddr { f[k4].as_str().or(f[k6].as_str()).unwrap().parse().unwrap() };
    let (sport, dport) = if proto == 1 || proto == 58 {
        (
            0,
            (f["icmp_type"].as_u64().unwrap() << 8 | f["icmp_code"].as_u64().unwrap()) as u16,
        )
    } else {
        (
            f["src_port"].as_u64().unwrap() as u16,
            f["dst_port"].as_u64().unwrap() as u16,
        )
    };
    TruthKey {
        direction: if f["direction"] == 1 { "egress" } else { "ingress" },
        proto,
        src: addr("src4_addr", "src6_addr"),
        dst: addr("dst4_addr", "dst6_addr"),
        sport,
        dport,
        vlan: 0,
        inner_vlan: 0,
    }
}

fn utc_ms(s: &str) -> SystemTime {
    humantime::parse_rfc3339_weak(s).unwrap_or_else(|e| panic!("time {s:?}: {e}"))
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn nfdump_and_tshark_see_every_flow_exactly() {
    let topo = Topology::new("nfd");
    let fc = Flowctl::new("nfd");
    let logs = TempDir::new("nfd-logs");
    let port = free_port();
    let mut tshark = Tshark::start(port);
    let nfcapd = Nfcapd::start(port);
    let va = Topology::ifindex(&topo.a, A_IF);
    let cap = Capture::start(&topo.a, va);
    let collectors = [format!("udp://127.0.0.1:{port}")];
    let agent = Agent::start(
        &fc.pin_dir,
        &agent_args(&topo, &collectors, &["--idle-timeout", "1s"]),
        &logs.0.join("agent.log"),
    );

    let before = SystemTime::now();
    traffic::udp(&topo.a, sa(A4, 43001), &topo.b, sa(B4, 43002), 5, 200);
    traffic::udp(&topo.a, sa(A6, 43003), &topo.b, sa(B6, 43004), 4, 300);
    traffic::tcp_session(&topo.a, sa(A4, 43005), &topo.b, sa(B4, 5301), 100_000);
    traffic::tcp_session(&topo.a, sa(A6, 43006), &topo.b, sa(B6, 5302), 2000);
    traffic::ping(&topo.a, B4.parse().unwrap(), 3, 56);
    traffic::ping(&topo.a, B6.parse().unwrap(), 3, 100);
    let after = SystemTime::now();
    std::thread::sleep(Duration::from_millis(2500)); // idle timeout + scans
    assert!(agent.stop().success(), "agent exits 0 on SIGTERM");
    let truth = capture::flows(&cap.stop());
    tshark.stop();
    let flows = nfcapd.stop_and_read();

    let is_test = |k: &TruthKey| match k.proto {
        6 | 17 => k.sport >= 43001 && k.sport <= 43006 || k.dport >= 43001 && k.dport <= 43006,
        1 => k.dport == 0x0800 || k.dport == 0,
        58 => k.dport == 0x8000 || k.dport == 0x8100,
        _ => false,
    };
    let expected: BTreeMap<_, _> = truth
        .iter()
        .filter(|(k, _)| is_test(k))
        .map(|(k, c)| (k.clone(), (c.packets, c.bytes)))
        .collect();
    assert_eq!(
        expected.len(),
        10,
        "IPv4 and IPv6 UDP, TCP both ways, ICMP and ICMPv6 both ways: {expected:#?}"
    );
    // A flow can arrive as several records (idle end, then the last ACK at shutdown): sum them.
    let mut got: BTreeMap<TruthKey, (u64, u64)> = BTreeMap::new();
    let mut flags: BTreeMap<TruthKey, u16> = BTreeMap::new();
    for f in &flows {
        let k = nfdump_key(f);
        if is_test(&k) {
            // Interfaces, direction and TCP flags carry real values, not zeros.
            let (input, output) = (f["input_snmp"].as_u64().unwrap(), f["output_snmp"].as_u64().unwrap());
            if k.direction == "egress" {
                assert_eq!((input, output, f["direction"].as_u64()), (0, va as u64, Some(1)), "{f}");
            } else {
                assert_eq!((input, output, f["direction"].as_u64()), (va as u64, 0, Some(0)), "{f}");
            }
            if k.proto == 6 {
                // nfdump prints CEUAPRSF with dots; OR the records of a flow.
                let bits = f["tcp_flags"].as_str().unwrap().chars().enumerate();
                let bits: u16 = bits.filter(|(_, c)| *c != '.').map(|(i, _)| 0x80u16 >> i).sum();
                *flags.entry(k.clone()).or_default() |= bits;
            }
            let e = got.entry(k).or_default();
            e.0 += f["in_packets"].as_u64().unwrap();
            e.1 += f["in_bytes"].as_u64().unwrap();
            let (first, last) = (
                utc_ms(f["first"].as_str().unwrap()),
                utc_ms(f["last"].as_str().unwrap()),
            );
            let slack = Duration::from_secs(2);
            assert!(
                first >= before - slack && last <= after + slack && first <= last,
                "times of {f}"
            );
        }
    }
    assert_eq!(
        got, expected,
        "nfdump totals per flow equal the captured wire packets and octets"
    );
    assert_eq!(flags.len(), 4, "four TCP flows");
    for (k, f) in &flags {
        assert_eq!(*f, truth[k].tcp_flags, "TCP flags of {k:?}");
    }

    // tshark decodes every message cleanly: no malformed packet, no expert
    // error or warning (sequence analysis included), templates first.
    let expert = tshark.read(&["-T", "fields", "-e", "_ws.malformed", "-e", "_ws.expert.message"]);
    assert!(
        expert.lines().all(|l| l.trim().is_empty()),
        "tshark expert/malformed output:\n{expert}"
    );
    let verbose = tshark.read(&["-V"]);
    assert!(!verbose.contains("no template found"), "data before its template");
    let sets = tshark.read(&["-T", "fields", "-e", "cflow.sequence", "-e", "cflow.flowset_id"]);
    let first = sets.lines().next().expect("export captured");
    assert!(
        first.split('\t').nth(1).unwrap().split(',').any(|s| s == "2"),
        "first message carries templates: {first}"
    );
    // Sequence numbers as tshark decodes them: each message's number is the
    // previous one's plus the records ("N flows") that message carried.
    let mut messages: Vec<(u64, u64)> = Vec::new(); // (FlowSequence, data records)
    for line in verbose.lines().map(str::trim) {
        if let Some(seq) = line.strip_prefix("FlowSequence: ") {
            messages.push((seq.parse().unwrap(), 0));
        } else if let Some(n) = line.split(" (").nth(1).and_then(|r| r.strip_suffix(" flows)")) {
            messages.last_mut().unwrap().1 += n.parse::<u64>().unwrap();
        }
    }
    assert!(messages.len() >= 3, "{messages:?}");
    for w in messages.windows(2) {
        assert_eq!(
            w[1].0,
            w[0].0 + w[0].1,
            "sequence numbers count the data records sent: {messages:?}"
        );
    }
    assert!(
        !verbose.contains("Expected Sequence Number"),
        "tshark sequence analysis found a gap"
    );
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn a_long_flow_across_active_timeouts_sums_exactly_at_two_collectors() {
    let topo = Topology::new("act");
    let fc = Flowctl::new("act");
    let dir = TempDir::new("act");
    let (p1, p2) = (free_port(), free_port());
    let nfcapd = Nfcapd::start(p1);
    let collect = Collect::start(p2, &dir, "collect.json");
    let collectors = [format!("udp://127.0.0.1:{p1}"), format!("udp://127.0.0.1:{p2}")];
    let args = agent_args(&topo, &collectors, &["--active-timeout", "1s", "--idle-timeout", "2s"]);
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));

    // 40 datagrams of 100 bytes, one every 100 ms: about 4 s of one flow.
    let sink = support::netns::in_netns(&topo.b, || std::net::UdpSocket::bind(sa(B4, 44002)).unwrap())
        .join()
        .unwrap();
    support::netns::in_netns(&topo.a, || {
        let s = std::net::UdpSocket::bind(sa(A4, 44001)).unwrap();
        for _ in 0..40 {
            s.send_to(&[7u8; 100], sa(B4, 44002)).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(agent.stop().success());
    drop(sink);

    let lines = collect.stop();
    let recs = records_of(&lines, 44001);
    let reasons: Vec<u64> = recs
        .iter()
        .map(|r| r["fields"]["flowEndReason"].as_u64().unwrap())
        .collect();
    assert!(
        reasons.iter().filter(|&&r| r == 2).count() >= 3,
        "several active-timeout records: {reasons:?}"
    );
    // The flow ends idle (1) or at shutdown (4); if the last active report
    // already held every packet, the end carries nothing new and is not sent.
    assert!(reasons.iter().all(|r| [1, 2, 4].contains(r)), "{reasons:?}");
    let sum = |f: &str| recs.iter().map(|r| r["fields"][f].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("packetDeltaCount"), sum("octetDeltaCount")), (40, 40 * 128));
    // Each record covers its own interval: starts never go back in time.
    let starts: Vec<u64> = recs
        .iter()
        .map(|r| r["fields"]["flowStartMilliseconds"].as_u64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
    // Sequence numbers count the data records before each message, per collector.
    let mut seq: BTreeMap<u64, (u64, u64)> = BTreeMap::new(); // sequence -> records in that message
    for l in &lines {
        seq.entry(l["sequence_number"].as_u64().unwrap()).or_default().0 += 1;
    }
    let mut expected_next = None;
    for (s, (n, _)) in &seq {
        if let Some(e) = expected_next {
            assert_eq!(*s, e, "sequence numbers are contiguous: {seq:?}");
        }
        expected_next = Some(s + n);
    }
    let opts: Vec<_> = lines.iter().filter(|l| l["options"] == true).collect();
    assert!(
        opts.iter().any(|o| o["fields"]["samplingInterval"] == 1),
        "sampling interval 1 exported"
    );
    assert!(
        opts.iter()
            .any(|o| o["fields"].get("exportedMessageTotalCount").is_some()),
        "exporter statistics exported"
    );

    let flows = nfcapd.stop_and_read();
    let nf: Vec<_> = flows.iter().filter(|f| f["src_port"] == 44001).collect();
    let total = |k: &str| nf.iter().map(|f| f[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(
        (total("in_packets"), total("in_bytes")),
        (40, 40 * 128),
        "nfdump sees the same sums"
    );
    assert_eq!(nf.len(), recs.len(), "both collectors got every record");
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn tcp_transport_and_restarted_collectors_get_templates_again() {
    let topo = Topology::new("tcp");
    let fc = Flowctl::new("tcp");
    let dir = TempDir::new("tcp");
    let (tcp_port, udp_port) = (free_port(), free_port());
    let collect = Collect::start(tcp_port, &dir, "first.json");
    let nfcapd = Nfcapd::start(udp_port);
    let collectors = [
        format!("tcp://127.0.0.1:{tcp_port}"),
        format!("udp://127.0.0.1:{udp_port}"),
    ];
    let args = agent_args(
        &topo,
        &collectors,
        &["--idle-timeout", "1s", "--template-refresh", "1s"],
    );
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));

    traffic::udp(&topo.a, sa(A4, 45001), &topo.b, sa(B4, 45002), 3, 50);
    collect.wait_for_flow(45001);
    let first = collect.stop();
    let first_flows = nfcapd.stop_and_read();
    let got = records_of(&first, 45001);
    assert_eq!(got.len(), 1, "{first:#?}");
    assert_eq!(got[0]["fields"]["packetDeltaCount"], 3);
    assert_eq!(first_flows.iter().filter(|f| f["src_port"] == 45001).count(), 1);

    // Both collectors restart; the agent reconnects (TCP, with backoff) or
    // refreshes (UDP) and the new instances decode what follows.
    let collect = Collect::start(tcp_port, &dir, "second.json");
    let nfcapd = Nfcapd::start(udp_port);
    std::thread::sleep(Duration::from_millis(1500));
    traffic::udp(&topo.a, sa(A6, 45003), &topo.b, sa(B6, 45004), 4, 60);
    collect.wait_for_flow(45003);
    assert!(agent.stop().success());
    let second = collect.stop();
    let got = records_of(&second, 45003);
    assert_eq!(got.len(), 1, "TCP collector decodes after the reconnect: {second:#?}");
    assert_eq!(got[0]["fields"]["packetDeltaCount"], 4);
    assert_eq!(got[0]["fields"]["octetDeltaCount"], 4 * (40 + 8 + 60));
    let flows = nfcapd.stop_and_read();
    let nf: Vec<_> = flows.iter().filter(|f| f["src_port"] == 45003).collect();
    assert_eq!(
        nf.len(),
        1,
        "restarted nfcapd decodes after the template refresh: {flows:#?}"
    );
    assert_eq!(nf[0]["in_bytes"], 4 * (40 + 8 + 60));
    assert!(agent_log_has_reconnect(&dir));
}

fn agent_log_has_reconnect(dir: &TempDir) -> bool {
    let log = std::fs::read_to_string(dir.0.join("agent.log")).unwrap();
    log.matches(&"connected".to_string()).count() >= 3
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn sighup_keeps_the_running_config_when_the_new_one_is_bad_and_applies_a_good_one() {
    let topo = Topology::new("hup");
    let fc = Flowctl::new("hup");
    let dir = TempDir::new("hup");
    let (pa, pb) = (free_port(), free_port());
    let a = Collect::start(pa, &dir, "a.json");
    let b = Collect::start(pb, &dir, "b.json");
    let config = dir.0.join("agent.yaml");
    let collectors_yaml = |ports: &[u16]| {
        let mut y = String::from("timers:\n  idleTimeout: 1s\n  scanInterval: 200ms\ncollectors:\n");
        for p in ports {
            y.push_str(&format!("  - address: 127.0.0.1:{p}\n"));
        }
        y
    };
    std::fs::write(&config, collectors_yaml(&[pa])).unwrap();
    let config_arg = config.to_str().unwrap();
    let args = ["--config", config_arg, "--netns", &topo.a, "-i", A_IF];
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));

    traffic::udp(&topo.a, sa(A4, 46001), &topo.b, sa(B4, 46002), 2, 10);
    std::fs::write(
        &config,
        "collectors:\n  - address: 127.0.0.1:1\n    transport: carrier-pigeon\n",
    )
    .unwrap();
    agent.signal(libc::SIGHUP);
    agent.wait_for_log("reload refused", Duration::from_secs(5));
    assert!(
        agent
            .log()
            .contains("transport: \"carrier-pigeon\" is not udp, tcp or tls"),
        "{}",
        agent.log()
    );
    traffic::udp(&topo.a, sa(A4, 46003), &topo.b, sa(B4, 46004), 2, 10);
    a.wait_for_flow(46003);

    std::fs::write(&config, collectors_yaml(&[pa, pb])).unwrap();
    agent.signal(libc::SIGHUP);
    agent.wait_for_log("configuration reloaded", Duration::from_secs(5));
    traffic::udp(&topo.a, sa(A4, 46005), &topo.b, sa(B4, 46006), 2, 10);
    a.wait_for_flow(46005);
    b.wait_for_flow(46005);
    assert!(agent.stop().success());

    let la = a.stop();
    let lb = b.stop();
    for port in [46001, 46003, 46005] {
        assert_eq!(
            records_of(&la, port).len(),
            1,
            "collector A got the flow from port {port}: {la:#?}"
        );
    }
    assert!(records_of(&lb, 46001).is_empty() && records_of(&lb, 46003).is_empty());
    assert_eq!(
        records_of(&lb, 46005).len(),
        1,
        "the collector added by the reload gets new flows"
    );
    // A's sequence numbers run on across the reload.
    let seqs: Vec<u64> = la.iter().map(|l| l["sequence_number"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "never reset: {seqs:?}");
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn ipfix_send_delivers_synthetic_flows_to_nfcapd() {
    let dir = TempDir::new("send");
    let port = free_port();
    let nfcapd = Nfcapd::start(port);
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let reference = std::fs::read_to_string(repo.join("configs/linux-flow-exporter.yaml")).unwrap();
    let config = dir.0.join("send.yaml");
    std::fs::write(
        &config,
        reference.replace("127.0.0.1:2100", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["ipfix", "send", "--config"])
        .arg(&config)
        .arg("--flows")
        .arg(repo.join("configs/flows-example.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::thread::sleep(Duration::from_millis(300));
    let flows = nfcapd.stop_and_read();
    assert_eq!(flows.len(), 2, "{flows:#?}");
    let tcp = flows.iter().find(|f| f["proto"] == 6).unwrap();
    assert_eq!(
        (tcp["src4_addr"].as_str(), tcp["dst4_addr"].as_str()),
        (Some("10.1.0.1"), Some("10.2.0.2"))
    );
    assert_eq!(
        (tcp["src_port"].as_u64(), tcp["dst_port"].as_u64()),
        (Some(43210), Some(443))
    );
    assert_eq!(
        (tcp["in_packets"].as_u64(), tcp["in_bytes"].as_u64()),
        (Some(12), Some(15000))
    );
    assert_eq!(tcp["first"], "2026-11-23T10:00:00.000");
    assert_eq!(tcp["last"], "2026-11-23T10:00:05.000");
    let udp = flows.iter().find(|f| f["proto"] == 17).unwrap();
    assert_eq!(
        (udp["in_packets"].as_u64(), udp["in_bytes"].as_u64()),
        (Some(3), Some(420))
    );
}

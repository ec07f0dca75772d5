//! NetFlow v9 end to end (root needed): real eBPF on a veth pair in
//! namespaces the test creates, the agent exporting each record twice, as
//! NetFlow v9 to nfcapd (read back with nfdump) under a tshark capture, and
//! as IPFIX to `flowctl collect`. nfdump's totals per flow equal an
//! AF_PACKET capture of the metered interface; nfdump and tshark recover
//! every record's times to the millisecond from sysUptime (the IPFIX copy
//! says what they are); tshark finds nothing malformed, templates first,
//! sequence numbers counting packets.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use serde_json::Value;
use support::{
    agent::Agent,
    capture::{self, Capture},
    collect::{flow_records, Collect},
    collectors::{free_port, Nfcapd, TempDir, Tshark},
    flowctl_cli::Flowctl,
    netns::{Topology, A4, A6, A_IF, B4, B6},
    traffic,
};

/// The Source ID the v9 packets must carry.
const DOMAIN: u32 = 4242;

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// One record, as every collector can tell it: direction (0 ingress),
/// protocol, addresses, source port, destination port or ICMP type * 256 +
/// code, first and last packet (Unix ms), packets, octets.
type Rec = (u64, u64, String, String, u64, u64, u64, u64, u64, u64);

/// A flow: protocol, addresses, source port, destination port or ICMP.
type FlowId = (u64, String, String, u64, u64);
/// Packets and octets.
type Totals = BTreeMap<FlowId, (u64, u64)>;

fn ms_of(utc: &str) -> u64 {
    let t = humantime::parse_rfc3339_weak(utc).unwrap_or_else(|e| panic!("time {utc:?}: {e}"));
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A record as nfdump prints it (JSON, times in UTC).
fn from_nfdump(f: &Value) -> Rec {
    let proto = f["proto"].as_u64().unwrap();
    let addr = |k4: &str, k6: &str| f[k4].as_str().or(f[k6].as_str()).unwrap().to_string();
    let (sport, dport) = if proto == 1 || proto == 58 {
        (
            0,
            f["icmp_type"].as_u64().unwrap() << 8 | f["icmp_code"].as_u64().unwrap(),
        )
    } else {
        (f["src_port"].as_u64().unwrap(), f["dst_port"].as_u64().unwrap())
    };
    (
        f["direction"].as_u64().unwrap(),
        proto,
        addr("src4_addr", "src6_addr"),
        addr("dst4_addr", "dst6_addr"),
        sport,
        dport,
        ms_of(f["first"].as_str().unwrap()),
        ms_of(f["last"].as_str().unwrap()),
        f["in_packets"].as_u64().unwrap(),
        f["in_bytes"].as_u64().unwrap(),
    )
}

/// A record as `flowctl collect` prints the IPFIX copy.
fn from_ipfix(l: &Value) -> Rec {
    let f = &l["fields"];
    let n = |k: &str| f[k].as_u64().unwrap_or_else(|| panic!("{k} in {l}"));
    let proto = n("protocolIdentifier");
    let addr = |k4: &str, k6: &str| f[k4].as_str().or(f[k6].as_str()).unwrap().to_string();
    let icmp = f["icmpTypeCodeIPv4"]
        .as_u64()
        .or(f["icmpTypeCodeIPv6"].as_u64())
        .unwrap();
    let dport = if proto == 1 || proto == 58 {
        icmp
    } else {
        n("destinationTransportPort")
    };
    (
        n("flowDirection"),
        proto,
        addr("sourceIPv4Address", "sourceIPv6Address"),
        addr("destinationIPv4Address", "destinationIPv6Address"),
        n("sourceTransportPort"),
        dport,
        n("flowStartMilliseconds"),
        n("flowEndMilliseconds"),
        n("packetDeltaCount"),
        n("octetDeltaCount"),
    )
}

/// A tshark relative time ("5.437000000") in milliseconds.
fn rel_ms(s: &str) -> u64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    secs.parse::<u64>().unwrap() * 1000 + format!("{frac:0<3}")[..3].parse::<u64>().unwrap()
}

fn sorted(mut v: Vec<Rec>) -> Vec<Rec> {
    v.sort();
    v
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn nfdump_and_tshark_decode_netflow9_exactly() {
    let topo = Topology::new("nf9");
    let fc = Flowctl::new("nf9");
    let dir = TempDir::new("nf9");
    let (v9_port, ipfix_port) = (free_port(), free_port());
    let mut tshark = Tshark::start(v9_port);
    let nfcapd = Nfcapd::start(v9_port);
    let collect = Collect::start(ipfix_port, &dir, "ipfix.json");
    let va = Topology::ifindex(&topo.a, A_IF);
    let cap = Capture::start(&topo.a, va);
    let config = dir.file(
        "agent.yaml",
        &format!(
            "collectors:\n  - address: 127.0.0.1:{v9_port}\n    protocol: netflow9\n    observationDomainId: {DOMAIN}\n\
             \x20 - address: 127.0.0.1:{ipfix_port}\n"
        ),
    );
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--netns",
        &topo.a,
        "-i",
        A_IF,
        "--direction",
        "both",
        "--scan-interval",
        "200ms",
        "--idle-timeout",
        "1s",
    ];
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));
    assert!(
        agent.log().contains("the templates go without flowEndReason"),
        "the agent says what v9 lacks:\n{}",
        agent.log()
    );

    traffic::udp(&topo.a, sa(A4, 48001), &topo.b, sa(B4, 48002), 5, 200);
    traffic::udp(&topo.a, sa(A6, 48003), &topo.b, sa(B6, 48004), 4, 300);
    traffic::tcp_session(&topo.a, sa(A4, 48005), &topo.b, sa(B4, 5401), 100_000);
    traffic::tcp_session(&topo.a, sa(A6, 48006), &topo.b, sa(B6, 5402), 2000);
    traffic::ping(&topo.a, B4.parse().unwrap(), 3, 56);
    traffic::ping(&topo.a, B6.parse().unwrap(), 3, 100);
    std::thread::sleep(Duration::from_millis(2500)); // idle timeout + scans
    assert!(agent.stop().success(), "agent exits 0 on SIGTERM");
    let truth = capture::flows(&cap.stop());
    tshark.stop();
    let v9 = nfcapd.stop_and_read();
    let ipfix = collect.stop();

    // nfdump: per flow, the packets and octets of the wire.
    let is_test = |proto: u64, sport: u64, dport: u64| match proto {
        6 | 17 => (48001..=48006).contains(&sport) || (48001..=48006).contains(&dport),
        1 => dport == 0x0800 || dport == 0,
        58 => dport == 0x8000 || dport == 0x8100,
        _ => false,
    };
    let expected: Totals = truth
        .iter()
        .filter(|(k, _)| is_test(k.proto.into(), k.sport.into(), k.dport.into()))
        .map(|(k, c)| {
            let key = (
                u64::from(k.proto),
                k.src.to_string(),
                k.dst.to_string(),
                u64::from(k.sport),
                u64::from(k.dport),
            );
            (key, (c.packets, c.bytes))
        })
        .collect();
    assert_eq!(
        expected.len(),
        10,
        "UDP, TCP both ways, ICMP both ways, over IPv4 and IPv6: {expected:#?}"
    );
    let v9_records: Vec<Rec> = v9.iter().map(from_nfdump).collect();
    let mut got = Totals::new();
    for r in v9_records.iter().filter(|r| is_test(r.1, r.4, r.5)) {
        let e = got.entry((r.1, r.2.clone(), r.3.clone(), r.4, r.5)).or_default();
        e.0 += r.8;
        e.1 += r.9;
    }
    assert_eq!(
        got, expected,
        "nfdump totals per flow equal the captured wire packets and octets"
    );
    for f in &v9 {
        let (input, output) = (f["input_snmp"].as_u64().unwrap(), f["output_snmp"].as_u64().unwrap());
        assert!(
            input == u64::from(va) || output == u64::from(va),
            "interfaces carried: {f}"
        );
    }

    // Every record, its times to the millisecond, as the IPFIX copy has it.
    let reference: Vec<Rec> = flow_records(&ipfix).into_iter().map(from_ipfix).collect();
    assert!(reference.len() >= 10);
    assert_eq!(
        sorted(v9_records),
        sorted(reference.clone()),
        "nfdump reads every v9 record exactly"
    );

    // tshark: nothing malformed, no expert warning (sequence analysis included).
    let expert = tshark.read(&["-T", "fields", "-e", "_ws.malformed", "-e", "_ws.expert.message"]);
    assert!(
        expert.lines().all(|l| l.trim().is_empty()),
        "tshark expert/malformed output:\n{expert}"
    );
    let verbose = tshark.read(&["-V"]);
    assert!(!verbose.contains("no template found"), "data before its template");
    assert!(verbose.contains("Version: 9"));
    let cols = [
        "cflow.version",
        "cflow.source_id",
        "cflow.sequence",
        "cflow.flowset_id",
        "cflow.unix_secs",
        "cflow.sysuptime",
        "cflow.srcport",
        "cflow.timestart",
        "cflow.timeend",
        "cflow.packets",
        "cflow.octets",
        "cflow.sampling_interval",
        "cflow.if_name",
    ];
    let mut args = vec!["-T", "fields"];
    for c in &cols {
        args.extend(["-e", c]);
    }
    let fields = tshark.read(&args);
    let mut sequences = Vec::new();
    let mut seen: Vec<(u64, u64, u64, u64, u64)> = Vec::new(); // sport, first, last, packets, octets
    let (mut sampling, mut names) = (Vec::new(), Vec::new());
    for line in fields.lines() {
        let c: Vec<Vec<&str>> = line
            .split('\t')
            .map(|col| col.split(',').filter(|s| !s.is_empty()).collect())
            .collect();
        assert_eq!(c[0], ["9"], "{line}");
        assert_eq!(
            c[1],
            [DOMAIN.to_string().as_str()],
            "the Source ID is the observation domain"
        );
        sequences.push(c[2][0].parse::<u64>().unwrap());
        if sequences.len() == 1 {
            assert_eq!(c[3][0], "0", "the first packet carries the templates: {line}");
        }
        let boot = c[4][0].parse::<u64>().unwrap() * 1000 - rel_ms(c[5][0]);
        let n = c[6].len();
        assert!(
            c[7].len() == n && c[8].len() == n && c[9].len() == n && c[10].len() == n,
            "{line}"
        );
        let records = c[6].iter().zip(&c[7]).zip(&c[8]).zip(&c[9]).zip(&c[10]);
        for ((((sport, start), end), packets), octets) in records {
            seen.push((
                sport.parse().unwrap(),
                boot + rel_ms(start),
                boot + rel_ms(end),
                packets.parse().unwrap(),
                octets.parse().unwrap(),
            ));
        }
        sampling.extend(c[11].iter().map(|s| s.to_string()));
        names.extend(c[12].iter().map(|s| s.to_string()));
    }
    assert!(sequences.len() >= 4, "{fields}");
    assert_eq!(
        sequences,
        (sequences[0]..sequences[0] + sequences.len() as u64).collect::<Vec<_>>(),
        "v9 sequence numbers count packets"
    );
    let mut expected_seen: Vec<_> = reference.iter().map(|r| (r.4, r.6, r.7, r.8, r.9)).collect();
    expected_seen.sort();
    seen.sort();
    assert_eq!(
        seen, expected_seen,
        "tshark's times (unix_secs - sysUptime + field) are the records' own"
    );
    assert!(
        !sampling.is_empty() && sampling.iter().all(|s| s == "1"),
        "sampling interval 1: {sampling:?}"
    );
    assert!(names.iter().any(|n| n == A_IF), "interface names options: {names:?}");
    println!(
        "{} records in {} v9 packets, read exactly by nfdump and tshark",
        seen.len(),
        sequences.len()
    );
}

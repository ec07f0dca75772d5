//! What routine operations must not lose or leave stale (root needed): the
//! agent against real collectors in namespaces the test creates, through
//! restarts, reloads and collector outages.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{
    agent::Agent,
    collect::{ignored, records_of, totals_by_sport, Collect},
    collectors::{free_port, TempDir},
    flowctl_cli::Flowctl,
    load::ManyFlows,
    netns::{sysctl, Topology, A4, A6, A_IF, B4, B6},
    traffic,
};

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

fn status(fc: &Flowctl) -> Value {
    serde_json::from_str(&fc.ok(&["status", "-o", "json"])).unwrap()
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn over_tcp_the_statistics_record_is_refreshed_and_sent_at_shutdown() {
    let topo = Topology::new("tcpstats");
    for ns in [&topo.a, &topo.b] {
        sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1");
    }
    let fc = Flowctl::new("tcpstats");
    let dir = TempDir::new("tcpstats");
    let port = free_port();
    let collect = Collect::start(port, &dir, "collect.json");
    let url = format!("tcp://127.0.0.1:{port}");
    let args = [
        "--netns",
        &topo.a,
        "-i",
        A_IF,
        "--collector",
        &url,
        "--max-flows",
        "16",
        "--template-refresh",
        "1s",
        "--scan-interval",
        "200ms",
    ];
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));
    collect.wait_until(Duration::from_secs(10), "the first statistics record", |l| {
        l.iter().any(|r| r["options"] == true)
    });
    // Once connected, more flows than the cache holds: packets not recorded.
    ManyFlows {
        src_ns: &topo.a,
        src_ip: A4,
        ports: 21000..21100,
        dst_ns: &topo.b,
        dst: sa(B4, 55000),
        per_flow: 2,
        payload: 32,
        pause: Duration::from_millis(1),
    }
    .run();
    let s = status(&fc);
    let not_recorded = (
        s["not_recorded_packets"].as_u64().unwrap(),
        s["not_recorded_octets"].as_u64().unwrap(),
    );
    assert!(not_recorded.0 > 0, "{s}");
    collect.wait_until(Duration::from_secs(10), "the refreshed statistics record", |l| {
        ignored(l) == not_recorded
    });
    // More after the last refresh: the record sent at shutdown carries them.
    ManyFlows {
        src_ns: &topo.a,
        src_ip: A4,
        ports: 21100..21150,
        dst_ns: &topo.b,
        dst: sa(B4, 55000),
        per_flow: 1,
        payload: 32,
        pause: Duration::ZERO,
    }
    .run();
    let final_packets = status(&fc)["not_recorded_packets"].as_u64().unwrap();
    assert!(final_packets > not_recorded.0);
    assert!(agent.stop().success());
    let lines = collect.stop();
    assert_eq!(ignored(&lines).0, final_packets, "the statistics sent at shutdown");
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn a_reload_withdraws_a_redefined_template_before_sending_it_again() {
    let topo = Topology::new("withdraw");
    let fc = Flowctl::new("withdraw");
    let dir = TempDir::new("withdraw");
    let port = free_port();
    let collect = Collect::start(port, &dir, "collect.json");
    let config = dir.0.join("agent.yaml");
    let yaml = |fields: &str| {
        format!(
            "timers:\n  idleTimeout: 1s\n  scanInterval: 200ms\ncollectors:\n  - address: 127.0.0.1:{port}\n    transport: tcp\n\
             templates:\n  - id: 300\n    fields: [sourceIPv4Address, destinationIPv4Address, sourceTransportPort, {fields}]\n\
             \x20 - id: 301\n    fields: [sourceIPv6Address, sourceTransportPort]\n"
        )
    };
    std::fs::write(&config, yaml("octetDeltaCount")).unwrap();
    let args = ["--config", config.to_str().unwrap(), "--netns", &topo.a, "-i", A_IF];
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));
    traffic::udp(&topo.a, sa(A4, 47001), &topo.b, sa(B4, 47002), 2, 10);
    collect.wait_for_flow(47001);

    std::fs::write(&config, yaml("packetDeltaCount")).unwrap();
    agent.signal(libc::SIGHUP);
    agent.wait_for_log("configuration reloaded", Duration::from_secs(5));
    traffic::udp(&topo.a, sa(A4, 47003), &topo.b, sa(B4, 47004), 3, 10);
    collect.wait_for_flow(47003);
    assert!(agent.stop().success());
    let lines = collect.stop();

    let withdrawal = lines.iter().position(|l| l["withdrawn"] == serde_json::json!([300]));
    let Some(withdrawal) = withdrawal else {
        panic!("no withdrawal of template 300: {lines:#?}")
    };
    let before = records_of(&lines, 47001);
    let after = records_of(&lines, 47003);
    assert_eq!(before[0]["fields"]["octetDeltaCount"], 2 * (20 + 8 + 10));
    assert_eq!(
        after[0]["fields"]["packetDeltaCount"], 3,
        "decoded with the new definition"
    );
    let at = |r: &Value| lines.iter().position(|l| l == r).unwrap();
    assert!(at(before[0]) < withdrawal && withdrawal < at(after[0]));
}

/// 13 UDP flows with distinct counts, IPv4 and IPv6: (source port -> packets, octets).
fn thirteen_flows(topo: &Topology, base: u16) -> BTreeMap<u16, (u64, u64)> {
    let mut expected = BTreeMap::new();
    for i in 0..13u16 {
        let (src, dst, l3) = if i % 3 == 2 { (A6, B6, 40) } else { (A4, B4, 20) };
        let (packets, payload) = (1 + i as usize % 5, 40 + 7 * i as usize);
        traffic::udp(&topo.a, sa(src, base + i), &topo.b, sa(dst, 5300), packets, payload);
        expected.insert(base + i, (packets as u64, (packets * (l3 + 8 + payload)) as u64));
    }
    expected
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn a_restart_while_the_collector_is_away_loses_nothing() {
    let topo = Topology::new("away");
    let fc = Flowctl::new("away");
    let dir = TempDir::new("away");
    let port = free_port(); // nothing listens there yet
    let url = format!("udp://127.0.0.1:{port}");
    let args = [
        "--netns",
        &topo.a,
        "-i",
        A_IF,
        "--collector",
        &url,
        "--idle-timeout",
        "1s",
        "--scan-interval",
        "200ms",
    ];
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("first.log"));
    let expected = thirteen_flows(&topo, 48000);
    std::thread::sleep(Duration::from_millis(1500)); // the flows end and cannot be sent
                                                     // systemctl restart: SIGTERM, and an impatient second one.
    agent.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    let stopping = Instant::now();
    agent.signal(libc::SIGTERM);
    let log = dir.0.join("first.log");
    assert!(agent.wait().success());
    assert!(
        stopping.elapsed() < Duration::from_secs(4),
        "the second signal cut the wait short"
    );
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.contains("second stop signal"), "{log}");
    assert!(
        log.contains("for the next start"),
        "the warning says what was kept: {log}"
    );
    let spooled: Vec<_> = std::fs::read_dir(dir.0.join("spool")).unwrap().flatten().collect();
    assert_eq!(spooled.len(), 1, "one spool file for the one collector");

    let collect = Collect::start(port, &dir, "collect.json");
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("second.log"));
    collect.wait_until(Duration::from_secs(15), "the 13 spooled flows", |l| {
        let got = totals_by_sport(l);
        expected.iter().all(|(p, t)| got.get(p) == Some(t))
    });
    assert!(agent.stop().success());
    let got = totals_by_sport(&collect.stop());
    for (p, t) in &expected {
        assert_eq!(got.get(p), Some(t), "flow {p} exactly once");
    }
    assert!(
        std::fs::read_dir(dir.0.join("spool")).unwrap().next().is_none(),
        "the spool file goes once its records are sent"
    );
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn past_the_spool_bound_records_are_dropped_counted_and_reported() {
    let topo = Topology::new("bound");
    for ns in [&topo.a, &topo.b] {
        sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1");
    }
    let fc = Flowctl::new("bound");
    let dir = TempDir::new("bound");
    let port = free_port();
    let config = dir.file(
        "agent.yaml",
        &format!(
            "timers:\n  idleTimeout: 1s\n  scanInterval: 200ms\ncollectors:\n  - address: 127.0.0.1:{port}\n\
             spool:\n  maxBytes: 4096\n"
        ),
    );
    let args = ["--config", config.to_str().unwrap(), "--netns", &topo.a, "-i", A_IF];
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("first.log"));
    let flows = 300u16;
    ManyFlows {
        src_ns: &topo.a,
        src_ip: A4,
        ports: 22000..22000 + flows,
        dst_ns: &topo.b,
        dst: sa(B4, 55100),
        per_flow: 1,
        payload: 20,
        pause: Duration::ZERO,
    }
    .run();
    std::thread::sleep(Duration::from_millis(1500));
    agent.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    agent.signal(libc::SIGTERM);
    let first = dir.0.join("first.log");
    assert!(agent.wait().success());
    let log = std::fs::read_to_string(first).unwrap();
    let dropped: u64 = log
        .split(", dropped ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the log says how many were dropped: {log}"));
    assert!(dropped > 0 && dropped < u64::from(flows), "{log}");

    let collect = Collect::start(port, &dir, "collect.json");
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("second.log"));
    let not_sent = |l: &[Value]| {
        l.iter()
            .filter(|r| r["options"] == true)
            .filter_map(|r| r["fields"]["notSentFlowTotalCount"].as_u64())
            .max()
    };
    collect.wait_until(Duration::from_secs(15), "the drop count in the statistics", |l| {
        not_sent(l) == Some(dropped)
    });
    assert!(agent.stop().success());
    let lines = collect.stop();
    let delivered = totals_by_sport(&lines)
        .keys()
        .filter(|p| (22000..22000 + flows).contains(*p))
        .count() as u64;
    assert_eq!(
        delivered + dropped,
        u64::from(flows),
        "every flow delivered or counted as dropped"
    );
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn the_agent_follows_its_cache_when_it_is_purged_and_created_again() {
    let topo = Topology::new("purge");
    let fc = Flowctl::new("purge");
    let dir = TempDir::new("purge");
    let port = free_port();
    let collect = Collect::start(port, &dir, "collect.json");
    let url = format!("udp://127.0.0.1:{port}");
    let args = [
        "--netns",
        &topo.a,
        "-i",
        A_IF,
        "--collector",
        &url,
        "--idle-timeout",
        "3s",
        "--scan-interval",
        "200ms",
    ];
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));
    // Counted in the first cache, not yet ended when it is purged.
    let before = thirteen_flows(&topo, 49000);
    // The documented way to resize: purge under the running agent; its
    // interface watch attaches again and creates a new cache.
    fc.ok(&["detach", "--all", "--purge"]);
    agent.wait_for_log("is back: metering it again", Duration::from_secs(10));
    let after = thirteen_flows(&topo, 49100);
    assert!(status(&fc)["flows"].as_u64().unwrap() >= 13, "the new cache fills");
    let mut expected = before;
    expected.extend(after);
    collect.wait_until(Duration::from_secs(15), "the flows of both caches", |l| {
        let got = totals_by_sport(l);
        expected.iter().all(|(p, t)| got.get(p) == Some(t))
    });
    assert!(
        agent.log().contains("the pinned flow cache was replaced"),
        "{}",
        agent.log()
    );
    assert!(agent.stop().success());
    let got = totals_by_sport(&collect.stop());
    for (p, t) in &expected {
        assert_eq!(got.get(p), Some(t), "flow {p} exactly once");
    }
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn flush_through_the_agent_exports_what_it_ends_and_status_and_templates_answer() {
    let topo = Topology::new("ctlflush");
    let fc = Flowctl::new("ctlflush");
    let dir = TempDir::new("ctlflush");
    let port = free_port();
    let collect = Collect::start(port, &dir, "collect.json");
    let url = format!("udp://127.0.0.1:{port}");
    let args = [
        "--netns",
        &topo.a,
        "-i",
        A_IF,
        "--collector",
        &url,
        "--idle-timeout",
        "1h",
        "--active-timeout",
        "1h",
        "--scan-interval",
        "200ms",
    ];
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));
    let counted = thirteen_flows(&topo, 49300);

    // One flow by selector, then the rest: each exported once, reason 4.
    let out = fc.ok(&["flush", "-p", "udp", "-S", "49300"]);
    assert_eq!(
        out.trim(),
        "flushed 1 flow(s): the agent exported them (flowEndReason 4)"
    );
    collect.wait_for_flow(49300);
    let flushed_at = std::time::SystemTime::now();
    let out = fc.ok(&["flush", "--all"]);
    assert!(out.contains("the agent exported them"), "{out}");
    collect.wait_until(Duration::from_secs(10), "every flushed flow", |l| {
        let got = totals_by_sport(l);
        counted.iter().all(|(p, t)| got.get(p) == Some(t))
    });
    let lines = collect.lines();
    for p in counted.keys() {
        let records = records_of(&lines, *p);
        assert_eq!(records.len(), 1, "flow {p}");
        assert_eq!(records[0]["fields"]["flowEndReason"], 4, "flow {p}");
    }
    // Nothing the flush could end is left. The kernel may have sent a
    // packet since, an IPv6 MLD report (a few in the first seconds of a
    // link, at random times): that is a new flow, started after the flush
    // (flow times may be up to one jiffy early).
    let left: Vec<Value> = serde_json::from_str(&fc.ok(&["dump", "-o", "json"])).unwrap();
    for flow in &left {
        let start = humantime::parse_rfc3339(flow["start"].as_str().unwrap()).unwrap();
        assert!(
            flow["proto"] == 58 && start + Duration::from_millis(20) >= flushed_at,
            "a flow left after the flush: {flow}"
        );
    }

    // agent status: the collector, its queue and the last pass.
    let s: Value = serde_json::from_str(&fc.ok(&["agent", "status", "-o", "json"])).unwrap();
    let collector = &s["collectors"][0];
    assert_eq!(collector["endpoint"], url.as_str(), "{s}");
    assert_eq!(collector["queued"], 0, "{s}");
    assert!(collector["records"].as_u64().unwrap() >= 13, "{s}");
    assert!(s["last_pass"]["seconds_ago"].as_f64().unwrap() < 10.0, "{s}");
    let table = fc.ok(&["agent", "status"]);
    assert!(table.contains(&url) && table.contains("last aging pass"), "{table}");

    // resend-templates: one more template message to the collector.
    let before = collector["template_messages"].as_u64().unwrap();
    fc.ok(&["agent", "resend-templates"]);
    let after: Value = serde_json::from_str(&fc.ok(&["agent", "status", "-o", "json"])).unwrap();
    assert!(
        after["collectors"][0]["template_messages"].as_u64().unwrap() > before,
        "{after}"
    );
    assert!(agent.stop().success());
    drop(collect);
}

//! Faults, end to end (root needed): real eBPF on veth pairs in namespaces
//! the test creates, the agent exporting to `flowctl collect` on loopback.
//!
//! - a collector down for 60 s (UDP port closed, TCP refused), then back;
//! - the agent killed with SIGKILL while traffic flows, then started again;
//! - a full flow cache (tiny --max-flows, many flows);
//! - a metered interface removed, renamed, and created again.
//!
//! See docs/operations.md, "Failure behaviour", for what each one promises.
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
    capture::{self, Capture},
    collect::{ignored, records_of, totals_by_sport, Collect},
    collectors::{free_port, TempDir},
    flowctl_cli::Flowctl,
    load::{ManyFlows, Steady},
    netns::{ip, sysctl, wait_until_up, Topology, A4, A_IF, B4},
    traffic,
};

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// Agent arguments metering `interfaces` of namespace a (both directions),
/// scanning every 200 ms.
fn agent_args<'a>(topo: &'a Topology, interfaces: &[&'a str], collector: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["--netns", &topo.a, "--direction", "both", "--scan-interval", "200ms"];
    for i in interfaces {
        a.extend(["-i", *i]);
    }
    a.extend(["--collector", collector]);
    a.extend_from_slice(extra);
    a
}

/// Packets of the flow records from source port `sport`.
fn packets_of(lines: &[Value], sport: u16) -> u64 {
    records_of(lines, sport)
        .iter()
        .map(|r| r["fields"]["packetDeltaCount"].as_u64().unwrap())
        .sum()
}

fn has_flow(sport: u16) -> impl Fn(&[Value]) -> bool {
    move |lines| !records_of(lines, sport).is_empty()
}

/// The collector down for 60 s while flows are counted and end, then back:
/// the agent keeps running, logs the errors, sends templates again, and
/// every flow counted meanwhile reaches the collector exactly once.
fn collector_down_for_a_minute(transport: &str, tag: &str, base: u16) {
    let topo = Topology::new(tag);
    let fc = Flowctl::new(tag);
    let dir = TempDir::new(tag);
    let port = free_port();
    let url = format!("{transport}://127.0.0.1:{port}");
    let collect = Collect::start(port, &dir, "before.json");
    let args = agent_args(&topo, &[A_IF], &url, &["--idle-timeout", "1s"]);
    let mut agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));
    let sink = sa(B4, base + 100);

    traffic::udp(&topo.a, sa(A4, base), &topo.b, sink, 3, 100);
    collect.wait_until(Duration::from_secs(20), "the first flow", has_flow(base));
    let before = collect.stop();
    assert_eq!(packets_of(&before, base), 3);

    // Down: UDP port closed (ICMP port unreachable), TCP refused (RST).
    let down = Instant::now();
    let flows: Vec<(u16, u64)> = (1..=3).map(|i| (base + i, 4 + i as u64)).collect();
    for (i, &(sport, packets)) in flows.iter().enumerate() {
        let at = down + Duration::from_secs(20 * i as u64);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        traffic::udp(&topo.a, sa(A4, sport), &topo.b, sink, packets as usize, 100);
    }
    std::thread::sleep((down + Duration::from_secs(60)).saturating_duration_since(Instant::now()));
    assert!(agent.is_running(), "the agent keeps running:\n{}", agent.log());
    let log = agent.log();
    let errors = log.matches("send failed").count() + log.matches("cannot connect").count();
    assert!(errors >= 2, "the agent logs the export errors:\n{log}");

    let collect = Collect::start(port, &dir, "after.json");
    // TCP reconnects with a backoff of up to 30 s.
    collect.wait_until(Duration::from_secs(60), "the flows counted while down", |l| {
        flows.iter().all(|&(sport, _)| has_flow(sport)(l))
    });
    traffic::udp(&topo.a, sa(A4, base + 9), &topo.b, sink, 2, 100);
    collect.wait_until(Duration::from_secs(20), "a flow after the outage", has_flow(base + 9));
    assert!(agent.stop().success(), "agent exits 0 on SIGTERM");
    let errors_at_collector = collect.errors();
    let after = collect.stop();

    for &(sport, packets) in &flows {
        assert_eq!(
            (packets_of(&after, sport), records_of(&after, sport).len()),
            (packets, 1),
            "flow from port {sport}: every packet, once ({transport})"
        );
    }
    assert_eq!(packets_of(&after, base + 9), 2);
    assert!(
        !errors_at_collector.contains("template"),
        "templates came before data at the restarted collector: {errors_at_collector}"
    );
    assert!(
        after.iter().any(|l| l["options"] == true),
        "options records re-sent with the templates"
    );
    println!(
        "{transport}: collector down 60 s, {errors} export errors logged, back after {:?}",
        down.elapsed()
    );
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn udp_collector_down_for_a_minute_then_back() {
    collector_down_for_a_minute("udp", "cdu", 51000);
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn tcp_collector_down_for_a_minute_then_back() {
    collector_down_for_a_minute("tcp", "cdt", 52000);
}

/// Packets per source port of the flows in `dump` (the pinned cache now).
fn cached_packets(fc: &Flowctl, ports: &[u16]) -> BTreeMap<u16, u64> {
    let mut out = BTreeMap::new();
    for f in fc.dump() {
        let sport = f["sport"].as_u64().unwrap() as u16;
        if ports.contains(&sport) {
            *out.entry(sport).or_default() += f["packets"].as_u64().unwrap();
        }
    }
    out
}

/// SIGKILL mid-run, then a new agent: the datapath counts meanwhile, and the
/// collector's per-flow totals equal the wire: nothing lost, nothing twice
/// (every record comes from counters taken out of the cache, so a new agent
/// cannot report what the killed one exported).
#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn agent_killed_and_restarted_loses_nothing_and_counts_nothing_twice() {
    let topo = Topology::new("kil");
    let fc = Flowctl::new("kil");
    let dir = TempDir::new("kil");
    let port = free_port();
    let url = format!("udp://127.0.0.1:{port}");
    let collect = Collect::start(port, &dir, "collect.json");
    let va = Topology::ifindex(&topo.a, A_IF);
    let cap = Capture::start(&topo.a, va);
    let extra = ["--active-timeout", "1s", "--idle-timeout", "2s"];
    let args = agent_args(&topo, &[A_IF], &url, &extra);
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent1.log"));

    let ports: Vec<u16> = (53001..=53004).collect();
    let load = Steady::start(
        &topo.a,
        A4,
        ports.clone(),
        &topo.b,
        sa(B4, 53100),
        100,
        Duration::from_millis(10),
    );
    // Let active-timeout records go out, then kill without warning.
    collect.wait_until(Duration::from_secs(10), "active-timeout records", |l| {
        ports.iter().all(|&p| records_of(l, p).len() >= 2)
    });
    agent.signal(libc::SIGKILL);
    drop(agent);
    let killed = collect.lines().len();
    let first = cached_packets(&fc, &ports);
    std::thread::sleep(Duration::from_millis(1500));
    let second = cached_packets(&fc, &ports);
    for p in &ports {
        assert!(
            second.get(p) > first.get(p),
            "the datapath counts while no agent runs: {first:?} then {second:?}"
        );
    }
    assert_eq!(collect.lines().len(), killed, "nothing exported while no agent runs");

    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent2.log"));
    std::thread::sleep(Duration::from_millis(2500));
    let sent = load.stop();
    std::thread::sleep(Duration::from_millis(2500)); // idle timeout + a scan
    assert!(agent.stop().success());
    let truth = capture::flows(&cap.stop());
    let lines = collect.stop();
    let got = totals_by_sport(&lines);

    for (i, &p) in ports.iter().enumerate() {
        let wire: (u64, u64) = truth
            .iter()
            .filter(|(k, _)| k.sport == p && k.direction == "egress")
            .map(|(_, c)| (c.packets, c.bytes))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert_eq!(wire.0, sent[i], "the capture saw every datagram of port {p}");
        let exported = got.get(&p).copied().unwrap_or_default();
        let (lost, twice) = (wire.0.saturating_sub(exported.0), exported.0.saturating_sub(wire.0));
        println!(
            "port {p}: wire {wire:?}, collector {exported:?} in {} records: lost {lost}, counted twice {twice}",
            records_of(&lines, p).len()
        );
        assert_eq!(
            exported, wire,
            "port {p}: collector totals equal the wire (lost {lost}, twice {twice} packets)"
        );
    }
}

/// A 64-flow cache and 1000 flows: the datapath drops no packet, what it
/// could not record is counted and exported (options record), and the agent
/// evicts with flowEndReason 5.
#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn a_full_cache_drops_nothing_and_exports_what_it_could_not_record() {
    let topo = Topology::new("ful");
    // IPv4 only, so that every IP packet on the link is the test's.
    for ns in [&topo.a, &topo.b] {
        sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1");
    }
    let fc = Flowctl::new("ful");
    let dir = TempDir::new("ful");
    let port = free_port();
    let url = format!("udp://127.0.0.1:{port}");
    let collect = Collect::start(port, &dir, "collect.json");
    let va = Topology::ifindex(&topo.a, A_IF);
    let cap = Capture::start(&topo.a, va);
    let extra = ["--max-flows", "64", "--idle-timeout", "1s", "--template-refresh", "1s"];
    let args = agent_args(&topo, &[A_IF], &url, &extra);
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));

    let (flows, per_flow, payload) = (1000u16, 3usize, 64usize);
    let received = ManyFlows {
        src_ns: &topo.a,
        src_ip: A4,
        ports: 20000..20000 + flows,
        dst_ns: &topo.b,
        dst: sa(B4, 54000),
        per_flow,
        payload,
        pause: Duration::from_millis(2),
    }
    .run();
    let sent = flows as u64 * per_flow as u64;
    assert_eq!(
        received, sent,
        "the receiver got every packet: the datapath dropped none"
    );

    let status: Value = serde_json::from_str(&fc.ok(&["status", "-o", "json"])).unwrap();
    let not_recorded = (
        status["not_recorded_packets"].as_u64().unwrap(),
        status["not_recorded_octets"].as_u64().unwrap(),
    );
    assert!(not_recorded.0 > 0, "a 64-flow cache cannot record 1000 flows: {status}");
    collect.wait_until(Duration::from_secs(10), "the final not-recorded counters", |l| {
        ignored(l) == not_recorded
    });
    assert!(agent.stop().success());
    let truth = capture::flows(&cap.stop());
    let lines = collect.stop();

    let ours = |sport: u16| (20000..20000 + flows).contains(&sport);
    let wire = truth
        .iter()
        .filter(|(k, _)| k.direction == "egress" && ours(k.sport))
        .fold((0, 0), |a, (_, c)| (a.0 + c.packets, a.1 + c.bytes));
    assert_eq!(wire, (sent, sent * (20 + 8 + payload as u64)));
    let recorded = totals_by_sport(&lines)
        .iter()
        .filter(|(p, _)| ours(**p))
        .fold((0, 0), |a, (_, t)| (a.0 + t.0, a.1 + t.1));
    let reasons = lines
        .iter()
        .filter(|l| l["options"] == false)
        .fold(BTreeMap::<u64, u64>::new(), |mut m, l| {
            *m.entry(l["fields"]["flowEndReason"].as_u64().unwrap()).or_default() += 1;
            m
        });
    println!(
        "sent {sent} packets in {flows} flows; recorded {recorded:?}, not recorded {not_recorded:?}; \
         records per flowEndReason {reasons:?}"
    );
    assert_eq!(
        (recorded.0 + not_recorded.0, recorded.1 + not_recorded.1),
        wire,
        "every packet and octet is either in a record or in the not-recorded counters"
    );
    assert!(
        reasons.get(&5).copied().unwrap_or(0) > 0,
        "evictions for lack of resources: {reasons:?}"
    );
}

/// Adds veth `vx` (namespace a, 10.202.0.1) <-> `vy` (namespace b, .2) and waits until both are up.
fn add_second_pair(topo: &Topology) {
    ip(&[
        "link", "add", "vx", "netns", &topo.a, "type", "veth", "peer", "name", "vy", "netns", &topo.b,
    ]);
    for (ns, dev, addr) in [(&topo.a, "vx", "10.202.0.1/24"), (&topo.b, "vy", "10.202.0.2/24")] {
        ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
        ip(&["-n", ns, "link", "set", dev, "up"]);
    }
    wait_until_up(&topo.a, "vx");
    wait_until_up(&topo.b, "vy");
}

/// One interface deleted with a flow in the cache, another renamed, the
/// first created again: the agent logs each change once, exports what it had,
/// keeps metering the renamed one and attaches to the new one.
#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn interface_removed_renamed_and_back() {
    let topo = Topology::new("ifc");
    add_second_pair(&topo);
    let fc = Flowctl::new("ifc");
    let dir = TempDir::new("ifc");
    let port = free_port();
    let url = format!("udp://127.0.0.1:{port}");
    let collect = Collect::start(port, &dir, "collect.json");
    let args = agent_args(&topo, &[A_IF, "vx"], &url, &["--idle-timeout", "3s"]);
    let mut agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));
    let (va, vx) = (Topology::ifindex(&topo.a, A_IF), Topology::ifindex(&topo.a, "vx"));

    // A flow on vx, still in the cache when vx goes away.
    traffic::udp(
        &topo.a,
        sa("10.202.0.1", 55001),
        &topo.b,
        sa("10.202.0.2", 55100),
        5,
        100,
    );
    assert!(fc.dump().iter().any(|f| f["sport"] == 55001), "flow cached");
    ip(&["-n", &topo.a, "link", "del", "vx"]);
    agent.wait_for_log(
        &format!("vx (ifindex {vx}) removed: its flows are exported as they age out"),
        Duration::from_secs(10),
    );
    collect.wait_until(Duration::from_secs(10), "the removed interface's flow", has_flow(55001));
    // The other interface is still metered and exported.
    traffic::udp(&topo.a, sa(A4, 55002), &topo.b, sa(B4, 55100), 4, 100);
    collect.wait_until(Duration::from_secs(10), "a flow on va", has_flow(55002));

    // Renamed: the same tcx link keeps counting.
    ip(&["-n", &topo.a, "link", "set", A_IF, "down"]);
    ip(&["-n", &topo.a, "link", "set", A_IF, "name", "wan0"]);
    ip(&["-n", &topo.a, "link", "set", "wan0", "up"]);
    wait_until_up(&topo.a, "wan0");
    agent.wait_for_log(&format!("ifindex {va} renamed {A_IF} -> wan0"), Duration::from_secs(10));
    traffic::udp(&topo.a, sa(A4, 55003), &topo.b, sa(B4, 55100), 6, 100);
    collect.wait_until(
        Duration::from_secs(10),
        "a flow on the renamed interface",
        has_flow(55003),
    );

    // vx again (a new ifindex): attached again.
    add_second_pair(&topo);
    let vx2 = Topology::ifindex(&topo.a, "vx");
    agent.wait_for_log(
        &format!("vx (ifindex {vx2}) is back: metering it again"),
        Duration::from_secs(10),
    );
    traffic::udp(
        &topo.a,
        sa("10.202.0.1", 55004),
        &topo.b,
        sa("10.202.0.2", 55100),
        7,
        100,
    );
    collect.wait_until(Duration::from_secs(10), "a flow on the new vx", has_flow(55004));

    assert!(agent.is_running());
    let log = agent.log();
    assert!(agent.stop().success(), "{log}");
    let lines = collect.stop();
    for (sport, packets, ifindex) in [(55001, 5, vx), (55002, 4, va), (55003, 6, va), (55004, 7, vx2)] {
        assert_eq!(packets_of(&lines, sport), packets, "flow from port {sport}");
        for r in records_of(&lines, sport) {
            assert_eq!(r["fields"]["egressInterface"], ifindex, "{r}");
        }
    }
    assert_eq!(log.matches("removed: its flows").count(), 1, "logged once:\n{log}");
    assert_eq!(log.matches(" renamed ").count(), 1, "logged once:\n{log}");
}

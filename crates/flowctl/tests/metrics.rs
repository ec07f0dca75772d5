//! The agent's Prometheus endpoint end to end (root needed): real eBPF on a
//! veth pair in namespaces the test creates, traffic inside them, and
//! /metrics scraped over loopback with a plain HTTP GET. The values are
//! checked against what the collector received and what was sent.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    process::Command,
    time::{Duration, Instant},
};

use support::{
    agent::Agent,
    collect::{flow_records, Collect},
    collectors::{free_port, TempDir},
    flowctl_cli::Flowctl,
    netns::{in_netns, Topology, A4, A_IF, B4},
    traffic,
};

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// GET `path`; returns the status line and the body.
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The samples of one scrape: `name{labels}` as rendered -> value.
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    fn take(addr: SocketAddr) -> Self {
        let (status, body) = get(addr, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
        assert!(body.ends_with("# EOF\n"), "a complete exposition");
        let samples = body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap();
                (series.to_string(), value.parse().unwrap_or_else(|e| panic!("{l}: {e}")))
            })
            .collect();
        Self(samples)
    }

    /// A sample's value; 0 when absent.
    fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }
}

/// Scrapes until `done` holds (20 s at most, then panics with the last scrape).
fn scrape_until(addr: SocketAddr, what: &str, mut done: impl FnMut(&Scrape) -> bool) -> Scrape {
    let start = Instant::now();
    loop {
        let s = Scrape::take(addr);
        if done(&s) {
            return s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            panic!("never saw {what}; last scrape: {:#?}", s.0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn metrics_follow_flows_collectors_and_a_full_cache() {
    let topo = Topology::new("met");
    let fc = Flowctl::new("met");
    let dir = TempDir::new("met");
    let (up_port, down_port, metrics_port) = (free_port(), free_port(), free_port());
    let collect = Collect::start(up_port, &dir, "collect.json");
    let metrics_arg = format!("127.0.0.1:{metrics_port}");
    let (up, down) = (
        format!("udp://127.0.0.1:{up_port}"),
        format!("tcp://127.0.0.1:{down_port}"), // nothing listens: refused
    );
    let args = [
        "--netns",
        &topo.a,
        "-i",
        A_IF,
        "--direction",
        "both",
        "--scan-interval",
        "200ms",
        "--idle-timeout",
        "2s",
        "--max-flows",
        "32",
        "--collector",
        &up,
        "--collector",
        &down,
        "--metrics-address",
        &metrics_arg,
    ];
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));
    let addr = agent.metrics_address();
    assert_eq!(addr, metrics_arg.parse().unwrap());
    let up_labels = format!("{{collector=\"127.0.0.1:{up_port}\",transport=\"udp\"}}");
    let down_labels = format!("{{collector=\"127.0.0.1:{down_port}\",transport=\"tcp\"}}");
    let series = |name: &str, labels: &str| format!("{name}{labels}");

    assert_eq!(get(addr, "/").0, "HTTP/1.1 404 Not Found");
    let first = scrape_until(addr, "a send error towards the refused collector", |s| {
        s.get(&series("flowctl_export_send_errors_total", &down_labels)) >= 1.0
    });
    let first_errors = first.get(&series("flowctl_export_send_errors_total", &down_labels));
    assert_eq!(first.get(&series("flowctl_export_up", &down_labels)), 0.0);
    assert_eq!(first.get(&series("flowctl_export_up", &up_labels)), 1.0);
    assert_eq!(first.get(&series("flowctl_export_send_errors_total", &up_labels)), 0.0);
    let build = format!(
        "flowctl_build_info{{version=\"{}\",layout_version=\"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        flowctl_model::LAYOUT_VERSION
    );
    assert_eq!(first.get(&build), 1.0, "{:#?}", first.0);

    // Live flows while they are in the cache.
    let sink = in_netns(&topo.b, || UdpSocket::bind(sa(B4, 47000)).unwrap())
        .join()
        .unwrap();
    traffic::udp(&topo.a, sa(A4, 47001), &topo.b, sa(B4, 47002), 3, 100);
    traffic::tcp_session(&topo.a, sa(A4, 47003), &topo.b, sa(B4, 47004), 5000);
    let live = scrape_until(addr, "live flows", |s| s.get("flowctl_cache_flows") > 0.0);
    assert_eq!(live.get("flowctl_cache_capacity_flows"), 32.0);
    assert_eq!(
        live.get("flowctl_cache_fill_ratio"),
        live.get("flowctl_cache_flows") / 32.0
    );

    // UDP ends idle, TCP (FIN both ways) as end of flow; the collector gets
    // every record the metrics count, and the refused collector holds them
    // all in its queue.
    let quiet = scrape_until(addr, "idle and TCP ends, matching record counts", |s| {
        let sent = s.get(&series("flowctl_export_records_total", &up_labels));
        s.get("flowctl_flows_ended_total{reason=\"idle\"}") >= 1.0
            && s.get("flowctl_flows_ended_total{reason=\"end\"}") >= 2.0
            && sent > 0.0
            && sent == flow_records(&collect.lines()).len() as f64
            && sent == s.get(&series("flowctl_export_queue_records", &down_labels))
    });
    assert!(quiet.get(&series("flowctl_export_messages_total", &up_labels)) >= 2.0);
    assert!(quiet.get(&series("flowctl_export_bytes_total", &up_labels)) > 0.0);
    assert!(quiet.get(&series("flowctl_export_template_messages_total", &up_labels)) >= 1.0);
    assert_eq!(quiet.get(&series("flowctl_export_records_total", &down_labels)), 0.0);
    assert!(quiet.get("flowctl_flow_records_total{reason=\"idle\"}") >= 1.0);
    assert!(quiet.get("flowctl_flow_records_total{reason=\"end\"}") >= 2.0);
    assert_eq!(quiet.get("flowctl_datapath_not_recorded_packets_total"), 0.0);

    // 100 one-packet flows into a 32-flow cache: what does not fit is
    // counted, and aging makes room by ending flows (reason 5).
    const BURST: u16 = 100;
    in_netns(&topo.a, || {
        for i in 0..BURST {
            let s = UdpSocket::bind(sa(A4, 48000 + i)).unwrap();
            s.send_to(&[1u8; 20], sa(B4, 47000)).unwrap();
        }
    })
    .join()
    .unwrap();
    let passes = Scrape::take(addr).get("flowctl_aging_pass_duration_seconds_count");
    let full = scrape_until(addr, "a pass after the burst", |s| {
        s.get("flowctl_aging_pass_duration_seconds_count") >= passes + 2.0
    });
    let not_recorded = full.get("flowctl_datapath_not_recorded_packets_total");
    assert!(not_recorded > 0.0, "{:#?}", full.0);
    // L3 octets: at least an IPv4 header per packet.
    assert!(full.get("flowctl_datapath_not_recorded_bytes_total") >= not_recorded * 20.0);
    scrape_until(addr, "lack-of-resources ends", |s| {
        s.get("flowctl_flows_ended_total{reason=\"lack_of_resources\"}") > 0.0
    });
    let last = scrape_until(addr, "another connect attempt", |s| {
        s.get(&series("flowctl_export_send_errors_total", &down_labels)) > first_errors
    });
    assert!(last.get("flowctl_aging_pass_duration_seconds_sum") > 0.0);
    assert_eq!(last.get("flowctl_aging_pass_failures_total"), 0.0);

    assert!(agent.stop().success());
    drop(sink);
    // Every burst packet was either exported in a record or counted as not recorded.
    let exported: u64 = flow_records(&collect.lines())
        .iter()
        .filter(|r| r["fields"]["destinationTransportPort"] == 47000)
        .map(|r| r["fields"]["packetDeltaCount"].as_u64().unwrap())
        .sum();
    assert!(exported < BURST as u64, "the cache could not hold the burst");
    assert!(
        exported as f64 + not_recorded >= BURST as f64,
        "{exported} exported + {not_recorded} not recorded < {BURST} sent"
    );
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn a_busy_metrics_port_stops_the_agent_before_it_attaches() {
    let topo = Topology::new("mbusy");
    let fc = Flowctl::new("mbusy");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args([
            "agent",
            "--netns",
            &topo.a,
            "-i",
            A_IF,
            "--collector",
            "udp://127.0.0.1:9",
        ])
        .args(["--metrics-address", &addr])
        .env("FLOWCTL_PIN_DIR", &fc.pin_dir)
        .env(
            "FLOWCTL_CONTROL_SOCKET",
            support::flowctl_cli::control_socket(&fc.pin_dir),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // One line, "flowctl ...: " then the reason.
    let line = stderr.trim_end();
    let reason = format!(": metrics: cannot listen on {addr}: Address already in use (os error 98)");
    assert!(
        line.starts_with("flowctl") && line.ends_with(&reason) && !line.contains('\n'),
        "{stderr}"
    );
    assert!(!fc.pin_dir.exists(), "nothing attached or pinned");

    // --no-metrics: the same agent starts and nothing listens.
    let dir = TempDir::new("mbusy");
    let args = [
        "--netns",
        &topo.a,
        "-i",
        A_IF,
        "--collector",
        "udp://127.0.0.1:9",
        "--no-metrics",
    ];
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));
    assert!(!agent.log().contains("metrics on"), "{}", agent.log());
    assert!(agent.stop().success());
    drop(busy);
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn idle_metrics_connections_do_not_starve_the_agent_of_descriptors() {
    let topo = Topology::new("metfd");
    let fc = Flowctl::new("metfd");
    let dir = TempDir::new("metfd");
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
        "--scan-interval",
        "200ms",
    ];
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));
    // systemd's default soft limit.
    agent.limit_fds(1024);
    let addr = agent.metrics_address();
    let before = agent.open_fds();

    // 1100 clients connect and send nothing (in parallel: connects past the
    // listen backlog wait for their SYN to be retried, and give up soon).
    let workers: Vec<_> = (0..50)
        .map(|_| {
            std::thread::spawn(move || {
                (0..22)
                    .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let idle: Vec<TcpStream> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    std::thread::sleep(Duration::from_millis(500));
    let during = agent.open_fds();
    eprintln!(
        "{} idle connections; agent fds: {before} before, {during} during",
        idle.len()
    );
    // Those past the agent's cap wait in its listen backlog, or cannot
    // connect at all: either way they hold none of its descriptors.
    assert!(idle.len() >= 100, "only {} clients connected", idle.len());
    assert!(
        during < before + 40,
        "agent fds: {before} before, {during} with idle clients"
    );

    // The agent still does everything that needs a new descriptor.
    traffic::udp(&topo.a, sa(A4, 49500), &topo.b, sa(B4, 5300), 3, 50);
    let out = fc.ok(&["flush", "--all"]);
    assert!(out.contains("the agent exported them"), "{out}");
    collect.wait_for_flow(49500);
    let status = fc.ok(&["agent", "status"]);
    assert!(status.contains(&url), "{status}");

    // Once the idle clients go, the endpoint answers again.
    drop(idle);
    let scraped = scrape_until(addr, "a scrape after the idle clients left", |_| true);
    assert!(scraped.get("flowctl_build_info") >= 0.0);
    assert!(
        agent.log().lines().all(|l| !l.contains("accept failed")),
        "{}",
        agent.log()
    );
    agent.stop();
}

//! The rendered exposition (names, HELP/TYPE lines, values), the
//! documentation table, and the HTTP endpoint over a real socket.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    sync::{atomic::Ordering::Relaxed, Arc},
    time::Duration,
};

use flowctl_export::collector::CollectorCounters;
use flowctl_model::{DatapathCounters, EndReason, ReasonCounts};

use super::{CollectorSource, Metrics, MetricsServer};
use flowctl_aging::ScanOutcome;

/// Counts per reason: `idle` idle timeouts and `lack` for lack of resources.
fn counts(idle: u64, lack: u64) -> ReasonCounts {
    let mut c = ReasonCounts::default();
    c.add(EndReason::IdleTimeout, idle);
    c.add(EndReason::LackOfResources, lack);
    c
}

fn outcome() -> ScanOutcome {
    ScanOutcome {
        records_made: counts(2, 1),
        flows: 3,
        capacity: 8,
        counters: DatapathCounters {
            non_ip_packets: 2,
            non_ip_octets: 120,
            malformed_packets: 1,
            malformed_octets: 60,
            not_recorded_packets: 5,
            not_recorded_octets: 600,
        },
        ended: counts(2, 1),
        duration: Duration::from_millis(3),
    }
}

fn source(address: &str, transport: &str) -> CollectorSource {
    CollectorSource {
        address: address.into(),
        transport: transport.into(),
        counters: Arc::new(CollectorCounters::default()),
    }
}

/// Families as `# TYPE` declares them: name -> type.
fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').unwrap();
            (name.to_string(), kind.to_string())
        })
        .collect()
}

/// The value of the sample `series` (name plus labels exactly as rendered).
fn value(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_string))
}

#[test]
fn the_exposition_names_every_family_with_help_type_and_values() {
    let m = Metrics::new();
    let before = m.render();
    assert!(
        value(&before, "flowctl_cache_flows").is_none(),
        "no cache figures before the first pass"
    );
    assert_eq!(
        value(&before, "flowctl_flows_ended_total{reason=\"idle\"}").as_deref(),
        Some("0")
    );

    let (udp, tcp) = (source("127.0.0.1:4739", "udp"), source("[::1]:4739", "tcp"));
    udp.counters.records.store(42, Relaxed);
    udp.counters.octets.store(9000, Relaxed);
    udp.counters.connected.store(true, Relaxed);
    tcp.counters.errors.store(3, Relaxed);
    tcp.counters.queued.store(17, Relaxed);
    // A second domain towards the same collector: summed into one series.
    let udp2 = source("127.0.0.1:4739", "udp");
    udp2.counters.records.store(8, Relaxed);
    m.set_collectors(vec![udp, tcp, udp2]);
    m.observe_pass(&outcome());
    m.observe_pass(&ScanOutcome {
        ended: counts(1, 0),
        flows: 2,
        ..outcome()
    });
    m.pass_failed();
    let text = m.render();

    for (name, kind) in families(&text) {
        assert!(name.starts_with("flowctl_"), "{name}");
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("# HELP {name} ")) && l.len() > name.len() + 10),
            "{name} has a HELP line"
        );
        assert!(
            ["counter", "gauge", "histogram"].contains(&kind.as_str()),
            "{name}: {kind}"
        );
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = families(&text)
            .into_iter()
            .find(|(f, _)| name.starts_with(f.as_str()))
            .unwrap_or_else(|| panic!("{line}: no family"));
        if family.1 == "counter" {
            assert_eq!(name, format!("{}_total", family.0), "counters end in _total");
        }
    }
    assert!(text.ends_with("# EOF\n"));

    let expect = [
        ("flowctl_cache_flows", "2"),
        ("flowctl_cache_capacity_flows", "8"),
        ("flowctl_cache_fill_ratio", "0.25"),
        ("flowctl_datapath_not_recorded_packets_total", "5"),
        ("flowctl_datapath_not_recorded_bytes_total", "600"),
        ("flowctl_datapath_non_ip_packets_total", "2"),
        ("flowctl_datapath_non_ip_bytes_total", "120"),
        ("flowctl_datapath_malformed_packets_total", "1"),
        ("flowctl_datapath_malformed_bytes_total", "60"),
        ("flowctl_flows_ended_total{reason=\"idle\"}", "3"),
        ("flowctl_flows_ended_total{reason=\"active\"}", "0"),
        ("flowctl_flows_ended_total{reason=\"lack_of_resources\"}", "1"),
        ("flowctl_flow_records_total{reason=\"idle\"}", "4"),
        ("flowctl_flow_records_total{reason=\"lack_of_resources\"}", "2"),
        ("flowctl_aging_pass_duration_seconds_count", "2"),
        ("flowctl_aging_pass_failures_total", "1"),
        (
            "flowctl_export_records_total{collector=\"127.0.0.1:4739\",transport=\"udp\"}",
            "50",
        ),
        (
            "flowctl_export_bytes_total{collector=\"127.0.0.1:4739\",transport=\"udp\"}",
            "9000",
        ),
        ("flowctl_export_up{collector=\"127.0.0.1:4739\",transport=\"udp\"}", "1"),
        (
            "flowctl_export_send_errors_total{collector=\"[::1]:4739\",transport=\"tcp\"}",
            "3",
        ),
        (
            "flowctl_export_queue_records{collector=\"[::1]:4739\",transport=\"tcp\"}",
            "17",
        ),
        ("flowctl_export_up{collector=\"[::1]:4739\",transport=\"tcp\"}", "0"),
    ];
    for (series, v) in expect {
        assert_eq!(value(&text, series).as_deref(), Some(v), "{series} in\n{text}");
    }
    let build = format!(
        "flowctl_build_info{{version=\"{}\",layout_version=\"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        flowctl_model::LAYOUT_VERSION
    );
    assert_eq!(value(&text, &build).as_deref(), Some("1"), "{text}");
    assert!(text.contains("# TYPE flowctl_aging_pass_duration_seconds histogram\n"));
    assert!(text.contains("# UNIT flowctl_aging_pass_duration_seconds seconds\n"));
    assert!(text.contains("flowctl_aging_pass_duration_seconds_bucket{le=\"0.005\"} 2\n"));
    assert_eq!(
        text.matches("flowctl_export_records_total{").count(),
        2,
        "one series per collector address and transport"
    );
}

/// Rows of the "Metrics" table in docs/configuration.md: name -> type.
fn documented() -> BTreeMap<String, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let section = doc.split("\n## Metrics\n").nth(1).expect("a Metrics section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `flowctl_"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_string(), cells[2].to_string())
        })
        .collect()
}

#[test]
fn every_metric_is_documented_and_every_documented_one_exists() {
    let m = Metrics::new();
    m.set_collectors(vec![source("127.0.0.1:4739", "udp")]);
    m.observe_pass(&outcome());
    let exposed: BTreeMap<String, String> = families(&m.render())
        .into_iter()
        .map(|(name, kind)| match kind.as_str() {
            "counter" => (format!("{name}_total"), kind),
            _ => (name, kind),
        })
        .collect();
    assert_eq!(documented(), exposed, "docs/configuration.md, section Metrics");
}

/// One HTTP/1.1 request over a plain socket; returns (status line, headers, body).
fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> (String, String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_ascii_lowercase(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_serves_metrics_and_refuses_the_rest() {
    let metrics = Arc::new(Metrics::new());
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), metrics.clone())
        .await
        .unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    let replies = tokio::task::spawn_blocking(move || {
        [
            http(addr, "GET", "/metrics"),
            http(addr, "GET", "/metrics?x=1"),
            http(addr, "GET", "/"),
            http(addr, "POST", "/metrics"),
            http(addr, "HEAD", "/metrics"),
        ]
    })
    .await
    .unwrap();
    let [get, query, root, post, head] = replies;
    assert_eq!(get.0, "HTTP/1.1 200 OK");
    assert!(
        get.1
            .contains("content-type: application/openmetrics-text; version=1.0.0; charset=utf-8"),
        "{}",
        get.1
    );
    assert!(get.2.contains("# TYPE flowctl_flows_ended counter\n") && get.2.ends_with("# EOF\n"));
    assert_eq!(query.0, "HTTP/1.1 200 OK");
    assert_eq!(root.0, "HTTP/1.1 404 Not Found");
    assert_eq!(post.0, "HTTP/1.1 405 Method Not Allowed");
    assert!(post.1.contains("allow: get, head"));
    assert_eq!(head.0, "HTTP/1.1 200 OK");
    assert!(head.2.is_empty(), "HEAD has no body");

    // The port is taken: one line naming the address and the reason.
    let e = MetricsServer::start(addr, metrics).await.unwrap_err().to_string();
    assert!(e.starts_with(&format!("metrics: cannot listen on {addr}: ")), "{e}");
    assert!(e.contains("in use") && e.lines().count() == 1, "{e}");

    drop(server);
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_err() {
            return; // stopped listening
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("still listening after the server was dropped");
}

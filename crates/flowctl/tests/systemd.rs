//! The agent as a systemd service (root needed): the readiness protocol
//! (sd_notify: READY, RELOADING, STOPPING, WATCHDOG) spoken to a
//! NOTIFY_SOCKET the test binds, without systemd, and logs a journal or a
//! log shipper can read (`log.format: json`).
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    net::SocketAddr,
    os::unix::net::UnixDatagram,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{
    agent::Agent,
    collect::Collect,
    collectors::{free_port, TempDir},
    flowctl_cli::Flowctl,
    netns::{Topology, A4, A_IF, B4},
    traffic,
};

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// The notification socket systemd would give the service.
struct NotifySocket(UnixDatagram);

impl NotifySocket {
    fn bind(dir: &TempDir) -> (Self, String) {
        let path = dir.0.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        (Self(socket), path.display().to_string())
    }

    /// Every datagram received within `within` (each is one sd_notify call).
    fn messages(&self, within: Duration) -> Vec<String> {
        let (start, mut out, mut buf) = (Instant::now(), Vec::new(), [0u8; 4096]);
        while start.elapsed() < within {
            if let Ok(n) = self.0.recv(&mut buf) {
                out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        out
    }

    /// Waits for the first datagram holding `needle`; returns what came up to it.
    fn until(&self, needle: &str, within: Duration) -> Vec<String> {
        let (start, mut out, mut buf) = (Instant::now(), Vec::new(), [0u8; 4096]);
        while start.elapsed() < within {
            if let Ok(n) = self.0.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = m.lines().any(|l| l == needle);
                out.push(m);
                if done {
                    return out;
                }
            }
        }
        panic!("no {needle:?} within {within:?}; received {out:?}");
    }
}

fn lines_with(messages: &[String], line: &str) -> usize {
    messages.iter().filter(|m| m.lines().any(|l| l == line)).count()
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn the_agent_speaks_sd_notify_ready_reloading_stopping_and_pings_the_watchdog() {
    let topo = Topology::new("sdnotify");
    let fc = Flowctl::new("sdnotify");
    let dir = TempDir::new("sdnotify");
    let port = free_port();
    let collect = Collect::start(port, &dir, "collect.json");
    let (notify, path) = NotifySocket::bind(&dir);
    let config = dir.file(
        "agent.yaml",
        &format!("timers:\n  idleTimeout: 1s\n  scanInterval: 200ms\ncollectors:\n  - address: 127.0.0.1:{port}\n"),
    );
    let args = ["--config", config.to_str().unwrap(), "--netns", &topo.a, "-i", A_IF];
    // WATCHDOG_USEC=600000: a ping every 300 ms (half of it), as sd_watchdog_enabled(3) advises.
    let env = [("NOTIFY_SOCKET", path.as_str()), ("WATCHDOG_USEC", "600000")];
    let log = dir.0.join("agent.log");
    let agent = Agent::start_with_env(&fc.pin_dir, &args, &env, &log);

    // READY=1 once: after the datapath is attached and the collectors are
    // started ("agent running" is logged then), never before.
    let first = notify.until("READY=1", Duration::from_secs(10));
    assert!(
        agent.log().contains("agent running"),
        "READY before 'agent running':\n{}",
        agent.log()
    );
    assert!(
        agent.log().contains(&format!("metering {A_IF} egress")),
        "{}",
        agent.log()
    );
    assert_eq!(lines_with(&first, "READY=1"), 1, "{first:?}");
    assert!(
        first.iter().any(|m| m.contains("STATUS=")),
        "a STATUS= line says what runs: {first:?}"
    );

    // The watchdog: pings at half of WATCHDOG_USEC (300 ms): 4 to 8 in 2 s.
    let pings = notify.messages(Duration::from_secs(2));
    let count = lines_with(&pings, "WATCHDOG=1");
    assert!((4..=8).contains(&count), "{count} watchdog pings in 2 s: {pings:?}");

    // The datapath was attached when READY came: a flow reaches the collector.
    traffic::udp(&topo.a, sa(A4, 48001), &topo.b, sa(B4, 48002), 3, 10);
    collect.wait_for_flow(48001);

    // SIGHUP: RELOADING=1, then READY=1 when the new configuration is in force.
    agent.signal(libc::SIGHUP);
    let reload = notify.until("READY=1", Duration::from_secs(5));
    let reloading = reload.iter().position(|m| m.lines().any(|l| l == "RELOADING=1"));
    assert!(reloading.is_some(), "no RELOADING=1 before READY=1: {reload:?}");
    assert!(agent.log().contains("configuration reloaded"), "{}", agent.log());

    // An invalid file on SIGHUP: still RELOADING=1 then READY=1 (the running configuration is kept).
    std::fs::write(&config, "collectors: []\n").unwrap();
    agent.signal(libc::SIGHUP);
    let refused = notify.until("READY=1", Duration::from_secs(5));
    assert_eq!(lines_with(&refused, "RELOADING=1"), 1, "{refused:?}");
    assert!(agent.log().contains("reload refused"), "{}", agent.log());

    // SIGTERM: STOPPING=1, then a clean exit.
    agent.signal(libc::SIGTERM);
    notify.until("STOPPING=1", Duration::from_secs(5));
    assert!(agent.wait().success());
    collect.stop();
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn without_notify_socket_the_agent_runs_as_before_and_logs_json_when_the_file_says_so() {
    let topo = Topology::new("jsonlog");
    let fc = Flowctl::new("jsonlog");
    let dir = TempDir::new("jsonlog");
    let port = free_port();
    let collect = Collect::start(port, &dir, "collect.json");
    let config = dir.file(
        "agent.yaml",
        &format!("log:\n  format: json\ncollectors:\n  - address: 127.0.0.1:{port}\n"),
    );
    let args = ["--config", config.to_str().unwrap(), "--netns", &topo.a, "-i", A_IF];
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));
    assert!(agent.stop().success());
    collect.stop();
    let log = std::fs::read_to_string(dir.0.join("agent.log")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON object ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 3, "{log}");
    for l in &lines {
        let keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["level", "message", "target", "time"], "{l}");
        assert!(rfc3339_utc(l["time"].as_str().unwrap()), "{l}");
    }
    let running = lines
        .iter()
        .find(|l| l["message"].as_str().unwrap().starts_with("agent running"));
    let running = running.unwrap_or_else(|| panic!("no 'agent running' line: {log}"));
    assert_eq!(running["level"], "INFO");
    assert_eq!(running["target"], "flowctl_agent::agent");
}

/// `2026-12-06T04:49:21.123456Z`: RFC 3339, UTC, with a fraction of a second.
fn rfc3339_utc(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    b.len() > 21
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..b.len() - 1)
        && t.ends_with('Z')
}

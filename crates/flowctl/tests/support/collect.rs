//! `flowctl collect -o json --options` as a child process on a loopback port
//! (UDP and TCP): the records it printed, per flow, and its decode errors.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::{Child, Command},
    time::{Duration, Instant},
};

use serde_json::Value;

use super::collectors::TempDir;

/// A running `flowctl collect`.
pub struct Collect {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Collect {
    /// Starts it on 127.0.0.1:`port`, printing into `dir`/`name`(.err); waits until it listens.
    pub fn start(port: u16, dir: &TempDir, name: &str) -> Self {
        Self::start_with(port, dir, name, &[])
    }

    /// [`Collect::start`] with more arguments (`--tls-cert`, ...).
    pub fn start_with(port: u16, dir: &TempDir, name: &str, extra: &[&str]) -> Self {
        let (out, err) = (dir.0.join(name), dir.0.join(format!("{name}.err")));
        let child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
            .args([
                "collect",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "-o",
                "json",
                "--options",
            ])
            .args(extra)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let c = Self {
            child: Some(child),
            out,
            err,
        };
        let start = Instant::now();
        while !c.errors().contains("listening on udp and") {
            // Generous: under software emulation (the kernel guest) on a busy
            // machine a process can take seconds to start.
            assert!(start.elapsed() < Duration::from_secs(60), "collector did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        c
    }

    /// Records printed so far (complete lines only), options records included.
    pub fn lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        complete.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// What the collector wrote on stderr (decode errors: data without template, ...).
    pub fn errors(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits until `done(lines)` holds; panics after `within` with `what`.
    pub fn wait_until(&self, within: Duration, what: &str, done: impl Fn(&[Value]) -> bool) {
        let start = Instant::now();
        while !done(&self.lines()) {
            assert!(
                start.elapsed() < within,
                "collector: {what} not seen within {within:?}; got:\n{}",
                self.lines()
                    .iter()
                    .map(|l| l.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (up to 20 s) until a flow record from source port `sport` arrived.
    pub fn wait_for_flow(&self, sport: u16) {
        self.wait_until(Duration::from_secs(20), &format!("a record from port {sport}"), |l| {
            !records_of(l, sport).is_empty()
        });
    }

    /// Peak resident memory of the collector so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().map(Child::id).unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Stops (SIGKILL: it keeps nothing) and returns every printed record.
    pub fn stop(mut self) -> Vec<Value> {
        std::thread::sleep(Duration::from_millis(300));
        self.kill();
        self.lines()
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Collect {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Flow records (not options records).
pub fn flow_records(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l["options"] == false).collect()
}

/// Flow records (not options records) whose source port is `sport`.
pub fn records_of(lines: &[Value], sport: u16) -> Vec<&Value> {
    flow_records(lines)
        .into_iter()
        .filter(|l| l["fields"]["sourceTransportPort"] == sport)
        .collect()
}

/// Packets and octets per source port, summed over every flow record.
pub fn totals_by_sport(lines: &[Value]) -> BTreeMap<u16, (u64, u64)> {
    let mut out: BTreeMap<u16, (u64, u64)> = BTreeMap::new();
    for l in flow_records(lines) {
        let f = &l["fields"];
        let e = out
            .entry(f["sourceTransportPort"].as_u64().unwrap_or(0) as u16)
            .or_default();
        e.0 += f["packetDeltaCount"].as_u64().unwrap();
        e.1 += f["octetDeltaCount"].as_u64().unwrap();
    }
    out
}

/// The largest `ignoredPacketTotalCount` / `ignoredOctetTotalCount` of the options records.
pub fn ignored(lines: &[Value]) -> (u64, u64) {
    let max = |k: &str| {
        lines
            .iter()
            .filter(|l| l["options"] == true)
            .filter_map(|l| l["fields"][k].as_u64())
            .max()
            .unwrap_or(0)
    };
    (max("ignoredPacketTotalCount"), max("ignoredOctetTotalCount"))
}

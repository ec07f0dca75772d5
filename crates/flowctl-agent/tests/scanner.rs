//! The scanner over the real pinned cache (root needed): a pass where most
//! flows expire drains the cache in batches and puts the staying flows back
//! unchanged; every record carries exactly what was counted.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    time::Duration,
};

use flowctl_aging::{Scanner, Timeouts, Watermarks};
use flowctl_datapath::{flow_table::ReadMode, test_run::DetachedDatapath, FlowTable, PinLayout};
use flowctl_model::{boot_time_ns, EndReason, FlowKey, FlowRecord, FlowStats};

const S: u64 = 1_000_000_000;

struct Pins(PathBuf);

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A detached datapath with an 8192-flow cache pinned under a directory of
/// this test's own (`tag`), removed when the returned [`Pins`] is dropped.
fn cache(tag: &str) -> (Pins, PinLayout, FlowTable) {
    let base = PathBuf::from(format!("/sys/fs/bpf/flowctl-test-scanner{tag}-{}", std::process::id()));
    let pins = Pins(base.clone());
    let layout = PinLayout::under(&base);
    DetachedDatapath::load(&layout, 5, Some(8192)).expect("load datapath (run as root)");
    let table = FlowTable::open(&layout).unwrap();
    (pins, layout, table)
}

fn flow(i: u32, last_seen_ns: u64) -> (FlowKey, FlowStats) {
    let mut key = FlowKey {
        netns_ino: 5,
        protocol: 17,
        ip_version: 4,
        src_port: 1000 + (i % 50_000) as u16,
        dst_port: 53,
        ..Default::default()
    };
    key.src_addr[12..].copy_from_slice(&i.to_be_bytes());
    let value = FlowStats {
        packets: u64::from(i % 7) + 1,
        octets: (u64::from(i % 7) + 1) * 90,
        first_seen_ns: last_seen_ns - S,
        last_seen_ns,
        min_ttl: 64,
        max_ttl: 64,
        ..Default::default()
    };
    (key, value)
}

/// The agent's scanner over the pinned cache, reading `batch` flows per call.
fn scanner(layout: &PinLayout, batch: usize) -> Scanner<FlowTable> {
    let mut table = FlowTable::open(layout).unwrap();
    table.set_read_mode(ReadMode::Batch, batch);
    Scanner::new(table, timeouts(Duration::from_secs(5)), Watermarks::default())
}

/// Every record of one pass (`end_all` or `scan`).
fn pass(scanner: &mut Scanner<FlowTable>, end_all: bool) -> Vec<FlowRecord> {
    let mut records = Vec::new();
    let mut sink = |chunk: Vec<FlowRecord>| records.extend(chunk);
    if end_all {
        scanner.end_all(&mut sink).unwrap();
    } else {
        scanner.scan(&mut sink).unwrap();
    }
    records
}

/// Last-seen times of an active flow (1 s ago) and of an idle one (11 s
/// ago, past the 5 s idle timeout), on the boot-time clock. A freshly booted
/// kernel guest may not be 12 s up yet: wait for it.
fn moments() -> (u64, u64) {
    while boot_time_ns() < 12 * S {
        std::thread::sleep(Duration::from_millis(100));
    }
    let now = boot_time_ns();
    (now - S, now - 11 * S)
}

fn timeouts(idle: Duration) -> Timeouts {
    Timeouts {
        idle_tcp: idle,
        idle_udp: idle,
        idle_icmp: idle,
        idle_other: idle,
        active: Duration::from_secs(3600),
        tcp_end_grace: Duration::from_secs(5),
    }
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_mass_expiry_drains_the_cache_and_puts_the_staying_flows_back() {
    let (_pins, layout, table) = cache("");

    // 2900 flows idle for 100 s, 100 active a second ago, mixed over the buckets.
    let (active, idle) = moments();
    let flows: Vec<_> = (0..3000)
        .map(|i| flow(i, if i % 30 == 0 { active } else { idle }))
        .collect();
    table.insert_batch(&flows).unwrap();
    let staying: HashMap<FlowKey, FlowStats> = flows
        .iter()
        .filter(|(_, v)| v.last_seen_ns == active)
        .map(|(k, v)| (*k, *v))
        .collect();
    assert_eq!(staying.len(), 100);

    let mut scanner = scanner(&layout, 100);
    let records = pass(&mut scanner, false);
    assert_eq!(records.len(), 2900);
    assert!(
        scanner.drained_flows() >= 2000,
        "most chunks after the first must be drained, got {}",
        scanner.drained_flows()
    );
    let counted: HashMap<FlowKey, FlowStats> = flows.iter().copied().collect();
    for r in &records {
        assert_eq!(r.reason, EndReason::IdleTimeout);
        let v = counted[&r.key];
        assert_eq!((r.packets(), r.octets()), (v.packets, v.octets), "{:?}", r.key);
        assert!(!staying.contains_key(&r.key));
    }
    let left: HashMap<FlowKey, FlowStats> = table.read_all().unwrap().into_iter().collect();
    assert_eq!(left, staying, "the staying flows are back, counters unchanged");

    let end = pass(&mut scanner, true);
    assert_eq!(end.len(), 100);
    assert!(end.iter().all(|r| r.reason == EndReason::ForcedEnd));
    assert!(table.is_empty().unwrap());
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_pass_where_few_flows_expire_only_reads() {
    let (_pins, layout, table) = cache("-few");
    let (active, idle) = moments();
    let flows: Vec<_> = (0..1000)
        .map(|i| flow(i, if i % 2 == 0 { active } else { idle }))
        .collect();
    table.insert_batch(&flows).unwrap();

    let mut scanner = scanner(&layout, 50);
    assert_eq!(pass(&mut scanner, false).len(), 500);
    assert_eq!(scanner.drained_flows(), 0, "half the flows expire: no chunk is drained");
    assert_eq!(table.len().unwrap(), 500);
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn passes_hand_their_records_over_in_chunks_as_they_walk() {
    let (_pins, layout, table) = cache("-sink");
    let (active, idle) = moments();
    // 2000 idle flows, 1000 active ones.
    let flows: Vec<_> = (0..3000)
        .map(|i| flow(i, if i % 3 == 0 { active } else { idle }))
        .collect();
    table.insert_batch(&flows).unwrap();

    let mut scanner = scanner(&layout, 100);
    scanner.set_chunk_records(300);
    let mut chunks: Vec<Vec<FlowRecord>> = Vec::new();
    let out = scanner.scan(&mut |c| chunks.push(c)).unwrap();
    assert_eq!(out.records_made.get(EndReason::IdleTimeout), 2000);
    assert!(chunks.len() >= 6, "{} chunks", chunks.len());
    // A chunk is handed over between two reads of the cache: at most one
    // read's worth (100 flows) past the chunk size.
    assert!(chunks.iter().all(|c| !c.is_empty() && c.len() < 300 + 100));
    let keys: HashSet<FlowKey> = chunks.iter().flatten().map(|r| r.key).collect();
    assert_eq!(keys.len(), 2000, "each ended flow exactly once");

    chunks.clear();
    let end = scanner.end_all(&mut |c| chunks.push(c)).unwrap();
    assert_eq!(end.records_made.get(EndReason::ForcedEnd), 1000);
    assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 1000);
    assert!(chunks.len() >= 3 && chunks.iter().all(|c| !c.is_empty()));
    assert!(table.is_empty().unwrap());
}

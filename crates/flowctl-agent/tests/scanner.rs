//! The scanner over the real pinned cache (root needed): a pass where most
//! flows expire ends them and leaves the staying flows unchanged, every
//! record carries exactly what was counted, and flows a dead writer was
//! ending are exported by the next one with the reason it had.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    time::Duration,
};

use flowctl_aging::{Scanner, Timeouts, Watermarks};
use flowctl_datapath::{test_run::DetachedDatapath, Error, FlowTable, PinLayout};
use flowctl_model::{boot_time_ns, EndReason, Ending, FlowKey, FlowRecord, FlowSource, FlowStats};

const S: u64 = 1_000_000_000;

struct Pins(PathBuf);

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A detached datapath with an 8192-flow cache pinned under a directory of
/// this test's own (`tag`), removed when the returned [`Pins`] is dropped;
/// and a reader of it.
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

/// The agent's scanner over the pinned cache (its writer), walking `chunk`
/// flows at a time, with `flows` inserted as the datapath would have
/// counted them.
fn scanner(layout: &PinLayout, chunk: usize, flows: &[(FlowKey, FlowStats)]) -> Scanner<FlowTable> {
    let mut table = FlowTable::open_writer(layout).unwrap();
    table.set_chunk(chunk);
    table.insert(flows).unwrap();
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
fn a_mass_expiry_ends_the_idle_flows_and_leaves_the_staying_ones_unchanged() {
    let (_pins, layout, table) = cache("");

    // 2900 flows idle for 10 s, 100 active a second ago, mixed over the slots.
    let (active, idle) = moments();
    let flows: Vec<_> = (0..3000)
        .map(|i| flow(i, if i % 30 == 0 { active } else { idle }))
        .collect();
    let staying: HashMap<FlowKey, FlowStats> = flows
        .iter()
        .filter(|(_, v)| v.last_seen_ns == active)
        .map(|(k, v)| (*k, *v))
        .collect();
    assert_eq!(staying.len(), 100);

    let mut scanner = scanner(&layout, 100, &flows);
    assert_eq!(table.free_slots(), 8192 - 3000);
    let records = pass(&mut scanner, false);
    assert_eq!(records.len(), 2900);
    let counted: HashMap<FlowKey, FlowStats> = flows.iter().copied().collect();
    for r in &records {
        assert_eq!(r.reason, EndReason::IdleTimeout);
        let v = counted[&r.key];
        assert_eq!((r.packets(), r.octets()), (v.packets, v.octets), "{:?}", r.key);
        assert!(!staying.contains_key(&r.key));
    }
    let left: HashMap<FlowKey, FlowStats> = table
        .read_all()
        .unwrap()
        .into_iter()
        .map(|e| (e.key, e.stats))
        .collect();
    assert_eq!(left, staying, "the staying flows are untouched");
    assert_eq!(table.free_slots(), 8192 - 100, "the ended flows' slots are free again");

    let end = pass(&mut scanner, true);
    assert_eq!(end.len(), 100);
    assert!(end.iter().all(|r| r.reason == EndReason::ForcedEnd));
    assert!(table.is_empty().unwrap());
    assert_eq!(table.free_slots(), 8192);
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn one_writer_at_a_time_and_the_next_exports_what_a_dead_one_was_ending() {
    let (_pins, layout, reader) = cache("-writer");
    let (_, idle) = moments();
    let flows: Vec<_> = (0..10).map(|i| flow(i, idle)).collect();
    let first = FlowTable::open_writer(&layout).unwrap();
    first.insert(&flows).unwrap();
    assert!(matches!(FlowTable::open_writer(&layout), Err(Error::CacheBusy(_))));
    // The first writer closes four flows for idleness and dies before
    // settling them.
    let entries = first.read_all().unwrap();
    let closed: Vec<Ending> = entries[..4]
        .iter()
        .map(|e| Ending::of(e, EndReason::IdleTimeout))
        .collect();
    first.close(&closed).unwrap();
    drop(first);
    assert_eq!(reader.len().unwrap(), 6);

    let mut next = Scanner::new(
        FlowTable::open_writer(&layout).unwrap(),
        timeouts(Duration::from_secs(3600)),
        Watermarks::default(),
    );
    let records = pass(&mut next, false);
    let ended: HashSet<FlowKey> = closed.iter().map(|e| e.key).collect();
    assert_eq!(records.len(), 4);
    for r in &records {
        assert!(ended.contains(&r.key));
        assert_eq!(r.reason, EndReason::IdleTimeout, "the reason it was closed for");
        let (_, v) = flows.iter().find(|(k, _)| *k == r.key).unwrap();
        assert_eq!((r.packets(), r.octets()), (v.packets, v.octets));
    }
    assert_eq!(reader.free_slots(), 8192 - 6);
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn passes_hand_their_records_over_in_chunks() {
    let (_pins, layout, table) = cache("-sink");
    let (active, idle) = moments();
    // 2000 idle flows, 1000 active ones.
    let flows: Vec<_> = (0..3000)
        .map(|i| flow(i, if i % 3 == 0 { active } else { idle }))
        .collect();

    let mut scanner = scanner(&layout, 100, &flows);
    scanner.set_chunk_records(300);
    let mut chunks: Vec<Vec<FlowRecord>> = Vec::new();
    let out = scanner.scan(&mut |c| chunks.push(c)).unwrap();
    assert_eq!(out.records_made.get(EndReason::IdleTimeout), 2000);
    assert!(chunks.len() >= 6, "{} chunks", chunks.len());
    assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= 300));
    let keys: HashSet<FlowKey> = chunks.iter().flatten().map(|r| r.key).collect();
    assert_eq!(keys.len(), 2000, "each ended flow exactly once");

    chunks.clear();
    let end = scanner.end_all(&mut |c| chunks.push(c)).unwrap();
    assert_eq!(end.records_made.get(EndReason::ForcedEnd), 1000);
    assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 1000);
    assert!(chunks.len() >= 3 && chunks.iter().all(|c| !c.is_empty()));
    assert!(table.is_empty().unwrap());
}

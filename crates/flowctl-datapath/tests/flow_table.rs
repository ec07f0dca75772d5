//! FlowTable over the real pinned cache (root needed): walks read every
//! flow once, closed flows settle with their reason and exact counters and
//! free their slots, only the writer ends flows, and the memory estimate
//! is what the kernel charges.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, path::PathBuf};

use flowctl_datapath::{test_run::DetachedDatapath, Error, FlowTable, PinLayout};
use flowctl_model::{EndReason, Ending, FlowEntry, FlowKey, FlowSource, FlowStats, FlowWalk};

/// A loaded (not attached) datapath with its own pins, removed on drop.
struct Cache {
    base: PathBuf,
    layout: PinLayout,
    _datapath: DetachedDatapath,
}

impl Cache {
    fn new(tag: &str, max_flows: u32) -> Self {
        let base = PathBuf::from(format!("/sys/fs/bpf/flowctl-test-table-{tag}-{}", std::process::id()));
        let layout = PinLayout::under(&base);
        let datapath = DetachedDatapath::load(&layout, 77, Some(max_flows)).expect("load datapath (run as root)");
        Self {
            base,
            layout,
            _datapath: datapath,
        }
    }

    fn reader(&self) -> FlowTable {
        FlowTable::open(&self.layout).unwrap()
    }

    fn writer(&self) -> FlowTable {
        FlowTable::open_writer(&self.layout).unwrap()
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn flow(i: u32) -> (FlowKey, FlowStats) {
    let mut key = FlowKey {
        netns_ino: 77,
        protocol: 17,
        ip_version: 4,
        src_port: (i % 60000) as u16,
        dst_port: 53,
        ..Default::default()
    };
    key.src_addr[12..].copy_from_slice(&i.to_be_bytes());
    let value = FlowStats {
        packets: u64::from(i) + 1,
        octets: (u64::from(i) + 1) * 100,
        first_seen_ns: 1_000 + u64::from(i),
        last_seen_ns: 2_000 + u64::from(i),
        min_ttl: 64,
        max_ttl: 64,
        ..Default::default()
    };
    (key, value)
}

fn fill(table: &FlowTable, n: u32) -> HashMap<FlowKey, FlowStats> {
    let flows: Vec<_> = (0..n).map(flow).collect();
    table.insert(&flows).unwrap();
    flows.iter().copied().collect()
}

fn as_map(flows: Vec<FlowEntry>) -> HashMap<FlowKey, FlowStats> {
    let n = flows.len();
    let map: HashMap<_, _> = flows.into_iter().map(|e| (e.key, e.stats)).collect();
    assert_eq!(map.len(), n, "a flow was read twice");
    map
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_walk_reads_every_flow_once_in_chunks() {
    let cache = Cache::new("walk", 8192);
    let mut table = cache.writer();
    assert!(table.is_empty().unwrap());
    assert!(table.read_all().unwrap().is_empty());
    let want = fill(&table, 5000);
    table.set_chunk(333);
    assert_eq!(as_map(table.read_all().unwrap()), want);
    assert_eq!(table.len().unwrap(), 5000);
    assert_eq!(table.keys().unwrap().len(), 5000);
    // Another process reads the same flows.
    assert_eq!(as_map(cache.reader().read_all().unwrap()), want);

    let mut walk = table.walk();
    let mut chunks = 0;
    while let Some(chunk) = walk.next_chunk().unwrap() {
        assert!(!chunk.is_empty() && chunk.len() <= 333);
        chunks += 1;
    }
    assert_eq!(chunks, 5000usize.div_ceil(333));
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn closed_flows_leave_at_once_and_settle_with_their_reason_and_counters() {
    let cache = Cache::new("close", 4096);
    let table = cache.writer();
    let want = fill(&table, 3000);
    let entries = table.read_all().unwrap();
    let reasons = [EndReason::IdleTimeout, EndReason::ActiveTimeout, EndReason::EndOfFlow];
    let endings: Vec<Ending> = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(i, e)| Ending::of(e, reasons[i % 3]))
        .collect();
    table.close(&endings).unwrap();
    // Closing them again changes nothing.
    table.close(&endings).unwrap();
    assert_eq!(table.len().unwrap(), 1500, "closed flows are gone from walks");
    assert_eq!(table.get(&endings[0].key).unwrap(), None);
    assert_eq!(table.free_slots(), 4096 - 3000, "slots are freed by the settle only");

    let mut settled = Vec::new();
    table.settle(&mut |e, s| settled.push((e, s))).unwrap();
    assert_eq!(settled.len(), 1500);
    for ((ending, stats), asked) in settled.iter().zip(&endings) {
        assert_eq!(ending, asked, "in close order, with the reason given");
        assert_eq!(*stats, want[&ending.key]);
    }
    assert_eq!(table.free_slots(), 4096 - 1500);
    let mut again = 0;
    table.settle(&mut |_, _| again += 1).unwrap();
    assert_eq!(again, 0, "each flow is settled once");
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn get_reads_one_flow_and_readers_cannot_end_flows() {
    let cache = Cache::new("get", 64);
    let table = cache.writer();
    let want = fill(&table, 10);
    let reader = cache.reader();
    let (k, _) = flow(3);
    assert_eq!(reader.get(&k).unwrap(), Some(want[&k]));
    assert_eq!(reader.get(&flow(11).0).unwrap(), None);
    let entry = reader.read_all().unwrap()[0];
    let err = reader.close(&[Ending::of(&entry, EndReason::ForcedEnd)]).unwrap_err();
    assert!(matches!(err, Error::NotWriter), "{err}");
    assert!(reader.insert(&[flow(20)]).is_err());
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_full_cache_refuses_more_flows_from_user_space() {
    let cache = Cache::new("full", 100);
    let table = cache.writer();
    let flows: Vec<_> = (0..101).map(flow).collect();
    let err = table.insert(&flows).unwrap_err();
    assert!(err.to_string().starts_with("inserting flows:"), "{err}");
    assert_eq!(table.len().unwrap(), 0, "all or nothing");
    assert_eq!(table.free_slots(), 100);
    fill(&table, 100);
    assert_eq!(table.free_slots(), 0);
}

/// The kernel's own figure for a pinned map's memory (`memlock` in its
/// fdinfo, what `bpftool map show` prints).
fn kernel_memlock(pin: &std::path::Path) -> u64 {
    use std::os::fd::{AsFd, AsRawFd};
    let map = aya::maps::MapData::from_pin(pin).unwrap();
    let fd = map.fd().as_fd().as_raw_fd();
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
    let line = info.lines().find(|l| l.starts_with("memlock:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
#[ignore = "needs root: loads eBPF and pins maps (misc/test.sh runs it as root)"]
fn the_memory_estimate_is_what_the_kernel_charges() {
    use aya::util::KernelVersion;
    // Before 6.4 fdinfo's memlock is key plus value times max_entries, not
    // what the map really takes; there is nothing to compare with.
    if KernelVersion::current().unwrap() < KernelVersion::new(6, 4, 0) {
        eprintln!("skipped: this kernel does not report a map's real memory");
        return;
    }
    for max_flows in [4096, 100_000] {
        let cache = Cache::new(&format!("memlock{max_flows}"), max_flows);
        let cpus = aya::util::nr_cpus().unwrap();
        let l = &cache.layout;
        let maps = [
            l.flows_map(),
            l.slots_map(),
            l.ring_map(),
            l.ringctl_map(),
            l.spare_map(),
            l.front_map(),
        ];
        let kernel: u64 = maps.iter().map(|m| kernel_memlock(m)).sum();
        let estimate = flowctl_datapath::cache_memory::cache_bytes(max_flows, cpus);
        let error = estimate.abs_diff(kernel) as f64 / kernel as f64;
        assert!(
            error < 0.02,
            "{max_flows} flows, {cpus} CPUs: estimate {estimate} B, kernel {kernel} B"
        );
    }
}

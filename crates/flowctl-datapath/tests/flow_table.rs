//! FlowTable over the real pinned cache (root needed): the batch walk and
//! the per-key walk read the same flows, draining empties the cache, and
//! flows filled from user space read back exactly.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, path::PathBuf};

use flowctl_datapath::{flow_table::ReadMode, test_run::DetachedDatapath, FlowTable, PinLayout};
use flowctl_model::{FlowKey, FlowSource, FlowStats, FlowWalk, PutBack};

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

    fn table(&self) -> FlowTable {
        FlowTable::open(&self.layout).unwrap()
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
    table.insert_batch(&flows).unwrap();
    flows.iter().copied().collect()
}

fn as_map(flows: Vec<(FlowKey, FlowStats)>) -> HashMap<FlowKey, FlowStats> {
    let n = flows.len();
    let map: HashMap<_, _> = flows.into_iter().collect();
    assert_eq!(map.len(), n, "a flow was read twice");
    map
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn batch_and_per_key_walks_read_the_same_flows() {
    let cache = Cache::new("modes", 8192);
    let mut table = cache.table();
    assert!(table.is_empty().unwrap());
    assert!(table.read_all().unwrap().is_empty());
    let want = fill(&table, 5000);

    table.set_read_mode(ReadMode::Batch, 333);
    assert_eq!(as_map(table.read_all().unwrap()), want);
    assert_eq!(table.len().unwrap(), 5000);
    table.set_read_mode(ReadMode::PerKey, 333);
    assert_eq!(as_map(table.read_all().unwrap()), want);
    assert_eq!(table.keys().unwrap().len(), 5000);

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
fn draining_reads_every_flow_once_and_empties_the_cache() {
    for mode in [ReadMode::Batch, ReadMode::PerKey] {
        let cache = Cache::new(&format!("drain-{mode:?}"), 4096);
        let mut table = cache.table();
        table.set_read_mode(mode, 500);
        let want = fill(&table, 3000);
        let mut got = Vec::new();
        let mut drain = table.drain();
        while let Some(chunk) = drain.next_chunk().unwrap() {
            got.extend_from_slice(chunk);
        }
        assert_eq!(as_map(got), want, "{mode:?}");
        assert!(table.is_empty().unwrap(), "{mode:?}");
    }
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn take_reads_and_deletes_one_flow() {
    let cache = Cache::new("take", 64);
    let mut table = cache.table();
    let want = fill(&table, 10);
    let (k, _) = flow(3);
    assert_eq!(table.get(&k).unwrap(), Some(want[&k]));
    assert_eq!(table.take(&k).unwrap(), Some(want[&k]));
    assert_eq!(table.take(&k).unwrap(), None);
    assert_eq!(table.get(&k).unwrap(), None);
    let (k4, _) = flow(4);
    assert!(table.remove(&k4).unwrap());
    assert!(!table.remove(&k4).unwrap());
    assert_eq!(table.len().unwrap(), 8);
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_full_cache_refuses_more_flows_from_user_space() {
    let cache = Cache::new("full", 100);
    let table = cache.table();
    let flows: Vec<_> = (0..101).map(flow).collect();
    let err = table.insert_batch(&flows).unwrap_err();
    assert!(err.to_string().starts_with("inserting flows:"), "{err}");
    assert_eq!(table.len().unwrap(), 100);
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_walk_can_switch_between_reading_and_draining_chunk_by_chunk() {
    let cache = Cache::new("switch", 4096);
    let mut table = cache.table();
    table.set_read_mode(ReadMode::Batch, 200);
    let want = fill(&table, 2000);
    let (mut kept, mut drained) = (HashMap::new(), HashMap::new());
    let mut walk = table.walk();
    let mut draining = walk.drains();
    while let Some(chunk) = walk.next_chunk().unwrap() {
        let into = if draining { &mut drained } else { &mut kept };
        into.extend(chunk.iter().copied());
        draining = !draining;
        walk.set_drain(draining);
    }
    assert!(!kept.is_empty() && !drained.is_empty());
    assert_eq!(kept.len() + drained.len(), 2000, "every flow read once");
    let left = as_map(table.read_all().unwrap());
    assert_eq!(
        left, kept,
        "what was only read is still there, what was drained is gone"
    );
    for (k, s) in &drained {
        assert_eq!(want[k], *s);
    }
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn put_back_restores_a_drained_flow_unless_it_came_back_or_the_cache_is_full() {
    let cache = Cache::new("putback", 16);
    let table = cache.table();
    let want = fill(&table, 16);
    let (k, _) = flow(5);
    let taken = table.take(&k).unwrap().unwrap();
    assert_eq!(table.put_back(&k, &taken).unwrap(), PutBack::Restored);
    assert_eq!(table.get(&k).unwrap(), Some(want[&k]), "counters unchanged");
    assert_eq!(table.put_back(&k, &taken).unwrap(), PutBack::Exists);
    let (other, _) = flow(99);
    assert_eq!(table.put_back(&other, &taken).unwrap(), PutBack::Full, "16 of 16");
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
        let cpus = cache.table().possible_cpus();
        let kernel = kernel_memlock(&cache.layout.flows_map());
        let estimate = flowctl_datapath::cache_memory::cache_bytes(max_flows, cpus);
        let error = estimate.abs_diff(kernel) as f64 / kernel as f64;
        assert!(
            error < 0.02,
            "{max_flows} flows, {cpus} CPUs: estimate {estimate} B, kernel {kernel} B"
        );
    }
}

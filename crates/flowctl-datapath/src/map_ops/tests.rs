//! Batch and per-key operations against real kernel maps (root needed).
//! Keys are 12 bytes, so the kernel's packing of keys (no padding) is
//! exercised; values are two u64 per CPU.

use std::{
    collections::{HashMap, HashSet},
    os::fd::{AsFd, AsRawFd},
};

use aya::maps::{IterableMap, MapData, PerCpuArray, PerCpuHashMap};

use super::{
    batch::BatchAttr,
    sys::{bpf, cmd, possible_cpus, MapInfo},
    BatchOp, PerCpuHash, PerCpuHashBatch,
};

type Key = [u32; 3];
type Value = [u64; 2];

fn new_map(max_entries: u32) -> PerCpuHashMap<MapData, Key, Value> {
    PerCpuHashMap::create(max_entries, 0).expect("creating a per-CPU hash map (run as root)")
}

fn handle(map: &PerCpuHashMap<MapData, Key, Value>) -> PerCpuHash<Key, Value> {
    PerCpuHash::new(map.map().fd().as_fd()).unwrap()
}

fn key(i: u32) -> Key {
    [i, i.wrapping_mul(2_654_435_761), !i]
}

/// CPU `cpu`'s value of key `i`: distinct per key and per CPU.
fn value(i: u32, cpu: usize) -> Value {
    [u64::from(i) * 1000 + cpu as u64, u64::from(i) << 32 | cpu as u64]
}

fn fill(h: &PerCpuHash<Key, Value>, ids: impl Iterator<Item = u32>) {
    let ids: Vec<u32> = ids.collect();
    let keys: Vec<Key> = ids.iter().map(|&i| key(i)).collect();
    let values: Vec<Value> = ids
        .iter()
        .flat_map(|&i| (0..h.possible_cpus()).map(move |c| value(i, c)))
        .collect();
    h.update_batch(&keys, &values).unwrap();
}

/// Walks the whole map; returns every key with its per-CPU values, failing
/// on a key returned twice.
fn walk(h: &PerCpuHash<Key, Value>, batch: usize, op: BatchOp) -> (HashMap<Key, Vec<Value>>, usize) {
    let mut walk = PerCpuHashBatch::new(h, batch);
    let mut seen = HashMap::new();
    let mut calls = 0;
    while walk.next(op).unwrap() {
        calls += 1;
        let n = walk.entries().len();
        assert!(n > 0 && n <= walk.batch_size());
        for (k, v) in walk.entries() {
            assert!(seen.insert(*k, v.to_vec()).is_none(), "key {k:?} returned twice");
        }
    }
    assert_eq!(walk.entries().len(), 0);
    assert!(!walk.next(op).unwrap(), "a finished walk stays finished");
    (seen, calls)
}

fn expected(ids: impl Iterator<Item = u32>, cpus: usize) -> HashMap<Key, Vec<Value>> {
    ids.map(|i| (key(i), (0..cpus).map(|c| value(i, c)).collect()))
        .collect()
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn every_key_is_read_exactly_once_with_its_per_cpu_values() {
    let map = new_map(5000);
    let h = handle(&map);
    fill(&h, 0..5000);
    let (seen, calls) = walk(&h, 256, BatchOp::Lookup);
    assert_eq!(seen, expected(0..5000, h.possible_cpus()));
    assert!(calls >= 5000 / 256, "{calls} calls for 5000 keys in batches of 256");
    // A lookup walk leaves the map as it was.
    assert_eq!(walk(&h, 4096, BatchOp::Lookup).0.len(), 5000);
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn an_empty_map_ends_the_walk_at_once() {
    let map = new_map(64);
    let h = handle(&map);
    let mut walk = PerCpuHashBatch::new(&h, 8);
    assert!(!walk.next(BatchOp::Lookup).unwrap());
    assert_eq!(walk.entries().len(), 0);
    let mut drain = PerCpuHashBatch::new(&h, 8);
    assert!(!drain.next(BatchOp::LookupAndDelete).unwrap());
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_bucket_larger_than_the_buffer_grows_it() {
    // A full map has buckets of several keys; a one-entry buffer gets ENOSPC.
    let map = new_map(1024);
    let h = handle(&map);
    fill(&h, 0..1024);
    let mut w = PerCpuHashBatch::new(&h, 1);
    let mut seen = HashSet::new();
    while w.next(BatchOp::Lookup).unwrap() {
        seen.extend(w.entries().map(|(k, _)| *k));
    }
    assert_eq!(seen.len(), 1024);
    assert!(w.batch_size() > 1, "ENOSPC must have grown the buffer");
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn draining_returns_every_entry_once_and_empties_the_map() {
    let map = new_map(3000);
    let h = handle(&map);
    fill(&h, 0..3000);
    let (seen, _) = walk(&h, 100, BatchOp::LookupAndDelete);
    assert_eq!(seen, expected(0..3000, h.possible_cpus()));
    assert_eq!(h.next_key(None).unwrap(), None, "the map is empty");
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_walk_sees_each_key_at_most_once_while_the_map_changes() {
    let map = new_map(4096);
    let h = handle(&map);
    fill(&h, 0..2000);
    let mut w = PerCpuHashBatch::new(&h, 32);
    let mut seen = HashSet::new();
    let mut deleted = HashSet::new();
    let mut next_new = 10_000;
    while w.next(BatchOp::Lookup).unwrap() {
        for (k, _) in w.entries() {
            assert!(seen.insert(*k), "key {k:?} returned twice");
        }
        // Between calls: delete 5 keys not read yet, insert 5 new ones.
        let unread: Vec<u32> = (0..2000)
            .filter(|i| !seen.contains(&key(*i)) && !deleted.contains(i))
            .take(5)
            .collect();
        for i in unread {
            assert!(h.lookup_and_delete(&key(i)).unwrap().is_some());
            deleted.insert(i);
        }
        fill(&h, next_new..next_new + 5);
        next_new += 5;
    }
    assert!(!deleted.is_empty());
    for i in (0..2000).filter(|i| !deleted.contains(i)) {
        assert!(
            seen.contains(&key(i)),
            "key {i} stayed in the map all along but was not read"
        );
    }
    for i in &deleted {
        assert!(!seen.contains(&key(*i)), "key {i} was read after its deletion");
    }
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn per_key_operations_match_the_batch_ones() {
    let map = new_map(16);
    let h = handle(&map);
    fill(&h, 1..4);
    let cpus = h.possible_cpus();
    assert_eq!(h.lookup(&key(2)).unwrap(), Some(expected(2..3, cpus)[&key(2)].clone()));
    assert_eq!(h.lookup(&key(9)).unwrap(), None);
    let mut listed = HashSet::new();
    let mut at = None;
    while let Some(k) = h.next_key(at.as_ref()).unwrap() {
        listed.insert(k);
        at = Some(k);
    }
    assert_eq!(listed, [1, 2, 3].map(key).into_iter().collect());
    assert_eq!(
        h.lookup_and_delete(&key(3)).unwrap(),
        Some(expected(3..4, cpus)[&key(3)].clone())
    );
    assert_eq!(h.lookup_and_delete(&key(3)).unwrap(), None, "gone after the first call");

    let v: Vec<Value> = (0..cpus).map(|c| value(3, c)).collect();
    assert!(h.insert_new(&key(3), &v).unwrap(), "absent: inserted");
    assert!(!h.insert_new(&key(3), &v).unwrap(), "present: left alone");
    assert_eq!(h.lookup(&key(3)).unwrap(), Some(v));
    assert!(h.insert_new(&key(4), &[]).is_err(), "one value per CPU");
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_full_map_refuses_the_rest_of_a_batch_update() {
    let map = new_map(8);
    let h = handle(&map);
    fill(&h, 0..6);
    let keys: Vec<Key> = (100..104).map(key).collect();
    let values: Vec<Value> = (100..104)
        .flat_map(|i| (0..h.possible_cpus()).map(move |c| value(i, c)))
        .collect();
    let err = h.update_batch(&keys, &values).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::E2BIG), "{err}");
    // The entries before the failing one were written.
    let (seen, _) = walk(&h, 64, BatchOp::Lookup);
    assert_eq!(seen, expected((0..6).chain(100..102), h.possible_cpus()));
    // Replacing existing keys needs no free entry.
    fill(&h, 0..6);
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn invalid_requests_get_einval_or_a_layout_error() {
    let map = new_map(16);
    let h = handle(&map);
    fill(&h, 0..4);
    let cpus = h.possible_cpus();

    // Non-zero batch flags, unknown element flags: EINVAL.
    let mut keys = [key(0); 4];
    let mut values = vec![value(0, 0); 4 * cpus];
    let mut out = 0u64;
    let mut attr = BatchAttr {
        out_batch: &mut out as *mut u64 as u64,
        keys: keys.as_mut_ptr() as u64,
        values: values.as_mut_ptr() as u64,
        count: 4,
        map_fd: map.map().fd().as_fd().as_raw_fd() as u32,
        flags: 1,
        ..Default::default()
    };
    let err = bpf(cmd::MAP_LOOKUP_BATCH, &mut attr).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    assert!(super::is_unsupported(&err));
    attr.flags = 0;
    attr.elem_flags = 1 << 20;
    let err = bpf(cmd::MAP_UPDATE_BATCH, &mut attr).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    attr.elem_flags = 0;
    attr.count = 0;
    bpf(cmd::MAP_LOOKUP_BATCH, &mut attr).expect("count 0 is a no-op");

    // Values that do not match the keys: refused before the kernel sees them.
    let err = h.update_batch(&[key(1), key(2)], &vec![value(1, 0); cpus]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

    // Types that do not match the map: refused, nothing is read.
    let fd = map.map().fd().as_fd();
    assert!(PerCpuHash::<[u32; 4], Value>::new(fd).is_err(), "key size differs");
    assert!(PerCpuHash::<Key, [u64; 3]>::new(fd).is_err(), "value size differs");
    assert!(
        PerCpuHash::<Key, [u32; 3]>::new(fd).is_err(),
        "12-byte values are not 8-byte slots"
    );
    let info = MapInfo::of(fd).unwrap();
    assert_eq!((info.key_size, info.value_size, info.max_entries), (12, 16, 16));
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn map_types_without_a_batch_command_are_reported_unsupported() {
    // Arrays have no lookup-and-delete batch: the kernel answers ENOTSUPP.
    let array = PerCpuArray::<MapData, Value>::create(4, 0).unwrap();
    let fd = array.map().fd().as_fd();
    assert!(PerCpuHash::<u32, Value>::new(fd).is_err(), "not a hash map");
    let cpus = possible_cpus().unwrap();
    let mut keys = [0u32; 4];
    let mut values = vec![[0u64; 2]; 4 * cpus];
    let mut out = 0u64;
    let mut attr = BatchAttr {
        out_batch: &mut out as *mut u64 as u64,
        keys: keys.as_mut_ptr() as u64,
        values: values.as_mut_ptr() as u64,
        count: 4,
        map_fd: fd.as_raw_fd() as u32,
        ..Default::default()
    };
    let err = bpf(cmd::MAP_LOOKUP_AND_DELETE_BATCH, &mut attr).unwrap_err();
    assert!(super::is_unsupported(&err), "{err:?}");
    assert!(!super::is_unsupported(&std::io::Error::from_raw_os_error(libc::ENOENT)));
}

//! The map operations against real kernel maps (root needed).
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    os::fd::{AsFd, AsRawFd, OwnedFd},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use super::{
    sys::{bpf, bpf_fd, cmd, CreateAttr, ElemAttr, F_MMAPABLE, MAP_TYPE_ARRAY, MAP_TYPE_HASH},
    GracePeriod, KeyIndex, MappedArray,
};

fn create(map_type: u32, key_size: u32, value_size: u32, max_entries: u32, map_flags: u32) -> OwnedFd {
    let mut attr = CreateAttr {
        map_type,
        key_size,
        value_size,
        max_entries,
        map_flags,
        ..Default::default()
    };
    bpf_fd(cmd::MAP_CREATE, &mut attr).expect("create a map (run as root)")
}

/// A 12-byte key, like a flow key of another size.
type Key = [u32; 3];

#[test]
#[ignore = "needs root: creates BPF maps (misc/test.sh runs it as root)"]
fn keys_are_inserted_looked_up_and_deleted_in_batches() {
    let map = create(MAP_TYPE_HASH, 12, 4, 64, 0);
    let index = KeyIndex::<Key>::new(map.as_fd()).unwrap();
    let keys: Vec<Key> = (0..10).map(|i| [i, i * 2, 7]).collect();
    let values: Vec<u32> = (100..110).collect();
    index.insert_all(&keys, &values).unwrap();
    assert_eq!(index.lookup(&keys[3]).unwrap(), Some(103));
    // Inserting a key again replaces its value.
    index.insert_all(&keys[..1], &[999]).unwrap();
    assert_eq!(index.lookup(&keys[0]).unwrap(), Some(999));
    // A missing key in the middle of a batch is skipped.
    assert!(index.delete(&keys[5]).unwrap());
    index.delete_all(&keys[2..8]).unwrap();
    let left: Vec<bool> = keys.iter().map(|k| index.lookup(k).unwrap().is_some()).collect();
    assert_eq!(left, [true, true, false, false, false, false, false, false, true, true]);
    assert!(!index.delete(&keys[2]).unwrap());
}

#[test]
#[ignore = "needs root: creates BPF maps (misc/test.sh runs it as root)"]
fn a_large_batch_is_deleted_on_several_threads_exactly() {
    // Large enough to be split over threads (2048 keys a thread), with
    // keys missing here and there, in every part.
    let map = create(MAP_TYPE_HASH, 12, 4, 20_000, 0);
    let index = KeyIndex::<Key>::new(map.as_fd()).unwrap();
    let keys: Vec<Key> = (0..20_000).map(|i| [i, !i, 3]).collect();
    let values: Vec<u32> = (0..20_000).collect();
    index.insert_all(&keys, &values).unwrap();
    let missing = |i: usize| i.is_multiple_of(997);
    for (i, key) in keys.iter().enumerate().filter(|(i, _)| missing(*i)) {
        assert!(index.delete(key).unwrap(), "key {i}");
    }
    // Every key but the last 1000 goes, the missing ones included.
    index.delete_all(&keys[..19_000]).unwrap();
    for (i, key) in keys.iter().enumerate() {
        let expected = (i >= 19_000 && !missing(i)).then_some(i as u32);
        assert_eq!(index.lookup(key).unwrap(), expected, "key {i}");
    }
}

#[test]
#[ignore = "needs root: creates BPF maps (misc/test.sh runs it as root)"]
fn a_hash_of_other_sizes_is_refused() {
    let map = create(MAP_TYPE_HASH, 16, 4, 8, 0);
    let err = KeyIndex::<Key>::new(map.as_fd()).err().unwrap();
    assert!(err.to_string().contains("16-byte keys"), "{err}");
    let array = create(MAP_TYPE_ARRAY, 4, 16, 8, 0);
    let err = MappedArray::<[u64; 2]>::new(array.as_fd()).err().unwrap();
    assert!(err.to_string().contains("not a mmapable array"), "{err}");
}

#[test]
#[ignore = "needs root: creates BPF maps (misc/test.sh runs it as root)"]
fn a_mapped_array_is_the_maps_memory() {
    let map = create(MAP_TYPE_ARRAY, 4, 16, 1000, F_MMAPABLE);
    let array = MappedArray::<[u64; 2]>::new(map.as_fd()).unwrap();
    assert_eq!(array.len(), 1000);
    assert!(array.get(1000).is_none());
    let cell = array.get(999).unwrap();
    // SAFETY: the element is inside the mapping and 8-byte aligned.
    unsafe { AtomicU64::from_ptr(cell.as_ptr().cast::<u64>().add(1)) }.store(0xfeed, Ordering::Release);
    // The kernel's copy of element 999 is what was written in place.
    let (key, mut value) = (999u32, [0u64; 2]);
    let mut attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        pad: 0,
        key: &key as *const u32 as u64,
        value: &mut value as *mut [u64; 2] as u64,
        flags: 0,
    };
    bpf(cmd::MAP_LOOKUP_ELEM, &mut attr).unwrap();
    assert_eq!(value, [0, 0xfeed]);
}

#[test]
#[ignore = "needs root: creates BPF maps (misc/test.sh runs it as root)"]
fn a_grace_period_is_waited_for_in_milliseconds() {
    let grace = GracePeriod::new().unwrap();
    let started = Instant::now();
    for _ in 0..5 {
        grace.wait().unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

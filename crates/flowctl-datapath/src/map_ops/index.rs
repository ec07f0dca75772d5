//! The flow hash (`flowctl_flows`: flow key -> slot index) from user space:
//! look up, delete in batches, and insert (tests and benchmarks fill the
//! cache this way).

use std::{
    io,
    marker::PhantomData,
    os::fd::{AsRawFd, BorrowedFd, OwnedFd},
};

use super::sys::{bpf, cmd, BatchAttr, ElemAttr, MapInfo};

/// Keys per thread below which a batch delete stays on one thread.
const KEYS_PER_DELETE_THREAD: usize = 2048;
/// Most threads one batch delete uses.
const MAX_DELETE_THREADS: usize = 4;

/// Threads to delete `keys` keys with: one per [`KEYS_PER_DELETE_THREAD`],
/// at most one per CPU and [`MAX_DELETE_THREADS`].
fn delete_threads(keys: usize) -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cpus = *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    (keys / KEYS_PER_DELETE_THREAD).clamp(1, cpus.min(MAX_DELETE_THREADS))
}

/// A hash map of `K` to `u32` whose layout was checked.
pub struct KeyIndex<K> {
    fd: OwnedFd,
    key: PhantomData<K>,
}

impl<K> KeyIndex<K> {
    /// The hash behind `map` (duplicated), after checking it maps `K` to
    /// `u32`.
    pub fn new(map: BorrowedFd<'_>) -> io::Result<Self> {
        MapInfo::of(map)?.check_hash::<K, u32>()?;
        Ok(Self {
            fd: map.try_clone_to_owned()?,
            key: PhantomData,
        })
    }

    fn elem(&self, key: &K, value: Option<&mut u32>, flags: u64) -> ElemAttr {
        ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            pad: 0,
            key: key as *const K as u64,
            value: value.map_or(0, |v| v as *mut u32 as u64),
            flags,
        }
    }

    /// The value of `key`, `None` if it is not there.
    pub fn lookup(&self, key: &K) -> io::Result<Option<u32>> {
        let mut value = 0u32;
        let mut attr = self.elem(key, Some(&mut value), 0);
        match bpf(cmd::MAP_LOOKUP_ELEM, &mut attr) {
            Ok(()) => Ok(Some(value)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes `key`; `false` if it was not there.
    pub fn delete(&self, key: &K) -> io::Result<bool> {
        let mut attr = self.elem(key, None, 0);
        match bpf(cmd::MAP_DELETE_ELEM, &mut attr) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes every key of `keys` (`BPF_MAP_DELETE_BATCH`, Linux >= 5.6).
    /// A key that is not there is skipped. A large batch is split over a
    /// few threads: a delete in a big hash waits on memory (the bucket and
    /// the entry are rarely in cache, about 0.4 us each at 10M entries
    /// here), and the buckets' locks let deletes run side by side.
    pub fn delete_all(&self, keys: &[K]) -> io::Result<()>
    where
        K: Sync,
    {
        let threads = delete_threads(keys.len());
        if threads <= 1 {
            return self.delete_batch(keys);
        }
        let part = keys.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let mut parts = keys.chunks(part);
            let first = parts.next().unwrap_or_default();
            let others: Vec<_> = parts.map(|p| scope.spawn(move || self.delete_batch(p))).collect();
            let mut result = self.delete_batch(first);
            for other in others {
                let joined = other
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a thread deleting flows panicked")));
                result = result.and(joined);
            }
            result
        })
    }

    /// Deletes `keys` in one system call where it can (a key that is not
    /// there is skipped, and deleted one by one from it on).
    fn delete_batch(&self, keys: &[K]) -> io::Result<()> {
        let mut done = 0;
        while done < keys.len() {
            let rest = &keys[done..];
            let mut attr = BatchAttr {
                keys: rest.as_ptr() as u64,
                count: u32::try_from(rest.len()).unwrap_or(u32::MAX),
                map_fd: self.fd.as_raw_fd() as u32,
                ..Default::default()
            };
            let result = bpf(cmd::MAP_DELETE_BATCH, &mut attr);
            done += attr.count as usize;
            match result {
                Ok(()) => {}
                // The key at `done` is not there: skip it.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    if let Some(key) = keys.get(done) {
                        self.delete(key)?;
                    }
                    done += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Inserts or replaces `keys[i] -> values[i]` in one system call (the
    /// batch command has no insert-only mode); a full map is an error
    /// (`E2BIG`), the keys before the failing one stay.
    pub fn insert_all(&self, keys: &[K], values: &[u32]) -> io::Result<()> {
        if keys.len() != values.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "as many keys as values"));
        }
        if keys.is_empty() {
            return Ok(());
        }
        let mut attr = BatchAttr {
            keys: keys.as_ptr() as u64,
            values: values.as_ptr() as u64,
            count: u32::try_from(keys.len()).unwrap_or(u32::MAX),
            map_fd: self.fd.as_raw_fd() as u32,
            ..Default::default()
        };
        bpf(cmd::MAP_UPDATE_BATCH, &mut attr)
    }
}

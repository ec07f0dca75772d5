//! The flow hash (`flowctl_flows`: flow key -> slot index) from user space:
//! look up, delete in batches, and insert (tests and benchmarks fill the
//! cache this way).

use std::{
    io,
    marker::PhantomData,
    os::fd::{AsRawFd, BorrowedFd, OwnedFd},
};

use super::sys::{bpf, cmd, BatchAttr, ElemAttr, MapInfo};

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

    /// Deletes every key of `keys` (`BPF_MAP_DELETE_BATCH`, Linux >= 5.6):
    /// one system call for all of them. A key that is not there is skipped
    /// (deleted one by one from it on).
    pub fn delete_all(&self, keys: &[K]) -> io::Result<()> {
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

//! Walking a per-CPU hash map many entries per system call:
//! `BPF_MAP_LOOKUP_BATCH` and `BPF_MAP_LOOKUP_AND_DELETE_BATCH`.
//!
//! The kernel's semantics (kernel/bpf/hashtab.c,
//! `__htab_map_lookup_and_delete_batch`):
//!
//! - The cursor is an opaque token naming a hash bucket. The first call
//!   passes no `in_batch`; every call writes the bucket to resume from to
//!   `out_batch`, which the next call passes as `in_batch`.
//! - A call copies whole buckets only, up to `count` entries, and sets
//!   `count` to the number copied. A bucket never straddles two calls, so a
//!   key is returned at most once per walk even while the datapath inserts
//!   and deletes entries (unlike `BPF_MAP_GET_NEXT_KEY`, which restarts the
//!   walk when the key it is given was deleted).
//! - `ENOENT` means the walk is over; `count` entries were still copied by
//!   that last call.
//! - `ENOSPC` means the first bucket to copy holds more than `count`
//!   entries: nothing was copied, and the same call must be retried with a
//!   bigger buffer.
//! - The delete variant removes exactly the entries it returns, bucket by
//!   bucket under the bucket lock, so each flow's final counters are read
//!   and deleted in one step.

use std::{io, os::fd::AsRawFd};

use aya::Pod;

use super::{
    sys::{bpf, cmd, zeroed_vec},
    PerCpuHash,
};

/// `union bpf_attr` for the `BPF_MAP_*_BATCH` commands.
#[repr(C)]
#[derive(Default)]
pub(super) struct BatchAttr {
    pub in_batch: u64,
    pub out_batch: u64,
    pub keys: u64,
    pub values: u64,
    pub count: u32,
    pub map_fd: u32,
    pub elem_flags: u64,
    pub flags: u64,
}

/// What a batch call does to the entries it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOp {
    /// `BPF_MAP_LOOKUP_BATCH`: read, leave in the map.
    Lookup,
    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`: read and delete, bucket by bucket.
    LookupAndDelete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cursor {
    Start,
    /// The kernel's token (a bucket index for hash maps; 8 bytes leave room).
    At(u64),
    Done,
}

/// One walk over a [`PerCpuHash`], a batch of entries at a time. The buffers
/// are reused by every call; [`next`](Self::next) replaces the batch.
pub struct PerCpuHashBatch<'m, K, V> {
    map: &'m PerCpuHash<K, V>,
    keys: Vec<K>,
    values: Vec<V>,
    len: usize,
    cursor: Cursor,
}

impl<'m, K: Pod, V: Pod> PerCpuHashBatch<'m, K, V> {
    /// A walk from the start of `map` reading up to `batch_size` entries
    /// (at least 1) per call. The buffers grow if one bucket holds more.
    pub fn new(map: &'m PerCpuHash<K, V>, batch_size: usize) -> Self {
        let batch_size = batch_size.max(1);
        Self {
            map,
            keys: zeroed_vec(batch_size),
            values: zeroed_vec(batch_size * map.possible_cpus()),
            len: 0,
            cursor: Cursor::Start,
        }
    }

    /// How many entries a call may return now.
    #[cfg(test)]
    pub fn batch_size(&self) -> usize {
        self.keys.len()
    }

    /// Fetches the next batch. `Ok(false)` once the walk is over (and the
    /// batch is then empty). A failed call keeps the cursor, so it may be
    /// retried.
    pub fn next(&mut self, op: BatchOp) -> io::Result<bool> {
        self.len = 0;
        loop {
            let token = match self.cursor {
                Cursor::Done => return Ok(false),
                Cursor::Start => None,
                Cursor::At(t) => Some(t),
            };
            let mut out_token = 0u64;
            let mut attr = BatchAttr {
                in_batch: token.as_ref().map_or(0, |t| t as *const u64 as u64),
                out_batch: &mut out_token as *mut u64 as u64,
                keys: self.keys.as_mut_ptr() as u64,
                values: self.values.as_mut_ptr() as u64,
                count: u32::try_from(self.keys.len()).unwrap_or(u32::MAX),
                map_fd: self.map.fd().as_raw_fd() as u32,
                ..Default::default()
            };
            let command = match op {
                BatchOp::Lookup => cmd::MAP_LOOKUP_BATCH,
                BatchOp::LookupAndDelete => cmd::MAP_LOOKUP_AND_DELETE_BATCH,
            };
            let result = bpf(command, &mut attr);
            let count = (attr.count as usize).min(self.keys.len());
            match result {
                Ok(()) if count == 0 => {
                    return Err(io::Error::other("batch lookup returned nothing and did not end"));
                }
                Ok(()) => {
                    self.len = count;
                    self.cursor = Cursor::At(out_token);
                    return Ok(true);
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    self.len = count;
                    self.cursor = Cursor::Done;
                    return Ok(count > 0);
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && count == 0 => {
                    // One bucket holds more than the buffer: grow, retry the same bucket.
                    let max = self.map.info().max_entries.max(1) as usize;
                    if self.keys.len() >= max {
                        return Err(e);
                    }
                    let grown = (self.keys.len() * 2).min(max);
                    self.keys = zeroed_vec(grown);
                    self.values = zeroed_vec(grown * self.map.possible_cpus());
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether a call has returned entries or moved the cursor yet.
    pub fn started(&self) -> bool {
        self.cursor != Cursor::Start
    }

    /// The current batch: each key with its per-CPU values.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (&K, &[V])> + '_ {
        self.keys[..self.len]
            .iter()
            .zip(self.values.chunks_exact(self.map.possible_cpus()))
    }
}

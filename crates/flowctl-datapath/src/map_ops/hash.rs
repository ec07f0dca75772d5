//! A per-CPU hash map checked against its Rust key and value types, with
//! per-key operations and bulk insertion.

use std::{
    io,
    marker::PhantomData,
    os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
};

use aya::Pod;

use super::{
    batch::BatchAttr,
    sys::{bpf, cmd, possible_cpus, zeroed_vec, MapInfo},
};

/// `BPF_NOEXIST`: create only.
const BPF_NOEXIST: u64 = 1;

/// `union bpf_attr` for the `BPF_MAP_*_ELEM` commands.
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    /// `value`, or `next_key` for `BPF_MAP_GET_NEXT_KEY`.
    value: u64,
    flags: u64,
}

/// A per-CPU hash map (plain or LRU) whose keys are `K` and whose per-CPU
/// value slots are `V`, checked once at creation. Holds its own descriptor.
pub struct PerCpuHash<K, V> {
    fd: OwnedFd,
    info: MapInfo,
    possible_cpus: usize,
    _types: PhantomData<(K, V)>,
}

impl<K: Pod, V: Pod> PerCpuHash<K, V> {
    /// Checks the map behind `map` (type, key size, value size) and keeps a
    /// duplicate of its descriptor.
    pub fn new(map: BorrowedFd<'_>) -> io::Result<Self> {
        let info = MapInfo::of(map)?;
        info.check_per_cpu_hash::<K, V>()?;
        Ok(Self {
            fd: map.try_clone_to_owned()?,
            info,
            possible_cpus: possible_cpus()?,
            _types: PhantomData,
        })
    }

    /// The map's kernel info.
    pub fn info(&self) -> &MapInfo {
        &self.info
    }

    /// Number of per-CPU slots of every value.
    pub fn possible_cpus(&self) -> usize {
        self.possible_cpus
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn elem(&self, cmd: libc::c_long, key: Option<&K>, value: u64) -> io::Result<bool> {
        let mut attr = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key.map_or(0, |k| k as *const K as u64),
            value,
            ..Default::default()
        };
        match bpf(cmd, &mut attr) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One value per possible CPU of `key`, `None` if the key is absent.
    pub fn lookup(&self, key: &K) -> io::Result<Option<Vec<V>>> {
        let mut values = zeroed_vec::<V>(self.possible_cpus);
        let found = self.elem(cmd::MAP_LOOKUP_ELEM, Some(key), values.as_mut_ptr() as u64)?;
        Ok(found.then_some(values))
    }

    /// Looks up and deletes `key` in one step; one value per possible CPU,
    /// `None` if the key is absent.
    pub fn lookup_and_delete(&self, key: &K) -> io::Result<Option<Vec<V>>> {
        let mut values = zeroed_vec::<V>(self.possible_cpus);
        let found = self.elem(cmd::MAP_LOOKUP_AND_DELETE_ELEM, Some(key), values.as_mut_ptr() as u64)?;
        Ok(found.then_some(values))
    }

    /// Inserts `key` with one value per possible CPU only if it is absent
    /// (`BPF_NOEXIST`): `Ok(false)` if the key exists, `E2BIG` if the map is
    /// full.
    pub fn insert_new(&self, key: &K, values: &[V]) -> io::Result<bool> {
        if values.len() != self.possible_cpus {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} per-CPU values for {} CPUs", values.len(), self.possible_cpus),
            ));
        }
        let mut attr = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key as *const K as u64,
            value: values.as_ptr() as u64,
            flags: BPF_NOEXIST,
            ..Default::default()
        };
        match bpf(cmd::MAP_UPDATE_ELEM, &mut attr) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes `key`; `false` if it was not there.
    pub fn delete(&self, key: &K) -> io::Result<bool> {
        self.elem(cmd::MAP_DELETE_ELEM, Some(key), 0)
    }

    /// The key after `key` in the kernel's walk order (the first key for
    /// `None`), `None` at the end. A `key` that is no longer in the map
    /// restarts the walk, which is why [`PerCpuHashBatch`](super::PerCpuHashBatch) is preferred.
    pub fn next_key(&self, key: Option<&K>) -> io::Result<Option<K>> {
        let mut next = zeroed_vec::<K>(1);
        let found = self.elem(cmd::MAP_GET_NEXT_KEY, key, next.as_mut_ptr() as u64)?;
        Ok(found.then(|| next[0]))
    }

    /// Inserts or replaces `keys.len()` entries in one system call
    /// (`BPF_MAP_UPDATE_BATCH`, element flags `BPF_ANY`); `values` holds
    /// [`possible_cpus`](Self::possible_cpus) slots per key. On an error
    /// (`E2BIG`: the map is full) the entries before the failing one are
    /// written.
    pub fn update_batch(&self, keys: &[K], values: &[V]) -> io::Result<()> {
        if values.len() != keys.len() * self.possible_cpus || u32::try_from(keys.len()).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} keys need {} per-CPU values, got {}",
                    keys.len(),
                    keys.len() * self.possible_cpus,
                    values.len()
                ),
            ));
        }
        let mut attr = BatchAttr {
            keys: keys.as_ptr() as u64,
            values: values.as_ptr() as u64,
            count: keys.len() as u32,
            map_fd: self.fd.as_raw_fd() as u32,
            ..Default::default()
        };
        bpf(cmd::MAP_UPDATE_BATCH, &mut attr)
    }
}

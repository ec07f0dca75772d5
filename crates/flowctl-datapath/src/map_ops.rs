//! Map operations aya 0.14 does not offer for hash maps, as raw `bpf(2)`
//! commands: atomic lookup-and-delete of a per-CPU entry.
//!
//! `BPF_MAP_LOOKUP_AND_DELETE_ELEM` returns the counters and removes the entry
//! in one step, so no packet counted between a read and a delete is lost: a
//! packet that arrives afterwards creates a new entry.

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, BorrowedFd},
};

const BPF_MAP_LOOKUP_AND_DELETE_ELEM: libc::c_long = 21;

/// `union bpf_attr` for the `BPF_MAP_*_ELEM` commands.
#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Looks up and deletes `key` of a per-CPU hash map whose value type is `V`
/// (a multiple of 8 bytes, as the kernel lays per-CPU values out in 8-byte
/// slots). Returns one value per possible CPU, or `None` if the key is absent.
pub fn lookup_and_delete_per_cpu<K: Copy, V: Copy + Default>(
    map: BorrowedFd<'_>,
    key: &K,
    possible_cpus: usize,
) -> io::Result<Option<Vec<V>>> {
    debug_assert_eq!(size_of::<V>() % 8, 0, "per-CPU values are 8-byte slots");
    let mut values = vec![V::default(); possible_cpus];
    let mut attr = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: key as *const K as u64,
        value: values.as_mut_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: attr points at a live key and a value buffer of possible_cpus * size_of::<V>() bytes.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_AND_DELETE_ELEM,
            &mut attr as *mut ElemAttr,
            size_of::<ElemAttr>(),
        )
    };
    if rc == 0 {
        return Ok(Some(values));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ENOENT) {
        Ok(None)
    } else {
        Err(err)
    }
}

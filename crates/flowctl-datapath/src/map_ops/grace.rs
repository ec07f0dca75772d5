//! Waiting for an RCU grace period from user space: once it has passed, no
//! eBPF program that was running when the wait began still runs, so none
//! can still hold a pointer it looked up before.
//!
//! The kernel waits for one (`synchronize_rcu()`) whenever user space
//! stores an inner map into a map-in-map (`maybe_wait_bpf_programs()` in
//! kernel/bpf/syscall.c, since Linux 5.0), so that programs can no longer
//! use the map it replaced. The kernel's own BPF self-tests wait for a grace
//! period this way (`kern_sync_rcu()` in tools/testing/selftests/bpf).

use std::{
    io,
    os::fd::{AsRawFd, OwnedFd},
};

use super::sys::{bpf, bpf_fd, cmd, CreateAttr, ElemAttr, MAP_TYPE_ARRAY, MAP_TYPE_ARRAY_OF_MAPS};

/// A tiny map-in-map whose only use is to make the kernel wait for a grace
/// period.
pub struct GracePeriod {
    outer: OwnedFd,
    inner: OwnedFd,
}

impl GracePeriod {
    /// Creates the two maps (an array of one map, and a one-element array
    /// to store in it). Needs CAP_BPF.
    pub fn new() -> io::Result<Self> {
        let mut inner = CreateAttr {
            map_type: MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            ..Default::default()
        };
        let inner = bpf_fd(cmd::MAP_CREATE, &mut inner)?;
        let mut outer = CreateAttr {
            map_type: MAP_TYPE_ARRAY_OF_MAPS,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            inner_map_fd: inner.as_raw_fd() as u32,
            ..Default::default()
        };
        let outer = bpf_fd(cmd::MAP_CREATE, &mut outer)?;
        Ok(Self { outer, inner })
    }

    /// Returns once every eBPF program running when it was called has
    /// finished (a few milliseconds; it sleeps, it does not spin).
    pub fn wait(&self) -> io::Result<()> {
        let key = 0u32;
        let fd = self.inner.as_raw_fd() as u32;
        let mut attr = ElemAttr {
            map_fd: self.outer.as_raw_fd() as u32,
            pad: 0,
            key: &key as *const u32 as u64,
            value: &fd as *const u32 as u64,
            flags: 0,
        };
        bpf(cmd::MAP_UPDATE_ELEM, &mut attr)
    }
}

//! What a flow cache costs in kernel memory, and the check that refuses a
//! cache the machine cannot hold before the kernel is asked for it.
//!
//! Since Linux 5.11 a BPF map's memory is charged to the memory cgroup of
//! the process that creates it, not to RLIMIT_MEMLOCK; every kernel flowctl
//! supports (5.14 and later) works this way. So the cache is checked against
//! the memory the kernel could actually give: `MemAvailable`, and the limit
//! of this process's memory cgroup (v1 or v2) when it has one.

use std::{fs, mem::size_of};

use flowctl_model::{front_array_entries, FlowKey, FlowSlot, FrontEntry, SpareSlot};

use crate::{Error, Result};

/// The most flows a cache may be created for (16 Mi).
pub const MAX_FLOWS_LIMIT: u32 = 1 << 24;

/// Per-element bookkeeping of a preallocated kernel hash map (`struct
/// htab_elem` up to its key).
const HASH_ELEMENT_OVERHEAD: u64 = 48;
/// A hash bucket (a list head and its lock); the kernel rounds the bucket
/// count up to a power of two.
const BUCKET_BYTES: u64 = 16;
/// A position of the ring of free slots (a power of two of them).
const RING_POSITION_BYTES: u64 = 4;

/// Kernel memory of a flow cache of `max_flows` entries on a machine with
/// `cpus` possible CPUs: the kernel's own figure (the sum of `memlock` in
/// `bpftool map show` over the cache's maps) to within a few kilobytes.
/// Per flow: a hash element (key and slot index), a bucket, a slot and a
/// ring position, whatever the number of CPUs; the CPUs only add a spare
/// hash element, a spare slot index and a front cache (128 KiB) each.
pub fn cache_bytes(max_flows: u32, cpus: usize) -> u64 {
    let round8 = |n: usize| (n as u64).div_ceil(8) * 8;
    let entries = u64::from(max_flows);
    let hash_element = HASH_ELEMENT_OVERHEAD + round8(size_of::<FlowKey>()) + round8(size_of::<u32>());
    let per_flow = hash_element + round8(size_of::<FlowSlot>());
    let positions = entries.max(2).next_power_of_two();
    let per_cpu = hash_element + round8(size_of::<SpareSlot>());
    let front = u64::from(front_array_entries(cpus)) * round8(size_of::<FrontEntry>());
    entries * per_flow + positions * (BUCKET_BYTES + RING_POSITION_BYTES) + cpus as u64 * per_cpu + front + 4096
}

/// Memory a new map could take, and where that bound comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Available {
    /// Bytes.
    pub bytes: u64,
    /// "MemAvailable" or the memory cgroup file that sets the bound.
    pub source: String,
}

/// The memory available to a map this process creates: the lower of
/// `MemAvailable` and what its memory cgroup has left; `None` if neither is
/// readable.
pub fn available() -> Option<Available> {
    let meminfo = fs::read_to_string("/proc/meminfo").ok().and_then(|t| mem_available(&t));
    let system = meminfo.map(|bytes| Available {
        bytes,
        source: "MemAvailable in /proc/meminfo".into(),
    });
    let cgroup = fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| cgroup_headroom(&t, |p| fs::read_to_string(p).ok()));
    match (system, cgroup) {
        (Some(s), Some(c)) => Some(if c.bytes < s.bytes { c } else { s }),
        (s, c) => s.or(c),
    }
}

/// `MemAvailable` of a /proc/meminfo text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What the memory cgroup named in a /proc/self/cgroup text has left below
/// its limit; `None` without a limit. `read` reads a cgroupfs file.
fn cgroup_headroom(self_cgroup: &str, read: impl Fn(&str) -> Option<String>) -> Option<Available> {
    let number = |path: &str| read(path).and_then(|t| t.trim().parse::<u64>().ok());
    for line in self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_end_matches('/');
        let (limit_file, usage_file) = if controllers.is_empty() {
            let dir = format!("/sys/fs/cgroup{path}");
            let dir = if read(&format!("{dir}/memory.max")).is_some() {
                dir
            } else {
                format!("/sys/fs/cgroup/unified{path}")
            };
            (format!("{dir}/memory.max"), format!("{dir}/memory.current"))
        } else if controllers.split(',').any(|c| c == "memory") {
            let dir = format!("/sys/fs/cgroup/memory{path}");
            (
                format!("{dir}/memory.limit_in_bytes"),
                format!("{dir}/memory.usage_in_bytes"),
            )
        } else {
            continue;
        };
        // "max" (v2) does not parse; v1 writes "no limit" as a huge number.
        let Some(limit) = number(&limit_file).filter(|&l| l < 1 << 60) else {
            continue;
        };
        let used = number(&usage_file).unwrap_or(0);
        return Some(Available {
            bytes: limit.saturating_sub(used),
            source: limit_file,
        });
    }
    None
}

/// Refuses a cache above [`MAX_FLOWS_LIMIT`] or larger than half the memory
/// available to it (the rest of the machine keeps the other half).
pub fn check(max_flows: u32, cpus: usize) -> Result<()> {
    if max_flows > MAX_FLOWS_LIMIT {
        return Err(Error::MaxFlowsTooLarge {
            requested: max_flows,
            limit: MAX_FLOWS_LIMIT,
        });
    }
    let bytes = cache_bytes(max_flows, cpus);
    match available() {
        Some(available) if bytes > available.bytes / 2 => Err(Error::CacheTooLarge {
            max_flows,
            cpus,
            mib: bytes >> 20,
            available_mib: available.bytes >> 20,
            bound: available.source,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_is_read_in_bytes() {
        let text = "MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:   23531748 kB\n";
        assert_eq!(mem_available(text), Some(23531748 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn a_v1_memory_cgroup_bounds_what_is_left() {
        let self_cgroup = "5:devices:/\n4:memory:/jobs/a\n0::/\n";
        let read = |p: &str| match p {
            "/sys/fs/cgroup/memory/jobs/a/memory.limit_in_bytes" => Some("268435456\n".into()),
            "/sys/fs/cgroup/memory/jobs/a/memory.usage_in_bytes" => Some("67108864\n".into()),
            _ => None,
        };
        let left = cgroup_headroom(self_cgroup, read).unwrap();
        assert_eq!(left.bytes, 192 << 20);
        assert_eq!(left.source, "/sys/fs/cgroup/memory/jobs/a/memory.limit_in_bytes");
    }

    #[test]
    fn a_v2_cgroup_bounds_and_max_means_no_bound() {
        let files = |max: &'static str| {
            move |p: &str| match p {
                "/sys/fs/cgroup/system.slice/flowctl.service/memory.max" => Some(max.to_string()),
                "/sys/fs/cgroup/system.slice/flowctl.service/memory.current" => Some("1048576".into()),
                _ => None,
            }
        };
        let self_cgroup = "0::/system.slice/flowctl.service\n";
        assert_eq!(cgroup_headroom(self_cgroup, files("max\n")), None);
        assert_eq!(cgroup_headroom(self_cgroup, files("3145728\n")).unwrap().bytes, 2 << 20);
    }

    #[test]
    fn v1_no_limit_is_no_bound() {
        let read = |p: &str| p.ends_with("limit_in_bytes").then(|| "9223372036854771712".to_string());
        assert_eq!(cgroup_headroom("4:memory:/\n", read), None);
    }

    #[test]
    fn memory_per_flow_does_not_grow_with_the_cpus() {
        let per_flow = |cpus| cache_bytes(1 << 20, cpus) as f64 / f64::from(1u32 << 20);
        // Hash element 120, slot 120, bucket and ring position 20 (layout
        // 4), and 2 x 128 KiB of front caches (0.25 B a flow).
        assert!(per_flow(2) <= 261.0, "{}", per_flow(2));
        // A flow more costs the same on 2 and 256 CPUs; a CPU more costs
        // its front cache, a spare hash element and a spare slot index.
        let added_flow = |cpus| cache_bytes(1 << 21, cpus) - cache_bytes(1 << 20, cpus);
        assert_eq!(added_flow(2), added_flow(256));
        let added_cpu = cache_bytes(1 << 20, 257) - cache_bytes(1 << 20, 256);
        assert_eq!(added_cpu, 128 * 1024 + 120 + 8);
        // Front caches stop at FRONT_MAX_CPUS.
        let past_front = cache_bytes(1 << 20, 1001) - cache_bytes(1 << 20, 1000);
        assert_eq!(past_front, 120 + 8);
        // Buckets and ring positions come in powers of two.
        let just_over = cache_bytes(65537, 2) - cache_bytes(65536, 2);
        assert!(just_over > 65536 * (BUCKET_BYTES + RING_POSITION_BYTES));
    }

    #[test]
    fn too_many_flows_are_refused_before_the_memory_is_looked_at() {
        let message = check(MAX_FLOWS_LIMIT + 1, 1).unwrap_err().to_string();
        assert!(message.contains("16777216"), "{message}");
    }
}

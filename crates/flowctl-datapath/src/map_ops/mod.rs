//! Map operations aya 0.14 does not offer for per-CPU hash maps, as raw
//! `bpf(2)` commands.
//!
//! - [`PerCpuHash`]: a map whose key and value sizes were checked against
//!   the Rust types, with per-key lookup, listing, and atomic
//!   lookup-and-delete (`BPF_MAP_LOOKUP_AND_DELETE_ELEM`: the counters are
//!   returned and the entry removed in one step, so no packet counted in
//!   between is lost), and bulk insertion (`BPF_MAP_UPDATE_BATCH`).
//! - [`PerCpuHashBatch`]: a walk over the whole map, many entries per system
//!   call (`BPF_MAP_LOOKUP_BATCH`, or `BPF_MAP_LOOKUP_AND_DELETE_BATCH` to
//!   drain it; Linux >= 5.6). This is what reads a cache of a million flows in
//!   a fraction of a second instead of two system calls per flow.
//!
//! Per-CPU values come as one slot per possible CPU, each the value size
//! rounded up to 8 bytes. Every operation relies on the layout check done
//! once by [`PerCpuHash::new`], so the kernel never writes past a buffer.

mod batch;
mod hash;
pub(crate) mod sys;

pub use batch::{BatchOp, PerCpuHashBatch};
pub use hash::PerCpuHash;
pub use sys::{is_unsupported, possible_cpus};

#[cfg(test)]
mod tests;

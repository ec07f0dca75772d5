//! Map operations aya 0.14 does not offer, as raw `bpf(2)` commands and
//! memory mappings.
//!
//! - [`KeyIndex`]: the flow hash (key -> slot index), with batch deletion
//!   (`BPF_MAP_DELETE_BATCH`) and batch insertion.
//! - [`MappedArray`]: a `BPF_F_MMAPABLE` array mapped into this process,
//!   read and written in place with atomics.
//! - [`GracePeriod`]: waits until no eBPF program can still hold a pointer
//!   it looked up before the wait.
//!
//! Every map is checked (type, flags, key and value sizes) against the Rust
//! types before the kernel writes into a Rust buffer or a mapping is used.

mod grace;
mod index;
mod mapped;
pub(crate) mod sys;

pub use grace::GracePeriod;
pub use index::KeyIndex;
pub use mapped::MappedArray;
pub use sys::possible_cpus;

#[cfg(test)]
mod tests;

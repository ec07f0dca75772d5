//! The flow model: what the datapath, aging and the IPFIX encoder agree a
//! flow is.
//!
//! - the key and the flow cache's slots exactly as the eBPF datapath writes
//!   them (`#[repr(C)]` mirrors of `bpf/flowctl.h`, checked by
//!   `tests/layout.rs`), and a flow's counters as user space reads them;
//! - the records aging hands to exporters, and why they are made;
//! - the datapath's clock and its conversion to wall-clock time;
//! - [`FlowSource`], the contract between a flow cache and the scanner that
//!   ages it, with an in-memory implementation for tests (feature
//!   `test-util`).
//!
//! Nothing here talks to the kernel beyond reading the clocks, so everything
//! that depends only on the model builds without clang, aya or root.

mod clock;
mod key;
mod layout;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;
pub mod proto;
mod reason;
mod record;
mod sampling;
mod selector;
mod slot;
mod source;
mod stats;

pub use clock::{boot_time_ns, BootClock};
pub use key::{key_addr, FlowKey, MplsLabel, MPLS_PRESENT};
pub use layout::*;
pub use reason::{EndReason, ReasonCounts};
pub use record::FlowRecord;
pub use sampling::*;
pub use selector::FlowSelector;
pub use slot::{
    closing_bits, closing_reason, first_meta, front_array_entries, meta, slot_owner, slot_state, FlowSlot, FrontEntry,
    RingPair, SlotRing, SpareSlot, SLOT_CLOSING, SLOT_FREE, SLOT_LIVE,
};
pub use source::{Ending, FlowEntry, FlowSource, FlowWalk};
pub use stats::{DatapathCounters, FlowStats};

#[cfg(feature = "aya")]
mod pod {
    // SAFETY: all of these are #[repr(C)] structs of integers with explicit
    // padding fields, so every bit pattern is valid and there are no holes.
    unsafe impl aya::Pod for super::FlowKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FlowSlot {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SlotRing {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::RingPair {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SpareSlot {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FrontEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::DatapathCounters {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Sampler {}
}

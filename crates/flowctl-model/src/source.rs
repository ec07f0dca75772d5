//! Where the aging scanner reads flows from: the contract between the flow
//! cache (the pinned eBPF map, or an in-memory fake) and the scanner.

use crate::{BootClock, DatapathCounters, FlowKey, FlowStats};

/// One flow and its counters, as a walk returns it.
pub type FlowEntry = (FlowKey, FlowStats);

/// What [`FlowSource::put_back`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutBack {
    /// The flow is in the cache again, counters unchanged.
    Restored,
    /// A packet re-created the flow meanwhile: the counters given are not in
    /// the cache, the caller must report them.
    Exists,
    /// The cache is full: the counters given are not in the cache.
    Full,
}

/// A flow cache that a datapath counts into while the scanner ages it.
///
/// The scanner loses nothing counted because every implementation keeps
/// these rules:
/// - a walk returns each flow present for the whole walk exactly once, and
///   never a flow twice, even while flows are taken, put back, inserted or
///   deleted during it;
/// - [`take`](Self::take) and a draining walk read and delete a flow in one
///   step: a packet counted after it starts a new entry, never lands in the
///   one read;
/// - [`put_back`](Self::put_back) never merges into or overwrites an entry
///   that exists.
pub trait FlowSource {
    /// Errors of the cache's operations.
    type Error: std::error::Error + Send + Sync + 'static;
    /// A walk over the cache.
    type Walk<'a>: FlowWalk<Error = Self::Error>
    where
        Self: 'a;

    /// Most flows the cache holds.
    fn capacity(&self) -> u32;
    /// A walk that reads every flow, a chunk at a time; flows stay.
    fn walk(&self) -> Self::Walk<'_>;
    /// A walk that reads and deletes every flow, a chunk at a time.
    fn drain(&self) -> Self::Walk<'_>;
    /// Reads and deletes one flow in one step; `None` if it is not there.
    fn take(&self, key: &FlowKey) -> Result<Option<FlowStats>, Self::Error>;
    /// Inserts counters read out of the cache back, unless the flow exists
    /// again or the cache is full.
    fn put_back(&self, key: &FlowKey, stats: &FlowStats) -> Result<PutBack, Self::Error>;
    /// The datapath's own counters (not recorded, non-IP, malformed).
    fn counters(&self) -> Result<DatapathCounters, Self::Error>;
    /// The time now on the clock of the cache's timestamps (boot-time ns).
    fn now_ns(&self) -> u64;
    /// Converts the cache's timestamps to wall-clock time.
    fn boot_clock(&self) -> BootClock;
}

/// One pass over a [`FlowSource`], a chunk of flows at a time.
pub trait FlowWalk {
    /// Errors of the walk.
    type Error;

    /// The next chunk of flows (counters merged over CPUs), `None` once
    /// every flow was returned. The slice is overwritten by the next call.
    fn next_chunk(&mut self) -> Result<Option<&[FlowEntry]>, Self::Error>;
    /// Whether the following chunks are read and deleted (`true`) or only
    /// read; the cursor stays where it is.
    fn set_drain(&mut self, drain: bool);
    /// Whether the next chunk will be read and deleted.
    fn drains(&self) -> bool;
}

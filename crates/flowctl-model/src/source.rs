//! Where the aging scanner reads flows from: the contract between the flow
//! cache (the pinned eBPF maps, or an in-memory fake) and the scanner.

use crate::{BootClock, DatapathCounters, EndReason, FlowKey, FlowStats};

/// One flow as a walk reads it: its place in the cache, its key, and its
/// counters at that moment (packets may be added to them right after).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowEntry {
    /// Where the flow's counters are (a slot of the cache).
    pub slot: u32,
    /// The flow.
    pub key: FlowKey,
    /// Its counters when read.
    pub stats: FlowStats,
}

/// A flow being ended, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ending {
    /// Its slot, from the walk that read it.
    pub slot: u32,
    /// The flow.
    pub key: FlowKey,
    /// Why it ends.
    pub reason: EndReason,
}

impl Ending {
    /// Ends the flow `entry` for `reason`.
    pub fn of(entry: &FlowEntry, reason: EndReason) -> Self {
        Self {
            slot: entry.slot,
            key: entry.key,
            reason,
        }
    }
}

/// A flow cache that a datapath counts into while the scanner ages it.
///
/// Ending flows takes two steps, so that nothing counted is lost or counted
/// on the wrong flow:
/// 1. [`close`](Self::close) takes the flows' keys out of the cache: their
///    next packets start new entries, but a packet already on its way may
///    still be added to a closed flow;
/// 2. [`settle`](Self::settle) waits until none can be (an RCU grace period
///    on the real cache), then hands over each closed flow with its final
///    counters and frees its place.
///
/// A walk returns every flow present for the whole walk exactly once, and
/// closed flows never. A flow closed by a process that died before settling
/// it is settled by the next one, with the reason it was closed for.
pub trait FlowSource {
    /// Errors of the cache's operations.
    type Error: std::error::Error + Send + Sync + 'static;
    /// A walk over the cache.
    type Walk<'a>: FlowWalk<Error = Self::Error>
    where
        Self: 'a;

    /// Most flows the cache holds.
    fn capacity(&self) -> u32;
    /// At least as many flows as the cache holds now, if the cache knows
    /// it without a walk (the real cache: its slots minus the free ones).
    /// A scan skips choosing eviction candidates when even this many
    /// flows stay below the eviction watermark.
    fn occupancy_bound(&self) -> Option<usize> {
        None
    }
    /// A walk that reads every live flow, a chunk at a time; flows stay.
    fn walk(&self) -> Self::Walk<'_>;
    /// Takes the keys of `flows` out of the cache; a flow no longer there
    /// (closed already) is skipped. On error, the flows before the failing
    /// one may be closed: [`settle`](Self::settle) still hands them over.
    fn close(&self, flows: &[Ending]) -> Result<(), Self::Error>;
    /// Hands every closed flow to `sink` with its final counters, in the
    /// order they were closed, and frees its place. On error nothing more
    /// is handed over and the rest stays closed for a later call.
    fn settle(&self, sink: &mut dyn FnMut(Ending, FlowStats)) -> Result<(), Self::Error>;
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

    /// The next chunk of live flows, `None` once every flow was returned.
    /// The slice is overwritten by the next call.
    fn next_chunk(&mut self) -> Result<Option<&[FlowEntry]>, Self::Error>;
}

//! Lack-of-resources eviction in the same walk as aging.
//!
//! While a scan walks the cache, every flow that stays (no expiry in this
//! scan) is [`offer`](Candidates::offer)ed to a bounded set of the oldest
//! flows by (last-seen time, key). Eviction never goes below the low
//! watermark, so at most `capacity - low` flows can be evicted: the set
//! keeps no more than half as many again (amortised constant time per flow,
//! about 100 bytes a kept flow), even when a million flows share one
//! timestamp; no second walk of the cache is needed.
//! When the scan ends, [`Eviction::plan`] takes the oldest `staying - low`
//! of them if the flows that stay reach the high watermark. Flows that end
//! for another reason in the same scan are never offered, so they are not
//! counted twice.

use std::cmp::Ordering;

use flowctl_model::{EndReason, FlowEntry, FlowKey, FlowStats};

use crate::{Expiry, Watermarks};

/// The oldest staying flows of a scan in progress.
#[derive(Debug)]
pub(crate) struct Candidates {
    /// Most flows an eviction could take in this cache.
    bound: usize,
    /// Flows offered and not yet known to be newer than `bound` others.
    kept: Vec<Candidate>,
    /// Rank of the `bound`-th oldest flow offered so far: nothing at or
    /// above it can be evicted.
    cutoff: Option<(u64, FlowKey)>,
}

/// Flows to end because the cache is nearly full.
#[derive(Debug)]
pub struct Eviction {
    /// Oldest first (then by key).
    flows: Vec<Candidate>,
}

#[derive(Debug)]
struct Candidate {
    slot: u32,
    key: FlowKey,
    stats: FlowStats,
}

impl Candidate {
    fn rank(&self) -> (u64, &FlowKey) {
        (self.stats.last_seen_ns, &self.key)
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.rank() == other.rank()
    }
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// Flows of a cache of `capacity` at the low watermark.
fn low_mark(watermarks: Watermarks, capacity: u32) -> usize {
    (watermarks.low * f64::from(capacity)) as usize
}

impl Candidates {
    /// Candidates for a cache of `capacity` flows.
    pub(crate) fn new(watermarks: Watermarks, capacity: u32) -> Self {
        Self {
            bound: (capacity as usize).saturating_sub(low_mark(watermarks, capacity)),
            kept: Vec::new(),
            cutoff: None,
        }
    }

    /// No candidates: for a scan that cannot end with an eviction.
    pub(crate) fn none() -> Self {
        Self {
            bound: 0,
            kept: Vec::new(),
            cutoff: None,
        }
    }

    /// Considers one flow that stays. Amortised constant time: flows are
    /// kept until there are half as many again as `bound`, then only the
    /// `bound` oldest stay (a linear selection) and set the cutoff.
    pub(crate) fn offer(&mut self, entry: &FlowEntry) {
        let rank = (entry.stats.last_seen_ns, &entry.key);
        if self.bound == 0 || self.cutoff.is_some_and(|(t, k)| rank >= (t, &k)) {
            return;
        }
        self.kept.push(Candidate {
            slot: entry.slot,
            key: entry.key,
            stats: entry.stats,
        });
        if self.kept.len() >= self.bound + self.bound / 2 + 64 {
            self.kept.select_nth_unstable(self.bound - 1);
            self.kept.truncate(self.bound);
            let newest = &self.kept[self.bound - 1];
            self.cutoff = Some((newest.stats.last_seen_ns, newest.key));
        }
    }

    /// The `n` oldest flows offered, oldest first (then by key).
    fn oldest(mut self, n: usize) -> Vec<Candidate> {
        if n < self.kept.len() {
            self.kept.select_nth_unstable(n);
            self.kept.truncate(n);
        }
        self.kept.sort_unstable();
        self.kept
    }
}

impl Eviction {
    /// The eviction once `staying` flows stay in a cache of `capacity`:
    /// `None` below the high watermark.
    pub(crate) fn plan(candidates: Candidates, staying: usize, watermarks: Watermarks, capacity: u32) -> Option<Self> {
        let high = (watermarks.high * f64::from(capacity)) as usize;
        let low = low_mark(watermarks, capacity);
        if capacity == 0 || staying < high.max(1) {
            return None;
        }
        // At most `capacity - low` flows (more are never in the cache).
        let count = staying - low.min(staying);
        if count == 0 {
            return None;
        }
        let flows = candidates.oldest(count);
        (!flows.is_empty()).then_some(Self { flows })
    }

    /// How many flows are to be evicted.
    pub fn count(&self) -> usize {
        self.flows.len()
    }

    /// The flows to end, least recently active first (then by key).
    pub fn into_expiries(self) -> Vec<Expiry> {
        self.flows
            .into_iter()
            .map(|c| Expiry {
                slot: c.slot,
                key: c.key,
                stats: c.stats,
                reason: EndReason::LackOfResources,
            })
            .collect()
    }
}

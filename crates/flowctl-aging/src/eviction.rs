//! Lack-of-resources eviction without a sorted copy of the cache.
//!
//! The first walk of a scan keeps the last-seen time of every flow that
//! stays; [`Eviction::plan`] picks the `n`-th oldest of those as a threshold
//! (`select_nth_unstable`, linear) and counts the flows strictly older. A
//! second walk of the cache then [`offer`](Eviction::offer)s every flow:
//! those older than the threshold are all evicted, and of those last seen
//! exactly at the threshold only the smallest keys needed to reach `n` are
//! kept (a bounded heap), so memory stays proportional to what is evicted
//! even when a million flows share one timestamp.

use std::{cmp::Ordering, collections::BinaryHeap};

use flowctl_common::FlowKey;
use flowctl_datapath::FlowStats;

use crate::{EndReason, Expiry, Watermarks};

/// Flows to end because the cache is nearly full.
#[derive(Debug)]
pub struct Eviction {
    threshold_ns: u64,
    count: usize,
    /// Flows last seen before the threshold (at most `count - ties` of them).
    older: Vec<Candidate>,
    /// How many flows last seen at the threshold are evicted.
    ties: usize,
    /// The smallest keys at the threshold so far; the largest on top.
    at_threshold: BinaryHeap<Candidate>,
}

#[derive(Debug)]
struct Candidate {
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

impl Eviction {
    /// The eviction for flows that stay with these last-seen times in a
    /// cache of `capacity`: `None` below the high watermark.
    pub(crate) fn plan(mut staying: Vec<u64>, watermarks: Watermarks, capacity: u32) -> Option<Self> {
        let high = (watermarks.high * f64::from(capacity)) as usize;
        let low = (watermarks.low * f64::from(capacity)) as usize;
        let n = staying.len();
        if capacity == 0 || n < high.max(1) {
            return None;
        }
        let count = n - low.min(n);
        if count == 0 {
            return None;
        }
        let (_, threshold_ns, _) = staying.select_nth_unstable(count - 1);
        let threshold_ns = *threshold_ns;
        let older = staying.iter().filter(|&&t| t < threshold_ns).count();
        Some(Self {
            threshold_ns,
            count,
            older: Vec::with_capacity(older),
            ties: count - older,
            at_threshold: BinaryHeap::with_capacity(count - older + 1),
        })
    }

    /// How many flows are to be evicted.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Considers one chunk of a second walk over the cache (flows that are
    /// gone or have been active since the first walk are simply not evicted).
    pub fn offer(&mut self, chunk: &[(FlowKey, FlowStats)]) {
        for (key, stats) in chunk.iter().filter(|(_, s)| s.last_seen_ns <= self.threshold_ns) {
            let candidate = Candidate {
                key: *key,
                stats: *stats,
            };
            if stats.last_seen_ns < self.threshold_ns {
                // Flows only get newer between the walks: never more than counted.
                if self.older.len() + self.ties < self.count {
                    self.older.push(candidate);
                }
            } else if self.at_threshold.len() < self.ties {
                self.at_threshold.push(candidate);
            } else if self
                .at_threshold
                .peek()
                .is_some_and(|largest| candidate.key < largest.key)
            {
                self.at_threshold.pop();
                self.at_threshold.push(candidate);
            }
        }
    }

    /// The flows to end, least recently active first (then by key).
    pub fn into_expiries(mut self) -> Vec<Expiry> {
        self.older.sort_unstable();
        self.older
            .into_iter()
            .chain(self.at_threshold.into_sorted_vec())
            .map(|c| Expiry {
                key: c.key,
                stats: c.stats,
                reason: EndReason::LackOfResources,
            })
            .collect()
    }
}

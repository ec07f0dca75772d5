//! The aging state machine: for each flow of a scan, whether it is reported
//! now and why, and its record, built from the counters taken out of the
//! cache.
//!
//! Every record, an active-timeout one included, is built from the final
//! counters of a cache entry the scanner closed and settled: the flow goes
//! on in a new entry. So the records of a flow count disjoint packets and sum to
//! exactly what the datapath counted. State is kept between scans only for
//! flows that need it: the totals of earlier records, which
//! `packetTotalCount`/`octetTotalCount` carry on from, and when a TCP FIN or
//! RST was first seen, which starts the end grace period.

use std::{collections::HashMap, time::Duration};

use flowctl_model::{
    proto::{TCP, TCP_FIN, TCP_RST},
    BootClock, EndReason, Ending, FlowKey, FlowRecord, FlowStats,
};

use crate::{Timeouts, Watermarks};

/// A flow to report now, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    /// Its slot in the cache.
    pub slot: u32,
    /// The flow.
    pub key: FlowKey,
    /// Its counters in the snapshot the decision was made on.
    pub stats: FlowStats,
    /// Why it is reported.
    pub reason: EndReason,
}

impl Expiry {
    /// The flow to close in the cache.
    pub fn ending(&self) -> Ending {
        Ending {
            slot: self.slot,
            key: self.key,
            reason: self.reason,
        }
    }
}

/// Totals of a flow's earlier records whose cache entries were taken out
/// (active timeout): its next records' totals carry on from there, and a
/// TCP end seen in them still ends the flow.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Carried {
    packets: u64,
    octets: u64,
    /// Boot time of the last packet counted in them.
    pub(crate) last_ns: u64,
}

/// State kept only for flows that need it: totals carried over, or TCP end
/// seen.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tracked {
    pub(crate) carried: Option<Carried>,
    tcp_end_seen_ns: Option<u64>,
    /// Scan generation in which the flow was last present.
    pub(crate) seen_in: u64,
}

/// The aging state machine. Pure: no I/O, time comes in as boot-time ns.
#[derive(Debug)]
pub struct Aging {
    pub(crate) timeouts: Timeouts,
    pub(crate) watermarks: Watermarks,
    pub(crate) tracked: HashMap<FlowKey, Tracked, foldhash::fast::RandomState>,
    pub(crate) generation: u64,
    /// Whether active-timeout records carry their totals over to the
    /// flow's next records.
    carry_totals: bool,
}

impl Aging {
    /// A state machine with these timers.
    pub fn new(timeouts: Timeouts, watermarks: Watermarks) -> Self {
        Self {
            timeouts,
            watermarks,
            tracked: HashMap::default(),
            generation: 0,
            carry_totals: true,
        }
    }

    /// Whether `packetTotalCount`/`octetTotalCount` of a flow's records go
    /// on from its earlier active-timeout records (the default). That needs
    /// state for every flow an active timeout reported, looked up on every
    /// scan (about 150 bytes a flow); when no template exports totals the
    /// agent turns it off, and a record's totals are its own counts.
    pub fn set_carry_totals(&mut self, carry: bool) {
        self.carry_totals = carry;
    }

    /// Changes the timers (configuration reload); state is kept.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts;
    }

    /// Changes when the cache counts as nearly full; state is kept.
    pub fn set_watermarks(&mut self, watermarks: Watermarks) {
        self.watermarks = watermarks;
    }

    /// Current timers.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Flows with remembered state (for memory accounting).
    pub fn tracked_flows(&self) -> usize {
        self.tracked.len()
    }

    /// Why `key` (counters `stats`) is reported now, if it is. One hash
    /// lookup per flow; marks the flow's state as seen in `generation`.
    pub(crate) fn decide(
        &mut self,
        key: &FlowKey,
        stats: &FlowStats,
        now_ns: u64,
        generation: u64,
    ) -> Option<EndReason> {
        let t = self.timeouts;
        let elapsed = |since: u64| Duration::from_nanos(now_ns.saturating_sub(since));
        let idle = elapsed(stats.last_seen_ns) >= t.idle_for(key.protocol);
        let tcp_end = key.protocol == TCP && stats.tcp_flags & (TCP_FIN | TCP_RST) != 0;

        let tracked = if tcp_end {
            Some(self.tracked.entry(*key).or_default())
        } else {
            self.tracked.get_mut(key)
        };
        if let Some(tracked) = tracked {
            tracked.seen_in = generation;
            if tcp_end {
                tracked.tcp_end_seen_ns.get_or_insert(now_ns);
            }
            // A FIN or RST seen in an earlier entry (one an active timeout
            // took out) still ends the flow's tail.
            if let Some(end_seen) = tracked.tcp_end_seen_ns {
                if idle || elapsed(end_seen) >= t.tcp_end_grace {
                    return Some(EndReason::EndOfFlow);
                }
            }
        }
        if idle {
            return Some(EndReason::IdleTimeout);
        }
        (elapsed(stats.first_seen_ns) >= t.active).then_some(EndReason::ActiveTimeout)
    }

    /// The record of a cache entry from its final counters (closed and
    /// settled). With [`EndReason::ActiveTimeout`] the flow goes on in a
    /// new entry, and its totals carry over to that entry's records (unless
    /// totals are not carried: see [`Aging::set_carry_totals`]).
    pub fn finish(&mut self, key: &FlowKey, last: &FlowStats, reason: EndReason, clock: &BootClock) -> FlowRecord {
        let tracked = self.untrack(key);
        let carried = tracked.and_then(|t| t.carried);
        let (total_packets, total_octets) = match carried {
            Some(c) => (c.packets + last.packets, c.octets + last.octets),
            None => (last.packets, last.octets),
        };
        let tcp_end_seen_ns = tracked.and_then(|t| t.tcp_end_seen_ns);
        // State for the flow's next entry, only when something needs it.
        if reason == EndReason::ActiveTimeout && (self.carry_totals || tcp_end_seen_ns.is_some()) {
            let carried = Carried {
                packets: total_packets,
                octets: total_octets,
                last_ns: last.last_seen_ns,
            };
            self.tracked.insert(
                *key,
                Tracked {
                    carried: Some(carried),
                    tcp_end_seen_ns,
                    seen_in: self.generation,
                },
            );
        }
        FlowRecord {
            key: *key,
            stats: *last,
            total_packets,
            total_octets,
            start_unix_ns: clock.unix_ns_u64(last.first_seen_ns.min(last.last_seen_ns)),
            end_unix_ns: clock.unix_ns_u64(last.last_seen_ns),
            reason,
        }
    }

    /// Drops the state of a flow that vanished (deleted by someone else).
    pub fn forget(&mut self, key: &FlowKey) {
        self.untrack(key);
    }

    /// Removes a flow's state. Most flows have none: an empty map is not
    /// even hashed into (a million ended flows would pay a SipHash each).
    fn untrack(&mut self, key: &FlowKey) -> Option<Tracked> {
        if self.tracked.is_empty() {
            None
        } else {
            self.tracked.remove(key)
        }
    }
}

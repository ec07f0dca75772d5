//! The aging state machine.
//!
//! Each scan looks at the cache (chunk by chunk, see `scan.rs`) and decides
//! which flows to report now. A flow that ends (idle, TCP end, forced, lack of resources)
//! is read and deleted atomically by the caller ([`Aging::finish`] builds
//! its record from those final counters); a flow that stays (active timeout)
//! is reported from the snapshot and remembered, so the next record of the
//! same flow counts only what is new. Per flow, the records' deltas always sum
//! to what the datapath counted.

use std::collections::HashMap;

use flowctl_common::FlowKey;
use flowctl_datapath::{clock::BootClock, FlowStats};

use crate::{EndReason, FlowRecord, Timeouts, Watermarks};

const TCP: u8 = 6;
const TCP_FIN: u16 = 0x01;
const TCP_RST: u16 = 0x04;

/// A flow to report now, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    /// The flow.
    pub key: FlowKey,
    /// Its counters in the snapshot the decision was made on.
    pub stats: FlowStats,
    /// [`EndReason::ActiveTimeout`]: report and keep; anything else: the flow ends.
    pub reason: EndReason,
}

impl Expiry {
    /// Whether the flow leaves the cache.
    pub fn ends_flow(&self) -> bool {
        self.reason != EndReason::ActiveTimeout
    }

    /// Whether the flow still ends, given the counters it had when it was
    /// taken out of the cache: an eviction is called off for a flow that
    /// saw packets since the scan read it (it is no longer among the least
    /// recently active flows); any other end stands.
    pub fn still_due(&self, last: &FlowStats) -> bool {
        self.reason != EndReason::LackOfResources || last.last_seen_ns <= self.stats.last_seen_ns
    }
}

/// What was already reported of a flow that is still in the cache.
#[derive(Clone, Copy, Debug)]
struct Reported {
    packets: u64,
    octets: u64,
    /// Boot time of the snapshot the last record was built from.
    at_ns: u64,
}

/// Totals of a flow's earlier records whose cache entries were taken out
/// (active timeout): its next records' packetTotalCount/octetTotalCount
/// carry on from there.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Carried {
    packets: u64,
    octets: u64,
    /// Boot time of the last packet counted in them.
    pub(crate) last_ns: u64,
}

/// State kept only for flows that need it: reported before, totals carried
/// over, or TCP end seen.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tracked {
    reported: Option<Reported>,
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
    pub(crate) tracked: HashMap<FlowKey, Tracked>,
    pub(crate) generation: u64,
}

impl Aging {
    /// A state machine with these timers.
    pub fn new(timeouts: Timeouts, watermarks: Watermarks) -> Self {
        Self {
            timeouts,
            watermarks,
            tracked: HashMap::new(),
            generation: 0,
        }
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

    /// Every flow of the snapshot, ended by force (flush, shutdown).
    pub fn force_all(&self, snapshot: &[(FlowKey, FlowStats)]) -> Vec<Expiry> {
        snapshot
            .iter()
            .map(|(key, stats)| Expiry {
                key: *key,
                stats: *stats,
                reason: EndReason::ForcedEnd,
            })
            .collect()
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
        let elapsed = |since: u64| std::time::Duration::from_nanos(now_ns.saturating_sub(since));
        let idle = elapsed(stats.last_seen_ns) >= t.idle_for(key.protocol);
        let tcp_end = key.protocol == TCP && stats.tcp_flags & (TCP_FIN | TCP_RST) != 0;

        let tracked = if tcp_end {
            Some(self.tracked.entry(*key).or_default())
        } else {
            self.tracked.get_mut(key)
        };
        let mut reported = None;
        if let Some(tracked) = tracked {
            tracked.seen_in = generation;
            if tcp_end {
                let end_seen = *tracked.tcp_end_seen_ns.get_or_insert(now_ns);
                if idle || elapsed(end_seen) >= t.tcp_end_grace {
                    return Some(EndReason::EndOfFlow);
                }
            }
            reported = tracked.reported;
        }
        if idle {
            return Some(EndReason::IdleTimeout);
        }
        let since = reported.map_or(stats.first_seen_ns, |r| r.at_ns);
        let has_new = reported.is_none_or(|r| stats.packets > r.packets);
        (has_new && elapsed(since) >= t.active).then_some(EndReason::ActiveTimeout)
    }

    /// The record of a cache entry from its final counters (read and deleted
    /// in one step). `None` when nothing is new since its previous record.
    /// With [`EndReason::ActiveTimeout`] the flow goes on in a new entry,
    /// and its totals carry over to that entry's records.
    pub fn finish(
        &mut self,
        key: &FlowKey,
        last: &FlowStats,
        reason: EndReason,
        clock: &BootClock,
    ) -> Option<FlowRecord> {
        let tracked = self.untrack(key);
        let mut rec = record(key, last, tracked.and_then(|t| t.reported), reason, clock)?;
        if let Some(c) = tracked.and_then(|t| t.carried) {
            rec.total_packets += c.packets;
            rec.total_octets += c.octets;
        }
        if reason == EndReason::ActiveTimeout {
            let carried = Carried {
                packets: rec.total_packets,
                octets: rec.total_octets,
                last_ns: last.last_seen_ns,
            };
            self.tracked.insert(
                *key,
                Tracked {
                    carried: Some(carried),
                    seen_in: self.generation,
                    ..Default::default()
                },
            );
        }
        Some(rec)
    }

    /// An active-timeout record from the snapshot's counters; the flow stays
    /// and its next record starts from here.
    pub fn report_active(
        &mut self,
        key: &FlowKey,
        stats: &FlowStats,
        now_ns: u64,
        clock: &BootClock,
    ) -> Option<FlowRecord> {
        let t = self.tracked.entry(*key).or_insert(Tracked {
            seen_in: self.generation,
            ..Default::default()
        });
        let rec = record(key, stats, t.reported, EndReason::ActiveTimeout, clock)?;
        t.reported = Some(Reported {
            packets: stats.packets,
            octets: stats.octets,
            at_ns: now_ns,
        });
        Some(rec)
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

fn record(
    key: &FlowKey,
    stats: &FlowStats,
    reported: Option<Reported>,
    reason: EndReason,
    clock: &BootClock,
) -> Option<FlowRecord> {
    // Counters below what was reported mean the entry was deleted and
    // re-created meanwhile: everything in it is new.
    let reported = reported.filter(|r| r.packets <= stats.packets && r.octets <= stats.octets);
    let (packets, octets) = match reported {
        Some(r) => (stats.packets - r.packets, stats.octets - r.octets),
        None => (stats.packets, stats.octets),
    };
    if packets == 0 {
        return None;
    }
    // A continuation starts after the snapshot of the previous record.
    let start_ns = reported
        .map_or(stats.first_seen_ns, |r| r.at_ns.max(stats.first_seen_ns))
        .min(stats.last_seen_ns);
    let unix = |boot_ns: u64| clock.unix_ns(boot_ns).max(0) as u64;
    Some(FlowRecord {
        key: *key,
        packets,
        octets,
        total_packets: stats.packets,
        total_octets: stats.octets,
        start_unix_ns: unix(start_ns),
        end_unix_ns: unix(stats.last_seen_ns),
        tcp_flags: stats.tcp_flags,
        min_ttl: stats.min_ttl,
        max_ttl: stats.max_ttl,
        tos: stats.tos,
        reason,
    })
}

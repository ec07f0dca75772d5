//! A scan of the cache, fed chunk by chunk so that the agent never holds a
//! snapshot of the whole cache (a million flows would be ~110 MB):
//! [`Aging::begin_scan`], [`Aging::scan_chunk`] per chunk, then
//! [`Aging::end_scan`], which says whether the cache is nearly full and, if
//! so, returns the [`Eviction`] chosen during the walk (no second walk).
//!
//! A flow that stays (no expiry in this scan) is offered as an eviction
//! candidate: at most `capacity - low watermark` of them are kept.

use flowctl_model::FlowEntry;

use crate::{eviction::Candidates, Aging, Eviction, Expiry};

/// One scan in progress.
#[derive(Debug)]
pub struct ScanPass {
    now_ns: u64,
    generation: u64,
    capacity: u32,
    /// Flows seen so far with no expiry in this scan.
    staying: usize,
    /// The oldest of them, as many as an eviction could take.
    candidates: Candidates,
}

impl ScanPass {
    /// Flows seen so far that stay in the cache.
    pub fn staying(&self) -> usize {
        self.staying
    }
}

impl Aging {
    /// Starts a scan, at boot time `now_ns`, of a cache holding at most
    /// `capacity` flows, and at most `occupancy` now if that is known: when
    /// it is below the high watermark no eviction can follow, and the scan
    /// does not spend time choosing candidates.
    pub fn begin_scan(&mut self, now_ns: u64, capacity: u32, occupancy: Option<usize>) -> ScanPass {
        self.generation += 1;
        let high = (self.watermarks.high * f64::from(capacity)) as usize;
        let candidates = match occupancy {
            Some(n) if n < high.max(1) => Candidates::none(),
            _ => Candidates::new(self.watermarks, capacity),
        };
        ScanPass {
            now_ns,
            generation: self.generation,
            capacity,
            staying: 0,
            candidates,
        }
    }

    /// Decides which flows of one chunk to report now, appending them to
    /// `out`. Every flow of the cache must be in exactly one chunk.
    pub fn scan_chunk(&mut self, pass: &mut ScanPass, chunk: &[FlowEntry], out: &mut Vec<Expiry>) {
        for entry in chunk {
            match self.decide(&entry.key, &entry.stats, pass.now_ns, pass.generation) {
                Some(reason) => out.push(Expiry {
                    slot: entry.slot,
                    key: entry.key,
                    stats: entry.stats,
                    reason,
                }),
                None => {
                    pass.staying += 1;
                    pass.candidates.offer(entry);
                }
            }
        }
    }

    /// Ends the scan: forgets the state of flows that are gone, and if the
    /// flows that stay reach the high watermark, returns the eviction down
    /// to the low one (the least recently active flows first, then by key).
    pub fn end_scan(&mut self, pass: ScanPass) -> Option<Eviction> {
        let ScanPass {
            now_ns,
            generation,
            capacity,
            staying,
            candidates,
        } = pass;
        // Carried totals wait for the flow's next entry up to its idle timeout.
        let timeouts = self.timeouts;
        self.tracked.retain(|k, t| {
            t.seen_in == generation
                || t.carried
                    .is_some_and(|c| now_ns.saturating_sub(c.last_ns) < timeouts.idle_for(k.protocol).as_nanos() as u64)
        });
        Eviction::plan(candidates, staying, self.watermarks, capacity)
    }
}

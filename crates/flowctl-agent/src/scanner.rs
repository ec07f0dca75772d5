//! The blocking half of the agent: reads the pinned cache, runs aging, and
//! takes ended flows out of the map atomically.
//!
//! A pass walks the cache a batch at a time (`FlowTable::walk`): each chunk
//! is aged and its expired flows taken before the next chunk is read, so
//! memory is one batch plus the eviction candidates (at most 1.5 times the
//! flows between the low watermark and the capacity) plus the records,
//! never a copy of the whole cache. Evicted flows (the oldest that stay
//! when the cache is nearly full) are chosen during that walk and taken
//! after it, one read-and-delete each.
//!
//! Taking a flow is one system call (~1-2 µs), which dominates a pass where
//! most flows end (a burst of short flows going idle together). So when at
//! least 90 % of a chunk expired, the next chunk is read with
//! `BPF_MAP_LOOKUP_AND_DELETE_BATCH` instead: its expired flows are already
//! out with their final counters, and the few that stay are put back
//! (`BPF_NOEXIST`, counters unchanged). The walk returns to plain reads after
//! a chunk with fewer expiries.
//!
//! The `*_into` passes hand their records to a sink in chunks of about
//! [`CHUNK_RECORDS`] as they walk (between two reads of the cache), so a
//! pass that ends a million flows never holds all their records at once;
//! the sink may block (the agent waits for its collectors there).

use std::time::{Duration, Instant};

use flowctl_aging::{Aging, EndReason, Expiry, FlowRecord, Timeouts, Watermarks};
use flowctl_common::{DatapathCounters, FlowKey};
use flowctl_datapath::{
    clock::{boot_time_ns, BootClock},
    flow_table::{PutBack, ReadMode},
    FlowStats, FlowTable, PinLayout,
};

/// Records a pass hands to its sink at a time (about 3.5 MiB).
pub const CHUNK_RECORDS: usize = 32_768;

/// Where a pass hands its records, a chunk at a time.
pub type RecordSink<'a> = &'a mut dyn FnMut(Vec<FlowRecord>);

/// What one scan produced.
#[derive(Debug, Default)]
pub struct ScanOutcome {
    /// Records to export (empty after a pass that handed them to a sink).
    pub records: Vec<FlowRecord>,
    /// Records made, per flowEndReason (index = reason value), whether kept
    /// in `records` or handed to a sink.
    pub records_made: [u64; 6],
    /// Flows in the cache when it was read.
    pub flows: usize,
    /// Cache capacity.
    pub capacity: u32,
    /// Datapath counters (not recorded, non-IP, malformed).
    pub counters: DatapathCounters,
    /// Flows ended, per flowEndReason (index = reason value).
    pub ended: [u64; 6],
    /// How long the scan took.
    pub duration: Duration,
}

/// The flow cache plus the aging state.
pub struct Scanner {
    table: FlowTable,
    aging: Aging,
    /// Flows read by draining (mass expiry) since the scanner was opened.
    drained: u64,
    /// Records per hand-over to a sink.
    chunk_records: usize,
}

impl ScanOutcome {
    fn record(&mut self, record: Option<FlowRecord>) {
        if let Some(r) = record {
            self.records_made[r.reason as usize] += 1;
            self.records.push(r);
        }
    }
}

/// Hands the records of a pass over, if it has a sink.
struct Handover<'a> {
    sink: Option<RecordSink<'a>>,
    chunk: usize,
}

impl Handover<'_> {
    /// Hands the records over once there are a chunk's worth.
    fn when_full(&mut self, out: &mut ScanOutcome) {
        if out.records.len() >= self.chunk {
            self.now(out, Vec::with_capacity(self.chunk));
        }
    }

    /// Hands every record left over (end of the pass).
    fn rest(&mut self, out: &mut ScanOutcome) {
        if !out.records.is_empty() {
            self.now(out, Vec::new());
        }
    }

    fn now(&mut self, out: &mut ScanOutcome, next: Vec<FlowRecord>) {
        if let Some(sink) = &mut self.sink {
            sink(std::mem::replace(&mut out.records, next));
        }
    }
}

impl Scanner {
    /// Opens the pinned cache under `layout`.
    pub fn open(layout: &PinLayout, timeouts: Timeouts) -> flowctl_datapath::Result<Self> {
        Ok(Self {
            table: FlowTable::open(layout)?,
            aging: Aging::new(timeouts, Watermarks::default()),
            drained: 0,
            chunk_records: CHUNK_RECORDS,
        })
    }

    /// Applies new timers (reload).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.aging.set_timeouts(timeouts);
    }

    /// Changes the eviction watermarks (default: 90 % → 80 %).
    pub fn set_watermarks(&mut self, watermarks: Watermarks) {
        self.aging.set_watermarks(watermarks);
    }

    /// Flows read by draining walks (chunks after a mass expiry) so far.
    pub fn drained_flows(&self) -> u64 {
        self.drained
    }

    /// Flows read per system call (default: about 1 MiB of keys and
    /// values); for tests and benchmarks.
    pub fn set_batch_size(&mut self, flows: usize) {
        self.table.set_read_mode(ReadMode::Batch, flows);
    }

    /// Records per hand-over to a sink (default [`CHUNK_RECORDS`]); for
    /// tests and benchmarks.
    pub fn set_chunk_records(&mut self, records: usize) {
        self.chunk_records = records.max(1);
    }

    /// One aging pass, its records kept in the outcome.
    pub fn scan(&mut self) -> flowctl_datapath::Result<ScanOutcome> {
        self.scan_pass(None)
    }

    /// One aging pass that hands its records to `sink` in chunks as it walks.
    pub fn scan_into(&mut self, sink: RecordSink<'_>) -> flowctl_datapath::Result<ScanOutcome> {
        self.scan_pass(Some(sink))
    }

    fn scan_pass(&mut self, sink: Option<RecordSink<'_>>) -> flowctl_datapath::Result<ScanOutcome> {
        let mut handover = Handover {
            sink,
            chunk: self.chunk_records,
        };
        let started = Instant::now();
        let clock = BootClock::now();
        let now_ns = boot_time_ns();
        let capacity = self.table.max_flows();
        let mut out = ScanOutcome {
            capacity,
            ..Default::default()
        };
        let Self {
            table, aging, drained, ..
        } = self;
        let mut pass = aging.begin_scan(now_ns, capacity);
        let mut expiries = Vec::new();
        let mut walk = table.walk();
        loop {
            let draining = walk.drains();
            let Some(chunk) = walk.next_chunk()? else { break };
            out.flows += chunk.len();
            aging.scan_chunk(&mut pass, chunk, &mut expiries);
            let mass_expiry = expiries.len() * 10 >= chunk.len() * MASS_EXPIRY_TENTHS;
            if draining {
                *drained += chunk.len() as u64;
                settle_drained(table, aging, chunk, &expiries, &clock, &mut out)?;
                expiries.clear();
            } else {
                // Flows of walked buckets leave the map: the walk goes on unaffected.
                for e in expiries.drain(..) {
                    take(table, aging, &e, &clock, &mut out)?;
                }
            }
            walk.set_drain(mass_expiry);
            handover.when_full(&mut out);
        }
        drop(walk);
        // The oldest staying flows were picked during the walk: no second one.
        if let Some(eviction) = aging.end_scan(pass) {
            for e in eviction.into_expiries() {
                take(table, aging, &e, &clock, &mut out)?;
                handover.when_full(&mut out);
            }
        }
        handover.rest(&mut out);
        out.counters = table.counters()?;
        out.duration = started.elapsed();
        Ok(out)
    }

    /// Ends every flow (reason 4): flush and shutdown. The cache is drained
    /// a batch of hash buckets per system call, each flow read and deleted
    /// in one step.
    pub fn end_all(&mut self) -> flowctl_datapath::Result<ScanOutcome> {
        self.end_all_pass(None)
    }

    /// [`Self::end_all`], handing the records to `sink` in chunks as the
    /// cache drains.
    pub fn end_all_into(&mut self, sink: RecordSink<'_>) -> flowctl_datapath::Result<ScanOutcome> {
        self.end_all_pass(Some(sink))
    }

    fn end_all_pass(&mut self, sink: Option<RecordSink<'_>>) -> flowctl_datapath::Result<ScanOutcome> {
        let mut handover = Handover {
            sink,
            chunk: self.chunk_records,
        };
        let started = Instant::now();
        let clock = BootClock::now();
        let mut out = ScanOutcome {
            capacity: self.table.max_flows(),
            ..Default::default()
        };
        let mut drain = self.table.drain();
        while let Some(chunk) = drain.next_chunk()? {
            out.flows += chunk.len();
            out.ended[EndReason::ForcedEnd as usize] += chunk.len() as u64;
            for (key, last) in chunk {
                out.record(self.aging.finish(key, last, EndReason::ForcedEnd, &clock));
            }
            handover.when_full(&mut out);
        }
        handover.rest(&mut out);
        out.counters = self.table.counters()?;
        out.duration = started.elapsed();
        Ok(out)
    }
}

/// The share of a chunk (in tenths) whose flows must expire for the next
/// chunk to be drained rather than read.
const MASS_EXPIRY_TENTHS: usize = 9;

/// A chunk read by a draining walk is out of the cache with its final
/// counters: records the expired flows, puts the others back. A flow that
/// cannot go back (a packet re-created it meanwhile, or the cache filled up)
/// is reported now, as an active-timeout record (its totals carry over to
/// the new entry) or for lack of resources; nothing counted is lost.
fn settle_drained(
    table: &FlowTable,
    aging: &mut Aging,
    chunk: &[(FlowKey, FlowStats)],
    expiries: &[Expiry],
    clock: &BootClock,
    out: &mut ScanOutcome,
) -> flowctl_datapath::Result<()> {
    // Expiries come in chunk order: one merge pass tells the two apart.
    let mut expired = expiries.iter().peekable();
    for (key, stats) in chunk {
        let reason = match expired.next_if(|e| e.key == *key) {
            Some(e) => e.reason,
            None => match table.put_back(key, stats)? {
                PutBack::Restored => continue,
                PutBack::Exists => EndReason::ActiveTimeout,
                PutBack::Full => EndReason::LackOfResources,
            },
        };
        out.ended[reason as usize] += 1;
        out.record(aging.finish(key, stats, reason, clock));
    }
    Ok(())
}

/// Takes one expired flow out of the cache and records it. Every record,
/// active timeouts included, is built from counters read and deleted in one
/// step: the cache never holds what was exported, so an agent restarted
/// after a crash cannot export it again (docs/operations.md, "Failure
/// behaviour").
fn take(
    table: &FlowTable,
    aging: &mut Aging,
    e: &Expiry,
    clock: &BootClock,
    out: &mut ScanOutcome,
) -> flowctl_datapath::Result<()> {
    // An evicted flow that was active since the walk read it goes back; if
    // it cannot, its counters are reported now (nothing counted is lost).
    let Some(last) = table.take(&e.key)? else {
        aging.forget(&e.key);
        return Ok(());
    };
    let reason = if e.still_due(&last) {
        e.reason
    } else {
        match table.put_back(&e.key, &last)? {
            PutBack::Restored => return Ok(()),
            PutBack::Exists => EndReason::ActiveTimeout,
            PutBack::Full => EndReason::LackOfResources,
        }
    };
    out.ended[reason as usize] += 1;
    out.record(aging.finish(&e.key, &last, reason, clock));
    Ok(())
}

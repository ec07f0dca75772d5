//! One aging pass over a [`FlowSource`]: walks the cache, ages each chunk,
//! takes the flows that are reported out of the cache, and hands their
//! records to a sink. Generic over the source, so the rules that lose
//! nothing are the same against the pinned eBPF map and against the
//! in-memory fake the unit tests use.
//!
//! A pass walks the cache a chunk at a time: each chunk is aged and its
//! reported flows taken before the next chunk is read, so memory is one
//! chunk plus the eviction candidates (at most 1.5 times the flows between
//! the low watermark and the capacity) plus the records, never a copy of the
//! whole cache. Evicted flows (the oldest that stay when the cache is nearly
//! full) are chosen during that walk and taken after it.
//!
//! Taking a flow is one system call on the real cache (~1-2 µs), which
//! dominates a pass where most flows end (a burst of short flows going idle
//! together). So when at least 90 % of a chunk expired, the next chunk is
//! read and deleted in one step instead (a draining walk): its expired flows
//! are already out with their final counters, and the few that stay are put
//! back, counters unchanged. The walk returns to plain reads after a chunk
//! with fewer expiries.
//!
//! Records go to the sink in chunks of about [`CHUNK_RECORDS`] as the pass
//! walks (between two reads of the cache), so a pass that ends a million
//! flows never holds all their records at once; the sink may block (the
//! agent waits for its collectors there).

use std::time::{Duration, Instant};

use flowctl_model::{
    BootClock, DatapathCounters, EndReason, FlowEntry, FlowKey, FlowRecord, FlowSource, FlowStats, FlowWalk, PutBack,
    ReasonCounts,
};

use crate::{Aging, Expiry, Timeouts, Watermarks};

/// Records a pass hands to its sink at a time (about 3.5 MiB).
pub const CHUNK_RECORDS: usize = 32_768;

/// The share of a chunk (in tenths) whose flows must expire for the next
/// chunk to be drained rather than read.
const MASS_EXPIRY_TENTHS: usize = 9;

/// Where a pass hands its records, a chunk at a time.
pub type RecordSink<'a> = &'a mut dyn FnMut(Vec<FlowRecord>);

/// What one pass did.
#[derive(Debug, Default)]
pub struct ScanOutcome {
    /// Records made (and handed to the sink), per reason.
    pub records_made: ReasonCounts,
    /// Flows in the cache when it was read.
    pub flows: usize,
    /// Cache capacity.
    pub capacity: u32,
    /// Datapath counters (not recorded, non-IP, malformed).
    pub counters: DatapathCounters,
    /// Flows taken out of the cache, per reason.
    pub ended: ReasonCounts,
    /// How long the pass took.
    pub duration: Duration,
}

/// A flow cache and the aging state of its flows.
pub struct Scanner<S> {
    source: S,
    aging: Aging,
    /// Flows read by draining walks (chunks after a mass expiry) so far.
    drained: u64,
    /// Records per hand-over to a sink.
    chunk_records: usize,
}

impl<S: FlowSource> Scanner<S> {
    /// Ages `source` with these timers and watermarks.
    pub fn new(source: S, timeouts: Timeouts, watermarks: Watermarks) -> Self {
        Self {
            source,
            aging: Aging::new(timeouts, watermarks),
            drained: 0,
            chunk_records: CHUNK_RECORDS,
        }
    }

    /// The flow cache.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The flow cache, to change how it is read (tests and benchmarks).
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// Ages `source` from now on (the cache was replaced); returns the old
    /// one. The aging state is kept.
    pub fn replace_source(&mut self, source: S) -> S {
        std::mem::replace(&mut self.source, source)
    }

    /// The aging state.
    pub fn aging(&self) -> &Aging {
        &self.aging
    }

    /// Applies new timers (reload).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.aging.set_timeouts(timeouts);
    }

    /// Changes the eviction watermarks.
    pub fn set_watermarks(&mut self, watermarks: Watermarks) {
        self.aging.set_watermarks(watermarks);
    }

    /// Flows read by draining walks (chunks after a mass expiry) so far.
    pub fn drained_flows(&self) -> u64 {
        self.drained
    }

    /// Records per hand-over to a sink (default [`CHUNK_RECORDS`]).
    pub fn set_chunk_records(&mut self, records: usize) {
        self.chunk_records = records.max(1);
    }

    /// One aging pass: every flow that is due is taken out of the cache and
    /// its record handed to `sink`. If the cache fails in the middle, the
    /// records of the flows already taken out are handed over before the
    /// error is returned: nothing taken out of the cache is dropped.
    pub fn scan(&mut self, sink: RecordSink<'_>) -> Result<ScanOutcome, S::Error> {
        let started = Instant::now();
        let mut pass = Pass::new(&self.source, sink, self.chunk_records);
        let walked = self.walk_and_take(&mut pass);
        pass.finish(&self.source, started, walked)
    }

    /// Ends every flow (reason 4): flush and shutdown. The cache is drained
    /// a chunk at a time, each flow read and deleted in one step; what was
    /// drained before an error is handed over before it is returned.
    pub fn end_all(&mut self, sink: RecordSink<'_>) -> Result<ScanOutcome, S::Error> {
        let started = Instant::now();
        let mut pass = Pass::new(&self.source, sink, self.chunk_records);
        let drained = self.drain_all(&mut pass);
        pass.finish(&self.source, started, drained)
    }

    /// Ends the flows `select` picks (reason 4): a flush. Each is read and
    /// deleted in one step as the cache is walked.
    pub fn end_where(
        &mut self,
        select: impl Fn(&FlowKey) -> bool,
        sink: RecordSink<'_>,
    ) -> Result<ScanOutcome, S::Error> {
        let started = Instant::now();
        let mut pass = Pass::new(&self.source, sink, self.chunk_records);
        let taken = self.take_where(&select, &mut pass);
        pass.finish(&self.source, started, taken)
    }

    fn take_where(&mut self, select: &dyn Fn(&FlowKey) -> bool, pass: &mut Pass<'_>) -> Result<(), S::Error> {
        let mut chosen = Vec::new();
        let mut walk = self.source.walk();
        while let Some(chunk) = walk.next_chunk()? {
            pass.out.flows += chunk.len();
            chosen.extend(chunk.iter().filter(|(k, _)| select(k)).map(|(k, s)| Expiry {
                key: *k,
                stats: *s,
                reason: EndReason::ForcedEnd,
            }));
            for e in chosen.drain(..) {
                pass.take(&self.source, &mut self.aging, &e)?;
            }
            pass.hand_over_if_full();
        }
        Ok(())
    }

    fn walk_and_take(&mut self, pass: &mut Pass<'_>) -> Result<(), S::Error> {
        let Self {
            source, aging, drained, ..
        } = self;
        let mut scan = aging.begin_scan(source.now_ns(), pass.out.capacity);
        let mut expiries = Vec::new();
        let mut walk = source.walk();
        loop {
            let draining = walk.drains();
            let Some(chunk) = walk.next_chunk()? else { break };
            pass.out.flows += chunk.len();
            aging.scan_chunk(&mut scan, chunk, &mut expiries);
            let mass_expiry = expiries.len() * 10 >= chunk.len() * MASS_EXPIRY_TENTHS;
            if draining {
                *drained += chunk.len() as u64;
                let settled = pass.settle_drained(source, aging, chunk, &expiries);
                expiries.clear();
                settled?;
            } else {
                // Flows of walked buckets leave the map: the walk goes on unaffected.
                for e in expiries.drain(..) {
                    pass.take(source, aging, &e)?;
                }
            }
            walk.set_drain(mass_expiry);
            pass.hand_over_if_full();
        }
        drop(walk);
        // The oldest staying flows were picked during the walk: no second one.
        if let Some(eviction) = aging.end_scan(scan) {
            for e in eviction.into_expiries() {
                pass.take(source, aging, &e)?;
                pass.hand_over_if_full();
            }
        }
        Ok(())
    }

    fn drain_all(&mut self, pass: &mut Pass<'_>) -> Result<(), S::Error> {
        let mut drain = self.source.drain();
        while let Some(chunk) = drain.next_chunk()? {
            pass.out.flows += chunk.len();
            for (key, last) in chunk {
                pass.record(&mut self.aging, key, last, EndReason::ForcedEnd);
            }
            pass.hand_over_if_full();
        }
        Ok(())
    }
}

/// A pass in progress: its records not yet handed over, and its outcome.
struct Pass<'a> {
    sink: RecordSink<'a>,
    chunk: usize,
    clock: BootClock,
    records: Vec<FlowRecord>,
    out: ScanOutcome,
}

impl<'a> Pass<'a> {
    fn new(source: &impl FlowSource, sink: RecordSink<'a>, chunk: usize) -> Self {
        Self {
            sink,
            chunk,
            clock: source.boot_clock(),
            records: Vec::new(),
            out: ScanOutcome {
                capacity: source.capacity(),
                ..Default::default()
            },
        }
    }

    /// Ends a flow taken out of the cache: its record, counted by reason.
    fn record(&mut self, aging: &mut Aging, key: &FlowKey, last: &FlowStats, reason: EndReason) {
        self.out.ended.add(reason, 1);
        self.out.records_made.add(reason, 1);
        self.records.push(aging.finish(key, last, reason, &self.clock));
    }

    /// Takes one reported flow out of the cache and records it. An evicted
    /// flow that was active since the walk read it goes back; if it cannot,
    /// its counters are reported now (nothing counted is lost).
    fn take<S: FlowSource>(&mut self, source: &S, aging: &mut Aging, e: &Expiry) -> Result<(), S::Error> {
        let Some(last) = source.take(&e.key)? else {
            aging.forget(&e.key);
            return Ok(());
        };
        let reason = if e.still_due(&last) {
            e.reason
        } else {
            match source.put_back(&e.key, &last)? {
                PutBack::Restored => return Ok(()),
                PutBack::Exists => EndReason::ActiveTimeout,
                PutBack::Full => EndReason::LackOfResources,
            }
        };
        self.record(aging, &e.key, &last, reason);
        Ok(())
    }

    /// A chunk read by a draining walk is out of the cache with its final
    /// counters: records the expired flows, puts the others back. A flow
    /// that cannot go back (a packet re-created it meanwhile, the cache
    /// filled up, or putting it back failed) is reported now, as an
    /// active-timeout record (its totals carry over to the new entry) or
    /// for lack of resources. The whole chunk is settled even after an
    /// error, which is returned at the end.
    fn settle_drained<S: FlowSource>(
        &mut self,
        source: &S,
        aging: &mut Aging,
        chunk: &[FlowEntry],
        expiries: &[Expiry],
    ) -> Result<(), S::Error> {
        // Expiries come in chunk order: one merge pass tells the two apart.
        let mut expired = expiries.iter().peekable();
        let mut failed = None;
        for (key, stats) in chunk {
            let reason = match expired.next_if(|e| e.key == *key) {
                Some(e) => e.reason,
                None => match source.put_back(key, stats) {
                    Ok(PutBack::Restored) => continue,
                    Ok(PutBack::Exists) => EndReason::ActiveTimeout,
                    Ok(PutBack::Full) => EndReason::LackOfResources,
                    Err(e) => {
                        failed.get_or_insert(e);
                        EndReason::ActiveTimeout
                    }
                },
            };
            self.record(aging, key, stats, reason);
        }
        failed.map_or(Ok(()), Err)
    }

    /// Hands the records over once there are a chunk's worth.
    fn hand_over_if_full(&mut self) {
        if self.records.len() >= self.chunk {
            let next = Vec::with_capacity(self.chunk);
            (self.sink)(std::mem::replace(&mut self.records, next));
        }
    }

    /// Hands the rest over, then returns the pass's error if it had one,
    /// else the outcome.
    fn finish<S: FlowSource>(
        mut self,
        source: &S,
        started: Instant,
        pass: Result<(), S::Error>,
    ) -> Result<ScanOutcome, S::Error> {
        if !self.records.is_empty() {
            (self.sink)(std::mem::take(&mut self.records));
        }
        pass?;
        self.out.counters = source.counters()?;
        self.out.duration = started.elapsed();
        Ok(self.out)
    }
}

//! One aging pass over a [`FlowSource`]: walks the cache, ages each chunk,
//! closes the flows that are reported, then settles them and hands their
//! records to a sink. Generic over the source, so the rules that lose
//! nothing are the same against the pinned eBPF maps and against the
//! in-memory fake the unit tests use.
//!
//! A pass walks the cache a chunk at a time: each chunk is aged and its
//! reported flows closed (their keys leave the cache: their next packets
//! start new entries) before the next chunk is read, so memory is one chunk
//! plus the eviction candidates (at most 1.5 times the flows between the low
//! watermark and the capacity), never a copy of the whole cache. Evicted
//! flows (the oldest that stay when the cache is nearly full) are chosen
//! during that walk and closed after it. Then one settle waits until no
//! packet can still land in a closed flow (one RCU grace period on the real
//! cache, for the whole pass) and hands every closed flow over with its
//! final counters; their records go to the sink in chunks of about
//! [`CHUNK_RECORDS`], so a pass that ends a million flows never holds all
//! their records at once. The sink may block (the agent waits for its
//! collectors there).

use std::time::{Duration, Instant};

use flowctl_model::{
    BootClock, DatapathCounters, EndReason, Ending, FlowKey, FlowRecord, FlowSource, FlowStats, FlowWalk, ReasonCounts,
};

use crate::{Aging, Timeouts, Watermarks};

/// Records a pass hands to its sink at a time (about 3.5 MiB).
pub const CHUNK_RECORDS: usize = 32_768;

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
    /// Records per hand-over to a sink.
    chunk_records: usize,
}

impl<S: FlowSource> Scanner<S> {
    /// Ages `source` with these timers and watermarks.
    pub fn new(source: S, timeouts: Timeouts, watermarks: Watermarks) -> Self {
        Self {
            source,
            aging: Aging::new(timeouts, watermarks),
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

    /// Whether totals carry over active timeouts ([`Aging::set_carry_totals`]).
    pub fn set_carry_totals(&mut self, carry: bool) {
        self.aging.set_carry_totals(carry);
    }

    /// Changes the eviction watermarks.
    pub fn set_watermarks(&mut self, watermarks: Watermarks) {
        self.aging.set_watermarks(watermarks);
    }

    /// Records per hand-over to a sink (default [`CHUNK_RECORDS`]).
    pub fn set_chunk_records(&mut self, records: usize) {
        self.chunk_records = records.max(1);
    }

    /// One aging pass: every flow that is due is closed, settled, and its
    /// record handed to `sink`. If the cache fails in the middle, the flows
    /// already closed are still settled and handed over before the error is
    /// returned: nothing taken out of the cache is dropped.
    pub fn scan(&mut self, sink: RecordSink<'_>) -> Result<ScanOutcome, S::Error> {
        let started = Instant::now();
        let walked = self.walk_and_close();
        self.settle_and_finish(sink, started, walked)
    }

    /// Ends every flow (reason 4): flush and shutdown.
    pub fn end_all(&mut self, sink: RecordSink<'_>) -> Result<ScanOutcome, S::Error> {
        self.end_where(|_| true, sink)
    }

    /// Ends the flows `select` picks (reason 4): a flush.
    pub fn end_where(
        &mut self,
        select: impl Fn(&FlowKey) -> bool,
        sink: RecordSink<'_>,
    ) -> Result<ScanOutcome, S::Error> {
        let started = Instant::now();
        let closed = self.close_where(&select);
        self.settle_and_finish(sink, started, closed)
    }

    /// Closes the flows `select` picks; returns how many flows were walked.
    fn close_where(&mut self, select: &dyn Fn(&FlowKey) -> bool) -> Result<usize, S::Error> {
        let source = &self.source;
        let mut flows = 0;
        let mut endings = Vec::new();
        let mut walk = source.walk();
        while let Some(chunk) = walk.next_chunk()? {
            flows += chunk.len();
            endings.extend(
                chunk
                    .iter()
                    .filter(|e| select(&e.key))
                    .map(|e| Ending::of(e, EndReason::ForcedEnd)),
            );
            close(source, &mut endings)?;
        }
        Ok(flows)
    }

    /// Ages every flow and closes the reported ones; returns how many flows
    /// were walked.
    fn walk_and_close(&mut self) -> Result<usize, S::Error> {
        let Self { source, aging, .. } = self;
        let mut scan = aging.begin_scan(source.now_ns(), source.capacity(), source.occupancy_bound());
        let mut flows = 0;
        let mut expiries = Vec::new();
        let mut endings = Vec::new();
        let mut walk = source.walk();
        while let Some(chunk) = walk.next_chunk()? {
            flows += chunk.len();
            aging.scan_chunk(&mut scan, chunk, &mut expiries);
            endings.extend(expiries.drain(..).map(|e| e.ending()));
            close(&*source, &mut endings)?;
        }
        drop(walk);
        // The oldest staying flows were picked during the walk: no second one.
        if let Some(eviction) = aging.end_scan(scan) {
            endings.extend(eviction.into_expiries().iter().map(|e| e.ending()));
            close(&*source, &mut endings)?;
        }
        Ok(flows)
    }

    /// Settles every closed flow into records handed to `sink`, then
    /// returns the walk's error if it had one, else the outcome.
    fn settle_and_finish(
        &mut self,
        sink: RecordSink<'_>,
        started: Instant,
        walked: Result<usize, S::Error>,
    ) -> Result<ScanOutcome, S::Error> {
        let Self {
            source,
            aging,
            chunk_records,
        } = self;
        let mut pass = Pass::new(&*source, sink, *chunk_records);
        let settled = source.settle(&mut |ending, last| {
            pass.record(aging, &ending.key, &last, ending.reason);
            pass.hand_over_if_full();
        });
        pass.out.flows = *walked.as_ref().unwrap_or(&0);
        pass.finish(&*source, started, walked.and(settled))
    }
}

/// Closes `endings` in the cache and empties the list.
fn close<S: FlowSource>(source: &S, endings: &mut Vec<Ending>) -> Result<(), S::Error> {
    if endings.is_empty() {
        return Ok(());
    }
    let result = source.close(endings);
    endings.clear();
    result
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

    /// Ends a flow settled out of the cache: its record, counted by reason.
    fn record(&mut self, aging: &mut Aging, key: &FlowKey, last: &FlowStats, reason: EndReason) {
        self.out.ended.add(reason, 1);
        self.out.records_made.add(reason, 1);
        self.records.push(aging.finish(key, last, reason, &self.clock));
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

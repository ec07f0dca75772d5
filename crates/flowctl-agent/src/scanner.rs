//! The blocking half of the agent: reads the pinned cache, runs aging, and
//! takes ended flows out of the map atomically.

use std::time::{Duration, Instant};

use flowctl_aging::{Aging, Expiry, FlowRecord, Timeouts, Watermarks};
use flowctl_common::DatapathCounters;
use flowctl_datapath::{
    clock::{boot_time_ns, BootClock},
    FlowTable, PinLayout,
};

/// What one scan produced.
#[derive(Debug, Default)]
pub struct ScanOutcome {
    /// Records to export.
    pub records: Vec<FlowRecord>,
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
}

impl Scanner {
    /// Opens the pinned cache under `layout`.
    pub fn open(layout: &PinLayout, timeouts: Timeouts) -> flowctl_datapath::Result<Self> {
        Ok(Self {
            table: FlowTable::open(layout)?,
            aging: Aging::new(timeouts, Watermarks::default()),
        })
    }

    /// Applies new timers (reload).
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.aging.set_timeouts(timeouts);
    }

    /// One aging pass.
    pub fn scan(&mut self) -> flowctl_datapath::Result<ScanOutcome> {
        self.pass(false)
    }

    /// Ends every flow (reason 4): flush and shutdown.
    pub fn end_all(&mut self) -> flowctl_datapath::Result<ScanOutcome> {
        self.pass(true)
    }

    fn pass(&mut self, force: bool) -> flowctl_datapath::Result<ScanOutcome> {
        let started = Instant::now();
        let clock = BootClock::now();
        let now_ns = boot_time_ns();
        let snapshot = self.table.read_all()?;
        let capacity = self.table.max_flows();
        let expiries = if force {
            self.aging.force_all(&snapshot)
        } else {
            self.aging.scan(&snapshot, now_ns, capacity)
        };
        let mut out = ScanOutcome {
            flows: snapshot.len(),
            capacity,
            ..Default::default()
        };
        for Expiry { key, reason, .. } in expiries {
            // Every record, active timeouts included, is built from counters
            // read and deleted in one step: the cache never holds what was
            // exported, so an agent restarted after a crash cannot export it
            // again (docs/operations.md, "Failure behaviour").
            let record = match self.table.take(&key)? {
                Some(last) => {
                    out.ended[reason as usize] += 1;
                    self.aging.finish(&key, &last, reason, &clock)
                }
                None => {
                    self.aging.forget(&key);
                    None
                }
            };
            out.records.extend(record);
        }
        out.counters = self.table.counters()?;
        out.duration = started.elapsed();
        Ok(out)
    }
}

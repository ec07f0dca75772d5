//! The pinned flow cache, opened from any process: read, count, delete.
//! It is the [`FlowSource`] the agent's scanner ages.
//!
//! Reading walks the map with batch system calls ([`TableWalk`]), a few
//! thousand flows per call; a kernel that refuses them gets the per-key walk.

mod walk;

use std::os::fd::AsFd;

use aya::maps::{Map, MapData, PerCpuArray};
use flowctl_model::{BootClock, DatapathCounters, FlowEntry, FlowKey, FlowSource, FlowStats, FlowWalk, PutBack};

pub use walk::{ReadMode, TableWalk};

use crate::{attach::pinned_flows_map, map_ops::PerCpuHash, Error, PinLayout, Result};

/// Per-CPU buffer budget of one batch call: batches hold about this many
/// bytes of keys and values, whatever the number of CPUs.
const BATCH_BYTES: usize = 1 << 20;

/// The pinned flow cache and datapath counters.
pub struct FlowTable {
    flows: PerCpuHash<FlowKey, FlowStats>,
    counters: PerCpuArray<MapData, DatapathCounters>,
    max_flows: u32,
    /// Kernel id of the flow map, to tell when the pinned one is another.
    map_id: u32,
    batch_size: usize,
    mode: ReadMode,
}

impl FlowTable {
    /// Opens the pinned maps, refusing ones of another layout.
    pub fn open(layout: &PinLayout) -> Result<Self> {
        let flows_path = layout.flows_map();
        let info = pinned_flows_map(layout)?.ok_or_else(|| Error::NotAttached(flows_path.clone()))?;
        let open = |path: std::path::PathBuf| {
            MapData::from_pin(&path).map_err(|e| Error::bpf(format!("opening pinned map {}", path.display()), e))
        };
        let flows_map = open(flows_path)?;
        let flows = PerCpuHash::new(flows_map.fd().as_fd()).map_err(|e| Error::io("opening the flow cache", e))?;
        let counters = PerCpuArray::try_from(Map::PerCpuArray(open(layout.counters_map())?))
            .map_err(|e| Error::bpf("opening the datapath counters", e))?;
        let entry_bytes = size_of::<FlowKey>() + size_of::<FlowStats>() * flows.possible_cpus();
        Ok(Self {
            flows,
            counters,
            max_flows: info.max_entries(),
            map_id: info.id(),
            batch_size: (BATCH_BYTES / entry_bytes).clamp(64, 16384),
            mode: ReadMode::Batch,
        })
    }

    /// A new table if the cache pinned under `layout` is no longer the map
    /// this one reads (`flowctl detach --all --purge`, then an attach that
    /// created another cache); `None` while it is the same, or while
    /// nothing is pinned.
    pub fn reopen_if_replaced(&self, layout: &PinLayout) -> Result<Option<FlowTable>> {
        match pinned_flows_map(layout)? {
            Some(info) if info.id() != self.map_id => FlowTable::open(layout).map(Some),
            _ => Ok(None),
        }
    }

    /// Number of per-CPU slots of every flow.
    pub fn possible_cpus(&self) -> usize {
        self.flows.possible_cpus()
    }

    /// Flows read per batch call.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Chooses how flows are read ([`ReadMode::Batch`] unless changed) and
    /// how many per call; for benchmarks and tests of the per-key path.
    pub fn set_read_mode(&mut self, mode: ReadMode, batch_size: usize) {
        self.mode = mode;
        self.batch_size = batch_size.max(1);
    }

    /// Keys present now.
    pub fn keys(&self) -> Result<Vec<FlowKey>> {
        let mut keys = Vec::new();
        let mut walk = self.walk();
        while let Some(chunk) = walk.next_chunk()? {
            keys.extend(chunk.iter().map(|(k, _)| *k));
        }
        Ok(keys)
    }

    /// Number of flows in the cache.
    pub fn len(&self) -> Result<usize> {
        let mut n = 0;
        let mut walk = self.walk();
        while let Some(chunk) = walk.next_chunk()? {
            n += chunk.len();
        }
        Ok(n)
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.walk().next_chunk()?.is_none())
    }

    /// Every flow with its counters summed over CPUs. Each flow is returned
    /// at most once even while the datapath inserts and deletes entries.
    pub fn read_all(&self) -> Result<Vec<FlowEntry>> {
        let mut out = Vec::new();
        let mut walk = self.walk();
        while let Some(chunk) = walk.next_chunk()? {
            out.extend_from_slice(chunk);
        }
        Ok(out)
    }

    /// One flow's counters, `None` if the flow is not (or no longer) there.
    pub fn get(&self, key: &FlowKey) -> Result<Option<FlowStats>> {
        let values = self.flows.lookup(key).map_err(|e| Error::io("reading a flow", e))?;
        Ok(values.and_then(|v| FlowStats::merge(&v)))
    }

    /// Deletes one flow; `false` if it was not there.
    pub fn remove(&mut self, key: &FlowKey) -> Result<bool> {
        self.flows.delete(key).map_err(|e| Error::io("deleting a flow", e))
    }

    /// Inserts or replaces flows from user space in one batch call, each
    /// counted on CPU 0: filling the cache for tests and benchmarks.
    pub fn insert_batch(&self, flows: &[FlowEntry]) -> Result<()> {
        let cpus = self.possible_cpus();
        let keys: Vec<FlowKey> = flows.iter().map(|(k, _)| *k).collect();
        let mut values = vec![FlowStats::default(); flows.len() * cpus];
        for (i, (_, v)) in flows.iter().enumerate() {
            values[i * cpus] = *v;
        }
        self.flows
            .update_batch(&keys, &values)
            .map_err(|e| Error::io("inserting flows", e))
    }
}

impl FlowSource for FlowTable {
    type Error = Error;
    type Walk<'a> = TableWalk<'a>;

    fn capacity(&self) -> u32 {
        self.max_flows
    }

    /// A walk over every flow, chunk by chunk; flows stay in the cache.
    fn walk(&self) -> TableWalk<'_> {
        TableWalk::new(self, false)
    }

    /// A walk that reads and deletes every flow, each in one step (whole
    /// hash buckets per call), so that nothing counted is lost: a packet
    /// after its flow's bucket was drained starts a new entry.
    fn drain(&self) -> TableWalk<'_> {
        TableWalk::new(self, true)
    }

    /// Reads and deletes one flow in a single step (nothing counted in
    /// between is lost). `None` if the flow was not there.
    fn take(&self, key: &FlowKey) -> Result<Option<FlowStats>> {
        let values = self
            .flows
            .lookup_and_delete(key)
            .map_err(|e| Error::io("reading and deleting a flow", e))?;
        Ok(values.and_then(|v| FlowStats::merge(&v)))
    }

    /// Puts back a flow read out of the cache that should have stayed, with
    /// its merged counters on CPU 0's slot (merging gives the same stats),
    /// unless the datapath created the flow again meanwhile or the cache
    /// filled up.
    fn put_back(&self, key: &FlowKey, stats: &FlowStats) -> Result<PutBack> {
        let mut values = vec![FlowStats::default(); self.possible_cpus()];
        values[0] = *stats;
        match self.flows.insert_new(key, &values) {
            Ok(true) => Ok(PutBack::Restored),
            Ok(false) => Ok(PutBack::Exists),
            Err(e) if e.raw_os_error() == Some(libc::E2BIG) => Ok(PutBack::Full),
            Err(e) => Err(Error::io("putting a flow back", e)),
        }
    }

    /// Datapath counters summed over CPUs.
    fn counters(&self) -> Result<DatapathCounters> {
        let per_cpu = self
            .counters
            .get(&0, 0)
            .map_err(|e| Error::bpf("reading the datapath counters", e))?;
        let mut sum = DatapathCounters::default();
        per_cpu.iter().for_each(|c| sum.accumulate(c));
        Ok(sum)
    }

    /// CLOCK_BOOTTIME, the clock of `bpf_ktime_get_boot_ns()`.
    fn now_ns(&self) -> u64 {
        flowctl_model::boot_time_ns()
    }

    fn boot_clock(&self) -> BootClock {
        BootClock::now()
    }
}

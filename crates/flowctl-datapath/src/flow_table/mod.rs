//! The pinned flow cache, opened from any process: read, count, delete.
//!
//! Reading walks the map with batch system calls ([`FlowWalk`]), a few
//! thousand flows per call; a kernel that refuses them gets the per-key walk.

mod stats;
mod walk;

use std::os::fd::AsFd;

use aya::maps::{Map, MapData, PerCpuArray};
use flowctl_common::{DatapathCounters, FlowKey, FlowValue};

pub use stats::FlowStats;
pub use walk::{FlowWalk, ReadMode};

use crate::{attach::pinned_flows_map, map_ops::PerCpuHash, Error, PinLayout, Result};

/// Per-CPU buffer budget of one batch call: batches hold about this many
/// bytes of keys and values, whatever the number of CPUs.
const BATCH_BYTES: usize = 1 << 20;

/// What [`FlowTable::put_back`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutBack {
    /// The flow is in the cache again, counters unchanged.
    Restored,
    /// A packet re-created the flow meanwhile: the counters read are not in
    /// the cache, the caller must report them.
    Exists,
    /// The cache is full: the counters read are not in the cache.
    Full,
}

/// The pinned flow cache and datapath counters.
pub struct FlowTable {
    flows: PerCpuHash<FlowKey, FlowValue>,
    counters: PerCpuArray<MapData, DatapathCounters>,
    max_flows: u32,
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
        let entry_bytes = size_of::<FlowKey>() + size_of::<FlowValue>() * flows.possible_cpus();
        Ok(Self {
            flows,
            counters,
            max_flows: info.max_entries(),
            batch_size: (BATCH_BYTES / entry_bytes).clamp(64, 16384),
            mode: ReadMode::Batch,
        })
    }

    /// Capacity of the cache.
    pub fn max_flows(&self) -> u32 {
        self.max_flows
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

    /// A walk over every flow, chunk by chunk; flows stay in the cache.
    pub fn walk(&self) -> FlowWalk<'_> {
        FlowWalk::new(self, false)
    }

    /// A walk that reads and deletes every flow, each in one step (whole
    /// hash buckets per call), so that nothing counted is lost: a packet
    /// after its flow's bucket was drained starts a new entry.
    pub fn drain(&self) -> FlowWalk<'_> {
        FlowWalk::new(self, true)
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
    pub fn read_all(&self) -> Result<Vec<(FlowKey, FlowStats)>> {
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

    /// Reads and deletes one flow in a single step (nothing counted in
    /// between is lost). `None` if the flow was not there.
    pub fn take(&self, key: &FlowKey) -> Result<Option<FlowStats>> {
        let values = self
            .flows
            .lookup_and_delete(key)
            .map_err(|e| Error::io("reading and deleting a flow", e))?;
        Ok(values.and_then(|v| FlowStats::merge(&v)))
    }

    /// Puts back a flow read by a draining walk that should have stayed,
    /// with its merged counters (on CPU 0's slot: merging gives the same
    /// stats), unless the datapath created the flow again meanwhile or the
    /// cache filled up.
    pub fn put_back(&self, key: &FlowKey, stats: &FlowStats) -> Result<PutBack> {
        let mut values = vec![FlowValue::default(); self.possible_cpus()];
        values[0] = stats.to_value();
        match self.flows.insert_new(key, &values) {
            Ok(true) => Ok(PutBack::Restored),
            Ok(false) => Ok(PutBack::Exists),
            Err(e) if e.raw_os_error() == Some(libc::E2BIG) => Ok(PutBack::Full),
            Err(e) => Err(Error::io("putting a flow back", e)),
        }
    }

    /// Deletes one flow; `false` if it was not there.
    pub fn remove(&mut self, key: &FlowKey) -> Result<bool> {
        self.flows.delete(key).map_err(|e| Error::io("deleting a flow", e))
    }

    /// Inserts or replaces flows from user space in one batch call, each
    /// counted on CPU 0: filling the cache for tests and benchmarks.
    pub fn insert_batch(&self, flows: &[(FlowKey, FlowValue)]) -> Result<()> {
        let cpus = self.possible_cpus();
        let keys: Vec<FlowKey> = flows.iter().map(|(k, _)| *k).collect();
        let mut values = vec![FlowValue::default(); flows.len() * cpus];
        for (i, (_, v)) in flows.iter().enumerate() {
            values[i * cpus] = *v;
        }
        self.flows
            .update_batch(&keys, &values)
            .map_err(|e| Error::io("inserting flows", e))
    }

    /// Datapath counters summed over CPUs.
    pub fn counters(&self) -> Result<DatapathCounters> {
        let per_cpu = self
            .counters
            .get(&0, 0)
            .map_err(|e| Error::bpf("reading the datapath counters", e))?;
        let mut sum = DatapathCounters::default();
        per_cpu.iter().for_each(|c| sum.accumulate(c));
        Ok(sum)
    }
}

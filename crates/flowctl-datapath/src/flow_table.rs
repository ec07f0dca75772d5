//! The pinned flow cache, opened from any process: read, count, delete.

use std::os::fd::AsFd;

use aya::maps::{IterableMap, Map, MapData, PerCpuArray, PerCpuHashMap};
use flowctl_common::{DatapathCounters, FlowKey, FlowValue};

use crate::{attach::pinned_flows_map, Error, PinLayout, Result};

/// A flow's counters summed over every CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Wire packets.
    pub packets: u64,
    /// L3 octets.
    pub octets: u64,
    /// Earliest first-packet time (boot-time ns) over the CPUs.
    pub first_seen_ns: u64,
    /// Latest last-packet time (boot-time ns) over the CPUs.
    pub last_seen_ns: u64,
    /// OR of the TCP flags seen on every CPU.
    pub tcp_flags: u16,
    /// Minimum TTL / hop limit.
    pub min_ttl: u8,
    /// Maximum TTL / hop limit.
    pub max_ttl: u8,
    /// TOS / traffic class of the flow's first packet.
    pub tos: u8,
}

impl FlowStats {
    /// Merges per-CPU slots; CPUs that saw no packet are ignored. `None` when
    /// no CPU saw a packet.
    pub fn merge(per_cpu: &[FlowValue]) -> Option<Self> {
        let mut seen = per_cpu.iter().filter(|v| v.packets > 0);
        let first = seen.next()?;
        let mut s = FlowStats {
            packets: first.packets,
            octets: first.octets,
            first_seen_ns: first.first_seen_ns,
            last_seen_ns: first.last_seen_ns,
            tcp_flags: first.tcp_flags,
            min_ttl: first.min_ttl,
            max_ttl: first.max_ttl,
            tos: first.tos,
        };
        for v in seen {
            s.packets += v.packets;
            s.octets += v.octets;
            if v.first_seen_ns < s.first_seen_ns {
                s.first_seen_ns = v.first_seen_ns;
                s.tos = v.tos;
            }
            s.last_seen_ns = s.last_seen_ns.max(v.last_seen_ns);
            s.tcp_flags |= v.tcp_flags;
            s.min_ttl = s.min_ttl.min(v.min_ttl);
            s.max_ttl = s.max_ttl.max(v.max_ttl);
        }
        Some(s)
    }
}

/// The pinned flow cache and datapath counters.
pub struct FlowTable {
    flows: PerCpuHashMap<MapData, FlowKey, FlowValue>,
    counters: PerCpuArray<MapData, DatapathCounters>,
    max_flows: u32,
    possible_cpus: usize,
}

impl FlowTable {
    /// Opens the pinned maps, refusing ones of another layout.
    pub fn open(layout: &PinLayout) -> Result<Self> {
        let flows_path = layout.flows_map();
        let info = pinned_flows_map(layout)?.ok_or_else(|| Error::NotAttached(flows_path.clone()))?;
        let open = |path: std::path::PathBuf| {
            MapData::from_pin(&path).map_err(|e| Error::bpf(format!("opening pinned map {}", path.display()), e))
        };
        let flows = PerCpuHashMap::try_from(Map::PerCpuHashMap(open(flows_path)?))
            .map_err(|e| Error::bpf("opening the flow cache", e))?;
        let counters = PerCpuArray::try_from(Map::PerCpuArray(open(layout.counters_map())?))
            .map_err(|e| Error::bpf("opening the datapath counters", e))?;
        let possible_cpus = aya::util::nr_cpus().map_err(|(what, e)| Error::io(format!("reading {what}"), e))?;
        Ok(Self {
            flows,
            counters,
            max_flows: info.max_entries(),
            possible_cpus,
        })
    }

    /// Capacity of the cache.
    pub fn max_flows(&self) -> u32 {
        self.max_flows
    }

    /// Keys present now.
    pub fn keys(&self) -> Result<Vec<FlowKey>> {
        self.flows
            .keys()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::bpf("listing flows", e))
    }

    /// Number of flows in the cache.
    pub fn len(&self) -> Result<usize> {
        Ok(self.keys()?.len())
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Every flow with its counters summed over CPUs. Keys are listed first
    /// and read after, so concurrent inserts and deletes never restart the walk.
    pub fn read_all(&self) -> Result<Vec<(FlowKey, FlowStats)>> {
        let mut out = Vec::new();
        for key in self.keys()? {
            if let Some(stats) = self.get(&key)? {
                out.push((key, stats));
            }
        }
        Ok(out)
    }

    /// One flow's counters, `None` if the flow is not (or no longer) there.
    pub fn get(&self, key: &FlowKey) -> Result<Option<FlowStats>> {
        match self.flows.get(key, 0) {
            Ok(values) => Ok(FlowStats::merge(&values)),
            Err(aya::maps::MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(Error::bpf("reading a flow", e)),
        }
    }

    /// Reads and deletes one flow in a single step (nothing counted in
    /// between is lost). `None` if the flow was not there.
    pub fn take(&mut self, key: &FlowKey) -> Result<Option<FlowStats>> {
        let fd = self.flows.map().fd().as_fd();
        let values = crate::map_ops::lookup_and_delete_per_cpu::<FlowKey, FlowValue>(fd, key, self.possible_cpus)
            .map_err(|e| Error::io("reading and deleting a flow", e))?;
        Ok(values.and_then(|v| FlowStats::merge(&v)))
    }

    /// Deletes one flow; `false` if it was not there.
    pub fn remove(&mut self, key: &FlowKey) -> Result<bool> {
        match self.flows.remove(key) {
            Ok(()) => Ok(true),
            Err(aya::maps::MapError::KeyNotFound) => Ok(false),
            Err(aya::maps::MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(Error::bpf("deleting a flow", e)),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(packets: u64, first: u64, last: u64, flags: u16, ttl: (u8, u8), tos: u8) -> FlowValue {
        FlowValue {
            packets,
            octets: packets * 100,
            first_seen_ns: first,
            last_seen_ns: last,
            tcp_flags: flags,
            min_ttl: ttl.0,
            max_ttl: ttl.1,
            tos,
            pad: [0; 3],
        }
    }

    #[test]
    fn merge_ignores_idle_cpus_and_combines_the_rest() {
        let merged = FlowStats::merge(&[
            FlowValue::default(),
            slot(3, 500, 900, 0x02, (60, 64), 0x10),
            slot(2, 200, 700, 0x11, (63, 63), 0x20),
        ])
        .unwrap();
        assert_eq!(
            merged,
            FlowStats {
                packets: 5,
                octets: 500,
                first_seen_ns: 200,
                last_seen_ns: 900,
                tcp_flags: 0x13,
                min_ttl: 60,
                max_ttl: 64,
                tos: 0x20,
            }
        );
    }

    #[test]
    fn merge_of_empty_slots_is_none() {
        assert_eq!(FlowStats::merge(&[FlowValue::default(), FlowValue::default()]), None);
        assert_eq!(FlowStats::merge(&[]), None);
    }
}

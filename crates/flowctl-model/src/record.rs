//! What aging hands to the exporters: one flow record.

use crate::{EndReason, FlowKey, FlowStats};

/// One record of a flow: what the datapath counted for it since its
/// previous record (or since it started), and why the record was made.
///
/// Every record is built from a cache entry taken out of the cache (read and
/// deleted in one step), so `stats` holds exactly the packets and octets of
/// this record (`packetDeltaCount`, `octetDeltaCount`) and every other
/// per-flow field the datapath keeps; a new field of [`FlowStats`] reaches
/// the exporters with no change here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FlowRecord {
    /// The flow.
    pub key: FlowKey,
    /// Counters of this record: packets and octets since the previous record.
    pub stats: FlowStats,
    /// Packets since the flow started, over all its records (packetTotalCount).
    pub total_packets: u64,
    /// Octets since the flow started (octetTotalCount).
    pub total_octets: u64,
    /// Unix time (ns) of the first packet this record covers.
    pub start_unix_ns: u64,
    /// Unix time (ns) of the last packet this record covers.
    pub end_unix_ns: u64,
    /// Why this record was made.
    pub reason: EndReason,
}

impl FlowRecord {
    /// Packets of this record (packetDeltaCount).
    pub fn packets(&self) -> u64 {
        self.stats.packets
    }

    /// Octets of this record (octetDeltaCount).
    pub fn octets(&self) -> u64 {
        self.stats.octets
    }
}

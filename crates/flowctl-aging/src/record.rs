//! What aging hands to the exporter: one IPFIX flow record.

use flowctl_common::FlowKey;

/// IPFIX `flowEndReason` (IE 136) values, RFC 5102 / IANA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EndReason {
    /// No packet for the idle timeout.
    IdleTimeout = 1,
    /// Still active; reported because the active timeout elapsed.
    ActiveTimeout = 2,
    /// End of flow detected (TCP FIN or RST, after the grace period).
    EndOfFlow = 3,
    /// Forced end: flush or shutdown.
    ForcedEnd = 4,
    /// The flow cache was nearly full.
    LackOfResources = 5,
}

/// One record of a flow: the packets and octets since the previous record of
/// the same flow (or since its start), and the flow's properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRecord {
    /// The flow.
    pub key: FlowKey,
    /// Packets since the previous record (packetDeltaCount).
    pub packets: u64,
    /// Octets since the previous record (octetDeltaCount).
    pub octets: u64,
    /// Packets since the flow started (packetTotalCount).
    pub total_packets: u64,
    /// Octets since the flow started (octetTotalCount).
    pub total_octets: u64,
    /// Unix time (ns) of the first packet this record covers.
    pub start_unix_ns: u64,
    /// Unix time (ns) of the last packet this record covers.
    pub end_unix_ns: u64,
    /// OR of the TCP flags seen so far.
    pub tcp_flags: u16,
    /// Minimum TTL / hop limit.
    pub min_ttl: u8,
    /// Maximum TTL / hop limit.
    pub max_ttl: u8,
    /// TOS / traffic class of the first packet.
    pub tos: u8,
    /// Why this record was made.
    pub reason: EndReason,
}

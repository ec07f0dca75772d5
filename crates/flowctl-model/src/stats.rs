//! A flow's counters, as the datapath keeps them and as user space merges
//! them, and the datapath's own counters.

/// The counters of one flow (`struct flow_value` in `bpf/flowctl.h`, byte
/// for byte): one CPU's slot of a per-CPU cache entry, or every slot merged
/// by [`FlowStats::merge`]. Adding a per-flow field means adding it here, in
/// the header, and its merge rule in [`FlowStats::absorb`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FlowStats {
    /// Wire packets (a GSO packet counts its segments).
    pub packets: u64,
    /// L3 octets (IP header and payload) of those packets.
    pub octets: u64,
    /// CLOCK_BOOTTIME (ns) of the first packet.
    pub first_seen_ns: u64,
    /// CLOCK_BOOTTIME (ns) of the last packet.
    pub last_seen_ns: u64,
    /// OR of the TCP flag bits (RFC 7125 `tcpControlBits` order).
    pub tcp_flags: u16,
    /// Minimum IPv4 TTL / IPv6 hop limit.
    pub min_ttl: u8,
    /// Maximum IPv4 TTL / IPv6 hop limit.
    pub max_ttl: u8,
    /// IPv4 TOS / IPv6 traffic class of the first packet.
    pub tos: u8,
    /// Always 0.
    pub pad: [u8; 3],
}

impl FlowStats {
    /// Merges per-CPU slots; slots that saw no packet are ignored. `None`
    /// when no slot saw a packet.
    pub fn merge(slots: &[FlowStats]) -> Option<Self> {
        let mut seen = slots.iter().filter(|s| s.packets > 0);
        let mut merged = *seen.next()?;
        seen.for_each(|s| merged.absorb(s));
        Some(merged)
    }

    /// Adds the counters of another slot of the same flow that saw packets:
    /// sums, the earliest first and latest last packet, OR of the flags, the
    /// TTL range, and the TOS of the earlier first packet.
    pub fn absorb(&mut self, other: &FlowStats) {
        self.packets += other.packets;
        self.octets += other.octets;
        if other.first_seen_ns < self.first_seen_ns {
            self.first_seen_ns = other.first_seen_ns;
            self.tos = other.tos;
        }
        self.last_seen_ns = self.last_seen_ns.max(other.last_seen_ns);
        self.tcp_flags |= other.tcp_flags;
        self.min_ttl = self.min_ttl.min(other.min_ttl);
        self.max_ttl = self.max_ttl.max(other.max_ttl);
    }
}

/// The datapath's own counters (`struct datapath_counters`), per CPU in the
/// map, summed by [`DatapathCounters::accumulate`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DatapathCounters {
    /// Frames that are neither IPv4 nor IPv6.
    pub non_ip_packets: u64,
    /// Their octets from the Ethernet header on.
    pub non_ip_octets: u64,
    /// IP frames whose IP header is truncated or bogus.
    pub malformed_packets: u64,
    /// Their octets from the Ethernet header on.
    pub malformed_octets: u64,
    /// IP packets not recorded because the flow map was full.
    pub not_recorded_packets: u64,
    /// Their L3 octets.
    pub not_recorded_octets: u64,
}

impl DatapathCounters {
    /// Adds another CPU's counters to these.
    pub fn accumulate(&mut self, other: &DatapathCounters) {
        self.non_ip_packets += other.non_ip_packets;
        self.non_ip_octets += other.non_ip_octets;
        self.malformed_packets += other.malformed_packets;
        self.malformed_octets += other.malformed_octets;
        self.not_recorded_packets += other.not_recorded_packets;
        self.not_recorded_octets += other.not_recorded_octets;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(packets: u64, first: u64, last: u64, flags: u16, ttl: (u8, u8), tos: u8) -> FlowStats {
        FlowStats {
            packets,
            octets: packets * 100,
            first_seen_ns: first,
            last_seen_ns: last,
            tcp_flags: flags,
            min_ttl: ttl.0,
            max_ttl: ttl.1,
            tos,
            ..Default::default()
        }
    }

    #[test]
    fn merge_ignores_idle_cpus_and_combines_the_rest() {
        let merged = FlowStats::merge(&[
            FlowStats::default(),
            slot(3, 500, 900, 0x02, (60, 64), 0x10),
            slot(2, 200, 700, 0x11, (63, 63), 0x20),
        ]);
        assert_eq!(merged, Some(slot(5, 200, 900, 0x13, (60, 64), 0x20)));
    }

    #[test]
    fn one_slot_of_merged_stats_merges_back_to_them() {
        let merged = FlowStats::merge(&[
            slot(3, 500, 900, 0x02, (60, 64), 0x10),
            slot(2, 200, 700, 0x11, (63, 63), 0x20),
        ]);
        let Some(merged) = merged else {
            panic!("two slots with packets merge")
        };
        assert_eq!(FlowStats::merge(&[FlowStats::default(), merged]), Some(merged));
        assert_eq!(FlowStats::merge(&[merged]), Some(merged));
    }

    #[test]
    fn merge_of_empty_slots_is_none() {
        assert_eq!(FlowStats::merge(&[FlowStats::default(), FlowStats::default()]), None);
        assert_eq!(FlowStats::merge(&[]), None);
    }

    #[test]
    fn counters_accumulate_field_by_field() {
        let one = DatapathCounters {
            non_ip_packets: 1,
            non_ip_octets: 2,
            malformed_packets: 3,
            malformed_octets: 4,
            not_recorded_packets: 5,
            not_recorded_octets: 6,
        };
        let mut sum = one;
        sum.accumulate(&one);
        assert_eq!(sum.non_ip_octets + sum.not_recorded_octets, 16);
        assert_eq!(sum.malformed_packets, 6);
    }
}

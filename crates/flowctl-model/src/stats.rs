//! A flow's counters as user space reads them, and the datapath's own
//! counters.

/// The counters of one flow, read from its slot of the cache
/// ([`crate::FlowSlot::stats`]).
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
    /// The sampling the flow was metered with
    /// ([`Sampling::word`](crate::Sampling::word); 0: every packet).
    /// Packets and octets are those of the selected packets, not scaled.
    pub sampling: u32,
    /// Always 0.
    pub pad: [u8; 3],
}

impl FlowStats {
    /// Adds the counters of later packets of the same flow: sums, the
    /// earliest first and latest last packet, OR of the flags, the TTL
    /// range, and the TOS of the earlier first packet.
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
    /// IP packets not recorded: no free slot (the cache was full).
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

    #[test]
    fn absorbing_later_packets_keeps_the_first_ones_tos() {
        let mut first = FlowStats {
            packets: 2,
            first_seen_ns: 200,
            last_seen_ns: 700,
            min_ttl: 63,
            max_ttl: 63,
            tos: 0x20,
            ..Default::default()
        };
        first.absorb(&FlowStats {
            packets: 3,
            first_seen_ns: 500,
            last_seen_ns: 900,
            tcp_flags: 0x02,
            min_ttl: 60,
            max_ttl: 64,
            tos: 0x10,
            ..Default::default()
        });
        assert_eq!((first.packets, first.first_seen_ns, first.last_seen_ns), (5, 200, 900));
        assert_eq!(
            (first.min_ttl, first.max_ttl, first.tos, first.tcp_flags),
            (60, 64, 0x20, 0x02)
        );
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

//! `#[repr(C)]` mirrors of the types in `bpf/flowctl.h`.
//!
//! These are the exact bytes the datapath writes into its maps. The layout
//! test (`tests/layout.rs`) compiles the C header and checks that every size
//! and offset agrees with the structs here.
#![no_std]

/// Version of the map layout; names the pin directory (`v<N>`).
/// Must equal `FLOWCTL_LAYOUT_VERSION` in `bpf/flowctl.h`.
pub const LAYOUT_VERSION: u32 = 1;

/// Name of the per-CPU flow hash map in the object file and in bpffs.
pub const FLOWS_MAP: &str = "flowctl_flows";
/// Name of the per-CPU datapath counters array in the object file and in bpffs.
pub const COUNTERS_MAP: &str = "flowctl_stats";
/// Name of the egress classifier in the object file.
pub const EGRESS_PROGRAM: &str = "flowctl_egress";
/// Name of the ingress classifier in the object file.
pub const INGRESS_PROGRAM: &str = "flowctl_ingress";
/// Name of the read-only global holding the attachment's netns inode.
pub const NETNS_INO_GLOBAL: &str = "NETNS_INO";

/// `flowDirection` (IPFIX IE 61) value for ingress.
pub const DIRECTION_INGRESS: u8 = 0;
/// `flowDirection` (IPFIX IE 61) value for egress.
pub const DIRECTION_EGRESS: u8 = 1;

/// Key of one unidirectional flow at one attachment point (`struct flow_key`).
///
/// Addresses are 16 bytes in network order; IPv4 is IPv4-mapped
/// (`::ffff:a.b.c.d`). Ports are host order. ICMP/ICMPv6 carry
/// `dst_port = type * 256 + code`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Inode of the network namespace the program is attached in.
    pub netns_ino: u32,
    /// `skb->ingress_ifindex` (0 for locally generated packets).
    pub ingress_ifindex: u32,
    /// `skb->ifindex` at egress; 0 at ingress.
    pub egress_ifindex: u32,
    /// Source address (IPv4-mapped for IPv4).
    pub src_addr: [u8; 16],
    /// Destination address (IPv4-mapped for IPv4).
    pub dst_addr: [u8; 16],
    /// Source port (0 for ICMP, other protocols and non-first fragments).
    pub src_port: u16,
    /// Destination port, or ICMP `type * 256 + code`.
    pub dst_port: u16,
    /// Outer 802.1Q / 802.1ad VLAN id, 0 when untagged.
    pub vlan_id: u16,
    /// Inner (customer) VLAN id of a QinQ frame, 0 when none.
    pub inner_vlan_id: u16,
    /// [`DIRECTION_INGRESS`] or [`DIRECTION_EGRESS`].
    pub direction: u8,
    /// 4 or 6.
    pub ip_version: u8,
    /// IP protocol number (IPv6: the upper-layer next header).
    pub protocol: u8,
    /// Always 0.
    pub pad: u8,
}

impl FlowKey {
    /// Source address as an [`IpAddr`](core::net::IpAddr) (IPv4 unmapped).
    pub fn src_ip(&self) -> core::net::IpAddr {
        addr_of(&self.src_addr, self.ip_version)
    }

    /// Destination address as an [`IpAddr`](core::net::IpAddr) (IPv4 unmapped).
    pub fn dst_ip(&self) -> core::net::IpAddr {
        addr_of(&self.dst_addr, self.ip_version)
    }
}

/// The 16-byte key form of an address: IPv4 becomes IPv4-mapped IPv6.
pub fn key_addr(addr: core::net::IpAddr) -> [u8; 16] {
    match addr {
        core::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        core::net::IpAddr::V6(v6) => v6.octets(),
    }
}

fn addr_of(bytes: &[u8; 16], ip_version: u8) -> core::net::IpAddr {
    let v6 = core::net::Ipv6Addr::from(*bytes);
    match (ip_version, v6.to_ipv4_mapped()) {
        (4, Some(v4)) => core::net::IpAddr::V4(v4),
        _ => core::net::IpAddr::V6(v6),
    }
}

/// One CPU's counters for a flow (`struct flow_value`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowValue {
    /// Wire packets (a GSO packet counts its segments).
    pub packets: u64,
    /// L3 octets (IP header and payload) of those packets.
    pub octets: u64,
    /// `bpf_ktime_get_boot_ns()` of the first packet on this CPU.
    pub first_seen_ns: u64,
    /// `bpf_ktime_get_boot_ns()` of the last packet on this CPU.
    pub last_seen_ns: u64,
    /// OR of the TCP flag bits (RFC 7125 `tcpControlBits` order).
    pub tcp_flags: u16,
    /// Minimum IPv4 TTL / IPv6 hop limit.
    pub min_ttl: u8,
    /// Maximum IPv4 TTL / IPv6 hop limit.
    pub max_ttl: u8,
    /// IPv4 TOS / IPv6 traffic class of the first packet on this CPU.
    pub tos: u8,
    /// Always 0.
    pub pad: [u8; 3],
}

/// Per-CPU datapath counters (`struct datapath_counters`).
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
    use core::net::IpAddr;

    #[test]
    fn addresses_round_trip_through_the_key_form() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let key = FlowKey {
            src_addr: key_addr(v4),
            dst_addr: key_addr(v6),
            ip_version: 4,
            ..Default::default()
        };
        assert_eq!(key.src_addr[..12], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        assert_eq!(key.src_ip(), v4);
        let key6 = FlowKey {
            src_addr: key_addr(v6),
            ip_version: 6,
            ..Default::default()
        };
        assert_eq!(key6.src_ip(), v6);
    }
}

#[cfg(feature = "aya")]
mod pod {
    // SAFETY: all three are #[repr(C)] structs of integers with explicit
    // padding fields, so every bit pattern is valid and there are no holes.
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::FlowValue {}
    unsafe impl aya::Pod for super::DatapathCounters {}
}

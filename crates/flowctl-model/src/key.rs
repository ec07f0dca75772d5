//! The flow key: what makes two packets the same flow.

use core::net::{IpAddr, Ipv6Addr};

/// Key of one unidirectional flow at one attachment point (`struct flow_key`
/// in `bpf/flowctl.h`, byte for byte).
///
/// Addresses are 16 bytes in network order; IPv4 is IPv4-mapped
/// (`::ffff:a.b.c.d`). Ports are host order. ICMP/ICMPv6 carry
/// `dst_port = type * 256 + code`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    /// [`DIRECTION_INGRESS`](crate::DIRECTION_INGRESS) or
    /// [`DIRECTION_EGRESS`](crate::DIRECTION_EGRESS).
    pub direction: u8,
    /// 4 or 6.
    pub ip_version: u8,
    /// IP protocol number (IPv6: the upper-layer next header).
    pub protocol: u8,
    /// Always 0.
    pub pad: u8,
}

impl FlowKey {
    /// Source address as an [`IpAddr`] (IPv4 unmapped).
    pub fn src_ip(&self) -> IpAddr {
        addr_of(&self.src_addr, self.ip_version)
    }

    /// Destination address as an [`IpAddr`] (IPv4 unmapped).
    pub fn dst_ip(&self) -> IpAddr {
        addr_of(&self.dst_addr, self.ip_version)
    }
}

/// The 16-byte key form of an address: IPv4 becomes IPv4-mapped IPv6.
pub fn key_addr(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn addr_of(bytes: &[u8; 16], ip_version: u8) -> IpAddr {
    let v6 = Ipv6Addr::from(*bytes);
    match (ip_version, v6.to_ipv4_mapped()) {
        (4, Some(v4)) => IpAddr::V4(v4),
        _ => IpAddr::V6(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

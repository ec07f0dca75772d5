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
    /// 0 when the flow's attachment meters every packet, else a byte
    /// derived from its sampling ([`Sampling::tag`](crate::Sampling::tag)):
    /// one interface re-attached at another rate makes new flows. The full
    /// sampling is in [`FlowStats::sampling`](crate::FlowStats::sampling).
    pub sampling_tag: u8,
    /// The top MPLS label stack entry: 0 without MPLS, else
    /// [`MPLS_PRESENT`] | its first 3 bytes (`label << 4 | TC << 1 | S`, IPFIX's
    /// `mplsTopLabelStackSection`). See [`FlowKey::mpls_top_label`].
    pub mpls_label: u32,
}

/// Set in [`FlowKey::mpls_label`] when the packet had an MPLS label stack
/// (`FLOWCTL_MPLS_PRESENT` in `bpf/flowctl.h`).
pub const MPLS_PRESENT: u32 = 1 << 24;

/// The top entry of an MPLS label stack, without its TTL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MplsLabel {
    /// The 20-bit label.
    pub label: u32,
    /// The 3-bit traffic class (formerly EXP).
    pub tc: u8,
    /// Whether it is the bottom of the stack (the S bit): a stack of one label.
    pub bottom_of_stack: bool,
}

impl MplsLabel {
    /// Splits the 24 bits of an `mplsTopLabelStackSection` (label, TC, S).
    pub fn from_section(section: u32) -> Self {
        Self {
            label: (section >> 4) & 0xf_ffff,
            tc: ((section >> 1) & 0x7) as u8,
            bottom_of_stack: section & 1 == 1,
        }
    }

    /// The 24 bits of the `mplsTopLabelStackSection` (label, TC, S).
    pub fn section(&self) -> u32 {
        ((self.label & 0xf_ffff) << 4) | (u32::from(self.tc & 0x7) << 1) | u32::from(self.bottom_of_stack)
    }
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

    /// The top MPLS label stack entry, if the packets had one.
    pub fn mpls_top_label(&self) -> Option<MplsLabel> {
        (self.mpls_label & MPLS_PRESENT != 0).then(|| MplsLabel::from_section(self.mpls_label & 0xff_ffff))
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

    #[test]
    fn mpls_label_splits_into_label_tc_and_bottom_of_stack() {
        assert_eq!(FlowKey::default().mpls_top_label(), None);
        // Label 100, TC 5, S: 0x00064b (with the presence bit) as the datapath stores it.
        let key = FlowKey {
            mpls_label: MPLS_PRESENT | 0x00_064b,
            ..Default::default()
        };
        let top = key.mpls_top_label().unwrap();
        assert_eq!(
            top,
            MplsLabel {
                label: 100,
                tc: 5,
                bottom_of_stack: true
            }
        );
        assert_eq!(top.section(), 0x00_064b);
        // Label 0 (IPv4 explicit null), TC 0, not the bottom: still MPLS.
        let null = FlowKey {
            mpls_label: MPLS_PRESENT,
            ..Default::default()
        };
        assert_eq!(null.mpls_top_label().map(|l| l.section()), Some(0));
    }
}

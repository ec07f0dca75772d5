//! Selecting flows by interface, protocol, addresses and ports (`flowctl
//! dump` and `flush`, and the agent's flush over its control socket).

use core::net::IpAddr;

use crate::{key_addr, FlowKey};

/// A conjunction of optional flow fields; an empty selector matches every flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FlowSelector {
    /// Interface index the flow entered or left by.
    pub ifindex: Option<u32>,
    /// IP protocol number.
    pub protocol: Option<u8>,
    /// Source address.
    pub src: Option<IpAddr>,
    /// Source port.
    pub sport: Option<u16>,
    /// Destination address.
    pub dst: Option<IpAddr>,
    /// Destination port (ICMP: type * 256 + code).
    pub dport: Option<u16>,
}

impl FlowSelector {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == FlowSelector::default()
    }

    /// Whether `key` has every field that is set.
    pub fn matches(&self, key: &FlowKey) -> bool {
        self.ifindex
            .is_none_or(|i| key.ingress_ifindex == i || key.egress_ifindex == i)
            && self.protocol.is_none_or(|p| key.protocol == p)
            && self.src.is_none_or(|a| key.src_addr == key_addr(a))
            && self.dst.is_none_or(|a| key.dst_addr == key_addr(a))
            && self.sport.is_none_or(|p| key.src_port == p)
            && self.dport.is_none_or(|p| key.dst_port == p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_set_field_must_match() {
        let key = FlowKey {
            egress_ifindex: 4,
            src_addr: key_addr("192.0.2.1".parse().unwrap()),
            dst_addr: key_addr("192.0.2.2".parse().unwrap()),
            src_port: 53,
            dst_port: 4000,
            protocol: 17,
            ip_version: 4,
            ..Default::default()
        };
        assert!(FlowSelector::default().matches(&key) && FlowSelector::default().is_empty());
        let sel = FlowSelector {
            ifindex: Some(4),
            protocol: Some(17),
            src: Some("192.0.2.1".parse().unwrap()),
            sport: Some(53),
            ..Default::default()
        };
        assert!(sel.matches(&key));
        assert!(!FlowSelector { sport: Some(54), ..sel }.matches(&key));
        assert!(!FlowSelector {
            ifindex: Some(5),
            ..sel
        }
        .matches(&key));
        assert!(!FlowSelector {
            dst: Some("192.0.2.1".parse().unwrap()),
            ..sel
        }
        .matches(&key));
    }
}

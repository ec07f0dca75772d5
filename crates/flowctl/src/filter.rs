//! Selecting flows by interface, protocol, addresses and ports (dump, flush).

use std::net::IpAddr;

use clap::Args;
use flowctl_model::{FlowKey, FlowSelector};

/// A conjunction of optional flow fields; an empty filter matches everything.
#[derive(Clone, Debug, Default, Args)]
pub struct FlowFilter {
    /// Interface index the flow entered or left by.
    #[arg(short = 'i', long)]
    pub ifindex: Option<u32>,
    /// IP protocol: a number or tcp, udp, icmp, icmpv6, sctp, gre, esp.
    #[arg(short = 'p', long, value_parser = parse_protocol)]
    pub proto: Option<u8>,
    /// Source address.
    #[arg(short = 's', long)]
    pub src: Option<IpAddr>,
    /// Source port.
    #[arg(short = 'S', long)]
    pub sport: Option<u16>,
    /// Destination address.
    #[arg(short = 'd', long)]
    pub dst: Option<IpAddr>,
    /// Destination port (ICMP: type * 256 + code).
    #[arg(short = 'D', long)]
    pub dport: Option<u16>,
}

impl FlowFilter {
    /// The selector these flags describe.
    pub fn selector(&self) -> FlowSelector {
        FlowSelector {
            ifindex: self.ifindex,
            protocol: self.proto,
            src: self.src,
            sport: self.sport,
            dst: self.dst,
            dport: self.dport,
        }
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.selector().is_empty()
    }

    /// Whether `key` has every field that is set.
    pub fn matches(&self, key: &FlowKey) -> bool {
        self.selector().matches(key)
    }
}

/// Parses a protocol number or a well-known name.
pub fn parse_protocol(s: &str) -> Result<u8, String> {
    if let Ok(n) = s.parse::<u8>() {
        return Ok(n);
    }
    Ok(match s.to_ascii_lowercase().as_str() {
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "icmpv6" | "ipv6-icmp" => 58,
        "sctp" => 132,
        _ => {
            return Err(format!(
                "unknown protocol {s:?} (use a number 0-255 or tcp, udp, icmp, icmpv6, sctp, gre, esp)"
            ))
        }
    })
}

/// Short name of a protocol number, or the number.
pub fn protocol_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use flowctl_model::key_addr;

    use super::*;

    fn key() -> FlowKey {
        FlowKey {
            ingress_ifindex: 0,
            egress_ifindex: 4,
            src_addr: key_addr("10.0.0.1".parse().unwrap()),
            dst_addr: key_addr("10.0.0.2".parse().unwrap()),
            src_port: 4000,
            dst_port: 53,
            ip_version: 4,
            protocol: 17,
            ..Default::default()
        }
    }

    #[test]
    fn empty_filter_matches_everything() {
        assert!(FlowFilter::default().is_empty());
        assert!(FlowFilter::default().matches(&key()));
    }

    #[test]
    fn every_set_field_must_match() {
        let f = FlowFilter {
            proto: Some(17),
            dport: Some(53),
            src: "10.0.0.1".parse().ok(),
            ..Default::default()
        };
        assert!(f.matches(&key()));
        let wrong_port = FlowFilter {
            sport: Some(4001),
            ..f.clone()
        };
        assert!(!wrong_port.matches(&key()));
        let v6_src = FlowFilter {
            src: "::1".parse().ok(),
            ..Default::default()
        };
        assert!(!v6_src.matches(&key()));
        assert!(FlowFilter {
            ifindex: Some(4),
            ..Default::default()
        }
        .matches(&key()));
        assert!(!FlowFilter {
            ifindex: Some(5),
            ..Default::default()
        }
        .matches(&key()));
    }

    #[test]
    fn protocols_by_name_or_number() {
        assert_eq!(parse_protocol("udp"), Ok(17));
        assert_eq!(parse_protocol("58"), Ok(58));
        assert!(parse_protocol("bogus").is_err());
        assert!(parse_protocol("300").is_err());
        assert_eq!(protocol_name(6), "tcp");
        assert_eq!(protocol_name(99), "99");
    }
}

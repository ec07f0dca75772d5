//! Flows as people read them: JSON objects and comfy-table rows.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, CellAlignment, ContentArrangement, Table};
use flowctl_datapath::{netlink::InterfaceNames, Direction};
use flowctl_model::{BootClock, FlowKey, FlowStats, MplsLabel, Sampling};
use serde::Serialize;
use time::{macros::format_description, OffsetDateTime};

use crate::filter::protocol_name;

/// One flow, ready to print. The JSON keys are part of the CLI's interface.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FlowView {
    /// Network namespace of the attachment.
    pub netns: String,
    /// Ingress interface name (null if unknown or local).
    pub in_if: Option<String>,
    /// Egress interface name (null at ingress).
    pub out_if: Option<String>,
    /// Ingress ifindex (0 for locally generated packets).
    pub in_ifindex: u32,
    /// Egress ifindex (0 at ingress).
    pub out_ifindex: u32,
    /// "ingress" or "egress".
    pub direction: String,
    /// 4 or 6.
    pub ip_version: u8,
    /// IP protocol number.
    pub proto: u8,
    /// Source address.
    pub src: String,
    /// Destination address.
    pub dst: String,
    /// Source port (0 for port-less protocols).
    pub sport: u16,
    /// Destination port (ICMP: type * 256 + code).
    pub dport: u16,
    /// Outer VLAN id (0 if untagged).
    pub vlan: u16,
    /// Inner VLAN id (0 if none).
    pub inner_vlan: u16,
    /// Top MPLS label stack entry (null without MPLS).
    pub mpls_label: Option<MplsLabelView>,
    /// Wire packets.
    pub packets: u64,
    /// L3 octets.
    pub bytes: u64,
    /// First packet, RFC 3339 UTC.
    pub start: String,
    /// Last packet, RFC 3339 UTC.
    pub end: String,
    /// OR of TCP flags (RFC 7125 bits).
    pub tcp_flags: u16,
    /// Minimum TTL / hop limit.
    pub min_ttl: u8,
    /// Maximum TTL / hop limit.
    pub max_ttl: u8,
    /// TOS / traffic class of the first packet.
    pub tos: u8,
    /// N of the 1-in-N sampling the flow is metered with (1: every
    /// packet); `packets` and `bytes` are not scaled by it.
    pub sample_interval: u32,
    /// "random" or "deterministic" when sampled, else null.
    pub sample_mode: Option<String>,
}

/// The top MPLS label stack entry of a flow.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct MplsLabelView {
    /// The 20-bit label.
    pub label: u32,
    /// Traffic class (formerly EXP), 0..7.
    pub tc: u8,
    /// The S bit: the top entry is the only one.
    pub bottom_of_stack: bool,
}

impl From<MplsLabel> for MplsLabelView {
    fn from(l: MplsLabel) -> Self {
        Self {
            label: l.label,
            tc: l.tc,
            bottom_of_stack: l.bottom_of_stack,
        }
    }
}

impl FlowView {
    /// Builds the view of one flow.
    pub fn new(key: &FlowKey, stats: &FlowStats, clock: &BootClock, names: &mut InterfaceNames) -> Self {
        Self {
            netns: flowctl_datapath::netns::describe_netns(key.netns_ino),
            in_if: names.name(key.netns_ino, key.ingress_ifindex),
            out_if: names.name(key.netns_ino, key.egress_ifindex),
            in_ifindex: key.ingress_ifindex,
            out_ifindex: key.egress_ifindex,
            direction: Direction::from_flow_direction(key.direction)
                .map(|d| d.to_string())
                .unwrap_or_else(|| key.direction.to_string()),
            ip_version: key.ip_version,
            proto: key.protocol,
            src: key.src_ip().to_string(),
            dst: key.dst_ip().to_string(),
            sport: key.src_port,
            dport: key.dst_port,
            vlan: key.vlan_id,
            inner_vlan: key.inner_vlan_id,
            mpls_label: key.mpls_top_label().map(MplsLabelView::from),
            packets: stats.packets,
            bytes: stats.octets,
            start: rfc3339(clock.unix_ns(stats.first_seen_ns)),
            end: rfc3339(clock.unix_ns(stats.last_seen_ns)),
            tcp_flags: stats.tcp_flags,
            min_ttl: stats.min_ttl,
            max_ttl: stats.max_ttl,
            tos: stats.tos,
            sample_interval: Sampling::from_word(stats.sampling).packets_per_sample(),
            sample_mode: Some(Sampling::from_word(stats.sampling))
                .filter(Sampling::is_sampled)
                .map(|s| s.mode.to_string()),
        }
    }
}

fn rfc3339(unix_ns: i128) -> String {
    // Millisecond precision, like the IPFIX timestamps; always 3 digits.
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(unix_ns)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| unix_ns.to_string())
}

/// TCP flags the way nfdump prints them: `CEUAPRSF`, `.` for unset bits.
pub fn tcp_flags_string(flags: u16) -> String {
    "CEUAPRSF"
        .chars()
        .enumerate()
        .map(|(i, c)| if flags & (0x80 >> i) != 0 { c } else { '.' })
        .collect()
}

fn endpoint(addr: &str, port: u16, ip_version: u8) -> String {
    if ip_version == 6 {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

fn interface(name: &Option<String>, index: u32) -> String {
    match (name, index) {
        (_, 0) => "-".to_string(),
        (Some(n), _) => n.clone(),
        (None, i) => format!("#{i}"),
    }
}

/// Renders flows as a table.
pub fn table(flows: &[FlowView]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled);
    t.set_header([
        "IN", "OUT", "DIR", "PROTO", "SRC", "DST", "PACKETS", "BYTES", "START", "END", "FLAGS",
    ]);
    for f in flows {
        let (src, dst) = if f.proto == 1 || f.proto == 58 {
            (
                f.src.clone(),
                format!("{} type {} code {}", f.dst, f.dport >> 8, f.dport & 0xff),
            )
        } else {
            (
                endpoint(&f.src, f.sport, f.ip_version),
                endpoint(&f.dst, f.dport, f.ip_version),
            )
        };
        let flags = if f.proto == 6 {
            tcp_flags_string(f.tcp_flags)
        } else {
            String::new()
        };
        t.add_row(vec![
            Cell::new(interface(&f.in_if, f.in_ifindex)),
            Cell::new(interface(&f.out_if, f.out_ifindex)),
            Cell::new(&f.direction),
            Cell::new(protocol_name(f.proto)),
            Cell::new(src),
            Cell::new(dst),
            Cell::new(f.packets).set_alignment(CellAlignment::Right),
            Cell::new(f.bytes).set_alignment(CellAlignment::Right),
            Cell::new(short_time(&f.start)),
            Cell::new(short_time(&f.end)),
            Cell::new(flags),
        ]);
    }
    t
}

/// `2026-11-23T10:11:12.345Z` -> `10:11:12.345`.
fn short_time(rfc3339: &str) -> &str {
    rfc3339
        .split_once('T')
        .map(|(_, t)| t.trim_end_matches('Z'))
        .unwrap_or(rfc3339)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_flags_render_like_nfdump() {
        assert_eq!(tcp_flags_string(0x02), "......S.");
        assert_eq!(tcp_flags_string(0x1b), "...AP.SF");
        assert_eq!(tcp_flags_string(0xff), "CEUAPRSF");
    }

    #[test]
    fn timestamps_are_rfc3339_with_milliseconds() {
        assert_eq!(rfc3339(1_700_000_000_123_456_789), "2023-11-14T22:13:20.123Z");
        assert_eq!(short_time("2023-11-14T22:13:20.123Z"), "22:13:20.123");
    }
}

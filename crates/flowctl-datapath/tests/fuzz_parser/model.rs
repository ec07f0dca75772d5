//! Where a frame must be counted, worked out from its bytes with the rules of
//! docs/architecture.md ("Datapath"), RFC 791, RFC 8200, RFC 4302 and RFC
//! 3032 (MPLS), written here independently of the C parser; tunnel GSO in
//! `model_tunnels.rs`. Where those rules say nothing (a few
//! bytes of an extension header, transport bytes past the IP length), the
//! field is left unchecked rather than guessed.

use std::net::{IpAddr, Ipv4Addr};

use flowctl_datapath::Direction;
use flowctl_model::{key_addr, FlowKey, DIRECTION_EGRESS, DIRECTION_INGRESS, MPLS_PRESENT};

use super::frames::{ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, ETH_P_MPLS_MC, ETH_P_MPLS_UC};
use super::model_tunnels::tunnel_payload;

/// The netns inode the test datapath is loaded with.
pub const NETNS: u32 = 4343;

/// How the frame is run.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub direction: Direction,
    pub ingress_ifindex: u32,
    /// GSO segments (0: not given, as virtio-net leaves it).
    pub gso_segs: u32,
    /// GSO segment size (0: a plain packet).
    pub gso_size: u32,
}

/// Where the frame must be counted.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// BPF_PROG_TEST_RUN itself refuses the frame: an untagged IPv4/IPv6
    /// frame whose IP header is not all there (see tests/parser.rs).
    Refused,
    NonIp,
    Malformed,
    Flow(Flow),
}

/// A flow entry, with the fields the rules leave open marked unchecked.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    pub key: FlowKey,
    pub packets: u64,
    pub octets: u64,
    pub tos: u8,
    pub ttl: u8,
    /// `None`: unchecked.
    pub tcp_flags: Option<u16>,
    pub ports_checked: bool,
    pub protocol_checked: bool,
    /// A GSO packet whose tunnel's inner headers were found.
    pub tunnel: bool,
}

/// Why the ports of a flow are unchecked, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unchecked {
    /// Transport bytes lie past the IP length, in the frame.
    TransportPastIpLength,
    /// An extension header walk reads past the IP length.
    ChainPastIpLength,
    /// 1 to 3 bytes of an extension header.
    PartialExtensionHeader,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// What parsing `frame` must give; `unchecked` notes why a field is open.
pub fn expect(frame: &[u8], run: Run, unchecked: &mut Vec<Unchecked>) -> Expect {
    let len = frame.len();
    let outer = be16(frame, 12);
    if (outer == ETH_P_IP && len < 14 + 20) || (outer == ETH_P_IPV6 && len < 14 + 40) {
        return Expect::Refused;
    }
    // Up to two in-band tags; a tag that is not all there leaves no ethertype.
    let (mut ethertype, mut off, mut vlans) = (outer, 14, Vec::new());
    while (ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD) && vlans.len() < 2 {
        if off + 4 > len {
            return Expect::NonIp;
        }
        vlans.push(be16(frame, off) & 0x0fff);
        ethertype = be16(frame, off + 2);
        off += 4;
    }
    // Up to 4 label stack entries to the bottom of the stack; the nibble
    // after it tells IPv4 from IPv6. The top entry's first 3 bytes are kept.
    let mut mpls_label = 0;
    if ethertype == ETH_P_MPLS_UC || ethertype == ETH_P_MPLS_MC {
        let mut bottom = false;
        for depth in 0..4 {
            if off + 4 > len {
                return Expect::NonIp;
            }
            if depth == 0 {
                mpls_label = MPLS_PRESENT | u32::from_be_bytes([0, frame[off], frame[off + 1], frame[off + 2]]);
            }
            bottom = frame[off + 2] & 1 == 1;
            off += 4;
            if bottom {
                break;
            }
        }
        if !bottom || off >= len {
            return Expect::NonIp;
        }
        ethertype = match frame[off] >> 4 {
            4 => ETH_P_IP,
            6 => ETH_P_IPV6,
            _ => return Expect::NonIp,
        };
    }
    let key = FlowKey {
        netns_ino: NETNS,
        ingress_ifindex: run.ingress_ifindex,
        egress_ifindex: if run.direction == Direction::Egress { 1 } else { 0 },
        vlan_id: vlans.first().copied().unwrap_or(0),
        inner_vlan_id: vlans.get(1).copied().unwrap_or(0),
        mpls_label,
        direction: if run.direction == Direction::Egress {
            DIRECTION_EGRESS
        } else {
            DIRECTION_INGRESS
        },
        ..FlowKey::default()
    };
    let ip = Ip { frame, off, key, run };
    match ethertype {
        ETH_P_IP => ip.v4(unchecked),
        ETH_P_IPV6 => ip.v6(unchecked),
        _ => Expect::NonIp,
    }
}

/// An IP packet at `off` in `frame`.
struct Ip<'a> {
    frame: &'a [u8],
    off: usize,
    key: FlowKey,
    run: Run,
}

/// Ports, TCP flags and transport header length from the transport layer.
struct Transport {
    src_port: u16,
    dst_port: u16,
    tcp_flags: Option<u16>,
    checked: bool,
    header_len: usize,
}

const NONE: Transport = Transport {
    src_port: 0,
    dst_port: 0,
    tcp_flags: Some(0),
    checked: true,
    header_len: 0,
};

impl Ip<'_> {
    fn b(&self, at: usize) -> u8 {
        self.frame[at]
    }

    /// L3 octets: the IP length field, never more than is present; a length
    /// of 0 (TSO/BIG TCP, jumbograms) means what is present.
    fn octets(&self, ip_len: usize) -> (u64, usize) {
        let present = self.frame.len() - self.off;
        let octets = if ip_len == 0 { present } else { ip_len.min(present) };
        let end = if ip_len == 0 {
            self.frame.len()
        } else {
            self.off + ip_len
        };
        (octets as u64, end)
    }

    /// The transport fields at `at`: TCP needs its first 14 bytes (ports to
    /// flags), UDP its ports, ICMP type and code; else ports 0.
    fn transport(&self, protocol: u8, at: usize, ip_end: usize, unchecked: &mut Vec<Unchecked>) -> Transport {
        let needed = match protocol {
            6 => 14,
            17 => 4,
            1 | 58 => 2,
            _ => return NONE,
        };
        if at + needed > self.frame.len() {
            return NONE;
        }
        if at + needed > ip_end {
            unchecked.push(Unchecked::TransportPastIpLength);
            return Transport {
                tcp_flags: None,
                checked: false,
                ..NONE
            };
        }
        let (src_port, dst_port) = match protocol {
            1 | 58 => (0, u16::from_be_bytes([self.b(at), self.b(at + 1)])),
            _ => (be16(self.frame, at), be16(self.frame, at + 2)),
        };
        let (tcp_flags, header_len) = match protocol {
            6 => (
                (u16::from(self.b(at + 12) & 0x0f) << 8) | u16::from(self.b(at + 13)),
                usize::from(self.b(at + 12) >> 4) * 4,
            ),
            _ => (0, 8),
        };
        Transport {
            src_port,
            dst_port,
            tcp_flags: Some(tcp_flags),
            checked: true,
            header_len,
        }
    }

    /// `headers`: the IP headers' length (the transport header is at
    /// `off + headers`).
    fn flow(&self, key: FlowKey, l3: (u64, usize), headers: usize, t: Transport, tos: u8, ttl: u8) -> Expect {
        // GSO (gso_size != 0): every segment repeats the headers up to the
        // payload, a tunnel's inner ones included; gso_segs 0 means
        // ceil(payload / gso_size). One segment is a plain packet.
        let (mut octets, mut packets, mut tunnel) = (l3.0, 1, false);
        if self.run.gso_size != 0 {
            let l4 = self.off + headers;
            let inner = tunnel_payload(self.frame, key.protocol, t.dst_port, l4);
            tunnel = inner.is_some();
            let end = inner.unwrap_or(l4 + t.header_len);
            let segs = match self.run.gso_segs {
                0 => (self.frame.len().saturating_sub(end) as u64).div_ceil(u64::from(self.run.gso_size)),
                n => u64::from(n),
            };
            if segs > 1 {
                let present = (self.frame.len() - self.off) as u64;
                (octets, packets) = (present + (segs - 1) * (end - self.off) as u64, segs);
            }
        }
        Expect::Flow(Flow {
            key: FlowKey {
                src_port: t.src_port,
                dst_port: t.dst_port,
                ..key
            },
            packets,
            octets,
            tos,
            ttl,
            tcp_flags: t.tcp_flags,
            ports_checked: t.checked,
            protocol_checked: true,
            tunnel,
        })
    }

    fn v4(&self, unchecked: &mut Vec<Unchecked>) -> Expect {
        let off = self.off;
        if self.frame.len() - off < 20 {
            return Expect::Malformed;
        }
        let (version, ihl) = (self.b(off) >> 4, usize::from(self.b(off) & 0x0f) * 4);
        if version != 4 || ihl < 20 {
            return Expect::Malformed;
        }
        let protocol = self.b(off + 9);
        let addr = |at: usize| {
            key_addr(IpAddr::V4(Ipv4Addr::new(
                self.b(at),
                self.b(at + 1),
                self.b(at + 2),
                self.b(at + 3),
            )))
        };
        let key = FlowKey {
            ip_version: 4,
            protocol,
            src_addr: addr(off + 12),
            dst_addr: addr(off + 16),
            ..self.key
        };
        let l3 = self.octets(usize::from(be16(self.frame, off + 2)));
        // Non-first fragments carry no transport header.
        let t = if be16(self.frame, off + 6) & 0x1fff != 0 {
            NONE
        } else {
            self.transport(protocol, off + ihl, l3.1, unchecked)
        };
        self.flow(key, l3, ihl, t, self.b(off + 1), self.b(off + 8))
    }

    fn v6(&self, unchecked: &mut Vec<Unchecked>) -> Expect {
        let off = self.off;
        let len = self.frame.len();
        if len - off < 40 {
            return Expect::Malformed;
        }
        if self.b(off) >> 4 != 6 {
            return Expect::Malformed;
        }
        let tos = (self.b(off) << 4) | (self.b(off + 1) >> 4);
        let payload_len = usize::from(be16(self.frame, off + 4));
        let l3 = self.octets(if payload_len == 0 { 0 } else { 40 + payload_len });
        let mut key = FlowKey {
            ip_version: 6,
            src_addr: self.frame[off + 8..off + 24].try_into().expect("16 bytes"),
            dst_addr: self.frame[off + 24..off + 40].try_into().expect("16 bytes"),
            ..self.key
        };
        // Walk at most 8 extension headers (RFC 8200 §4: hop-by-hop 0,
        // routing 43, fragment 44, destination options 60, mobility 135;
        // RFC 4302: AH 51). What follows a non-first fragment header is
        // fragment data, not headers.
        let (mut next, mut at) = (self.b(off + 6), off + 40);
        let mut reach_transport = true;
        let mut protocol_checked = true;
        for walked in 0..=8 {
            if !matches!(next, 0 | 43 | 44 | 51 | 60 | 135) {
                break;
            }
            let have = len.saturating_sub(at);
            if walked == 8 || have == 0 {
                // Longer than 8 headers, or truncated: the header type is the protocol.
                reach_transport = false;
                break;
            }
            if have < 4 {
                unchecked.push(Unchecked::PartialExtensionHeader);
                reach_transport = false;
                protocol_checked = false;
                break;
            }
            if at + 4 > l3.1 {
                unchecked.push(Unchecked::ChainPastIpLength);
                protocol_checked = false;
            }
            let header_len = match next {
                44 => 8,
                51 => (usize::from(self.b(at + 1)) + 2) * 4,
                _ => (usize::from(self.b(at + 1)) + 1) * 8,
            };
            let non_first_fragment = next == 44 && be16(self.frame, at + 2) & 0xfff8 != 0;
            next = self.b(at);
            at += header_len;
            if non_first_fragment {
                reach_transport = false;
                break;
            }
        }
        key.protocol = next;
        let mut t = if reach_transport {
            self.transport(next, at, l3.1, unchecked)
        } else {
            NONE
        };
        if !protocol_checked {
            t.checked = false;
            t.tcp_flags = None;
        }
        match self.flow(key, l3, at - off, t, tos, self.b(off + 7)) {
            Expect::Flow(flow) => Expect::Flow(Flow {
                protocol_checked,
                ..flow
            }),
            other => other,
        }
    }
}

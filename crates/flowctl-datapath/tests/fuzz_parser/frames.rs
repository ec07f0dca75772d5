//! Frames built from layers (Ethernet, VLAN tags, MPLS label stacks, IPv4
//! with options, IPv6 with extension header chains, TCP/UDP/ICMP/other,
//! tunnels from `tunnels.rs`), with structured corruption: bogus version,
//! IHL, lengths and extension header lengths, fragments, stacked tags, label
//! stacks too deep or without a bottom, truncation anywhere, Ethernet
//! padding.

use flowctl_datapath::Direction;
use proptest::prelude::*;
use proptest::sample::{select, Index};

use super::tunnels;

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;
pub const ETH_P_MPLS_UC: u16 = 0x8847;
pub const ETH_P_MPLS_MC: u16 = 0x8848;

/// One MPLS label stack entry (TTL 64).
#[derive(Clone, Copy, Debug)]
pub struct Lse {
    pub label: u32,
    pub tc: u8,
    pub bottom: bool,
}

impl Lse {
    /// Its first 3 bytes: label << 4 | TC << 1 | S.
    pub fn section(&self) -> u32 {
        (self.label << 4) | (u32::from(self.tc) << 1) | u32::from(self.bottom)
    }
}
/// An IP length field: right, 0, off by a little, or anything.
#[derive(Clone, Copy, Debug)]
pub enum LenField {
    Exact,
    Zero,
    Off(i16),
    Any(u16),
}

impl LenField {
    fn value(self, exact: usize) -> u16 {
        match self {
            LenField::Exact => exact as u16,
            LenField::Zero => 0,
            LenField::Off(d) => (exact as u16).wrapping_add_signed(d),
            LenField::Any(v) => v,
        }
    }
}

/// Transport layer.
#[derive(Clone, Debug)]
pub enum L4 {
    /// `flags`: the 12 bits of RFC 7125 (data offset byte's low nibble, flags byte).
    Tcp {
        sport: u16,
        dport: u16,
        flags: u16,
        options: Vec<u8>,
        payload: Vec<u8>,
    },
    Udp {
        sport: u16,
        dport: u16,
        payload: Vec<u8>,
    },
    Icmp {
        ty: u8,
        code: u8,
        payload: Vec<u8>,
    },
    Other {
        protocol: u8,
        payload: Vec<u8>,
    },
}

impl L4 {
    /// Protocol number (ICMP is 1 over IPv4, 58 over IPv6).
    pub fn protocol(&self, v6: bool) -> u8 {
        match self {
            L4::Tcp { .. } => 6,
            L4::Udp { .. } => 17,
            L4::Icmp { .. } => {
                if v6 {
                    58
                } else {
                    1
                }
            }
            L4::Other { protocol, .. } => *protocol,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            L4::Tcp {
                sport,
                dport,
                flags,
                options,
                payload,
            } => {
                let data_offset = (20 + options.len()) / 4;
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
                b.push(((data_offset as u8) << 4) | ((flags >> 8) as u8 & 0x0f));
                b.push(*flags as u8);
                b.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
                b.extend_from_slice(options);
                b.extend_from_slice(payload);
            }
            L4::Udp { sport, dport, payload } => {
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
                b.extend_from_slice(&[0, 0]);
                b.extend_from_slice(payload);
            }
            L4::Icmp { ty, code, payload } => {
                b.extend_from_slice(&[*ty, *code, 0, 0, 0, 1, 0, 1]);
                b.extend_from_slice(payload);
            }
            L4::Other { payload, .. } => b.extend_from_slice(payload),
        }
        b
    }
}

/// An IPv6 extension header.
#[derive(Clone, Debug)]
pub enum Ext {
    /// Hop-by-hop (0), routing (43), destination options (60), mobility
    /// (135): `(len + 1) * 8` bytes.
    Options { ty: u8, len: u8 },
    /// Fragment header (44): offset in 8-byte units.
    Fragment { offset: u16, more: bool },
    /// Authentication header (51): `(len + 2) * 4` bytes.
    Auth { len: u8 },
}

impl Ext {
    pub fn ty(&self) -> u8 {
        match self {
            Ext::Options { ty, .. } => *ty,
            Ext::Fragment { .. } => 44,
            Ext::Auth { .. } => 51,
        }
    }

    fn bytes(&self, next: u8, bogus_len: Option<u8>) -> Vec<u8> {
        let mut b = match self {
            Ext::Options { len, .. } => {
                let mut b = vec![next, *len, 1, (usize::from(*len) * 8 + 4) as u8];
                b.resize((usize::from(*len) + 1) * 8, 0);
                b
            }
            Ext::Fragment { offset, more } => {
                let field = (offset << 3) | u16::from(*more);
                let mut b = vec![next, 0];
                b.extend_from_slice(&field.to_be_bytes());
                b.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
                b
            }
            Ext::Auth { len } => {
                let mut b = vec![next, *len, 0, 0, 0, 0, 0x10, 1];
                b.resize((usize::from(*len) + 2) * 4, 0xaa);
                b
            }
        };
        if let Some(len) = bogus_len {
            b[1] = len;
        }
        b
    }
}

#[derive(Clone, Debug)]
pub struct Ipv4 {
    pub tos: u8,
    pub ttl: u8,
    /// Options: `ihl - 5` words (NOPs or random bytes).
    pub options: Vec<u8>,
    /// More fragments, fragment offset (8-byte units).
    pub more_fragments: bool,
    pub fragment_offset: u16,
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub l4: L4,
    /// Corruptions: version nibble, IHL field, total length, protocol.
    pub version: Option<u8>,
    pub ihl: Option<u8>,
    pub total_len: LenField,
    pub protocol: Option<u8>,
}

#[derive(Clone, Debug)]
pub struct Ipv6 {
    pub traffic_class: u8,
    pub hop_limit: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    /// Extension headers, each with a bogus header length or not.
    pub exts: Vec<(Ext, Option<u8>)>,
    pub l4: L4,
    pub version: Option<u8>,
    pub payload_len: LenField,
}

#[derive(Clone, Debug)]
pub enum L3 {
    Ipv4(Ipv4),
    Ipv6(Ipv6),
    Other { ethertype: u16, payload: Vec<u8> },
}

/// One test frame and how it is run.
#[derive(Clone, Debug)]
pub struct Frame {
    /// In-band tags (TPID, TCI), outermost first.
    pub tags: Vec<(u16, u16)>,
    /// MPLS label stack, top first (empty: none), and whether its ethertype
    /// is the multicast one.
    pub mpls: Vec<Lse>,
    pub mpls_multicast: bool,
    pub l3: L3,
    /// Where the frame is cut (`None`: whole).
    pub cut: Option<Index>,
    /// Padded with zeros to the 60-byte Ethernet minimum.
    pub pad: bool,
    pub direction: Direction,
    pub ingress_ifindex: u32,
    /// GSO segments and size, for well-formed TCP and UDP frames only.
    pub gso: Option<(u32, u32)>,
}

impl Frame {
    /// The frame's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        for (tpid, tci) in &self.tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        let (mut ethertype, l3) = self.l3.bytes();
        if !self.mpls.is_empty() {
            ethertype = if self.mpls_multicast {
                ETH_P_MPLS_MC
            } else {
                ETH_P_MPLS_UC
            };
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        for lse in &self.mpls {
            f.extend_from_slice(&((lse.section() << 8) | 64).to_be_bytes());
        }
        f.extend_from_slice(&l3);
        if let Some(cut) = &self.cut {
            f.truncate(14 + cut.index(f.len() - 14 + 1));
        }
        if self.pad && f.len() < 60 {
            f.resize(60, 0);
        }
        f
    }

    /// No corruption, no truncation, at most two tags: the flow key must be
    /// exactly what was built.
    pub fn well_formed(&self) -> bool {
        let fields = match &self.l3 {
            L3::Ipv4(ip) => {
                ip.version.is_none()
                    && ip.ihl.is_none()
                    && matches!(ip.total_len, LenField::Exact)
                    && ip.protocol.is_none()
            }
            L3::Ipv6(ip) => {
                ip.version.is_none()
                    && matches!(ip.payload_len, LenField::Exact)
                    && ip.exts.iter().all(|(_, bogus)| bogus.is_none())
            }
            L3::Other { .. } => false,
        };
        let mpls = self.mpls.is_empty()
            || (self.mpls.len() <= 4
                && self
                    .mpls
                    .iter()
                    .enumerate()
                    .all(|(i, l)| l.bottom == (i + 1 == self.mpls.len())));
        fields && mpls && self.cut.is_none() && self.tags.len() <= 2 && !self.pad
    }
}

impl L3 {
    /// Its ethertype and bytes.
    pub fn bytes(&self) -> (u16, Vec<u8>) {
        match self {
            L3::Ipv4(ip) => (ETH_P_IP, ipv4_bytes(ip)),
            L3::Ipv6(ip) => (ETH_P_IPV6, ipv6_bytes(ip)),
            L3::Other { ethertype, payload } => (*ethertype, payload.clone()),
        }
    }
}

fn ipv4_bytes(ip: &Ipv4) -> Vec<u8> {
    let l4 = ip.l4.bytes();
    let ihl = 5 + ip.options.len() / 4;
    let total = ihl * 4 + l4.len();
    let version = ip.version.unwrap_or(4);
    let mut h = vec![(version << 4) | ip.ihl.unwrap_or(ihl as u8) & 0x0f, ip.tos];
    h.extend_from_slice(&ip.total_len.value(total).to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34]);
    let frag = (u16::from(ip.more_fragments) << 13) | (ip.fragment_offset & 0x1fff);
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[ip.ttl, ip.protocol.unwrap_or(ip.l4.protocol(false)), 0, 0]);
    h.extend_from_slice(&ip.src);
    h.extend_from_slice(&ip.dst);
    h.extend_from_slice(&ip.options);
    h.extend_from_slice(&l4);
    h
}

fn ipv6_bytes(ip: &Ipv6) -> Vec<u8> {
    let mut payload = Vec::new();
    for (i, (ext, bogus)) in ip.exts.iter().enumerate() {
        let next = ip.exts.get(i + 1).map_or(ip.l4.protocol(true), |(e, _)| e.ty());
        payload.extend(ext.bytes(next, *bogus));
    }
    payload.extend(ip.l4.bytes());
    let first = ip.exts.first().map_or(ip.l4.protocol(true), |(e, _)| e.ty());
    let version = ip.version.unwrap_or(6);
    let mut h = vec![
        (version << 4) | (ip.traffic_class >> 4),
        (ip.traffic_class << 4) | 0x0a,
        0xbc,
        0xde,
    ];
    h.extend_from_slice(&ip.payload_len.value(payload.len()).to_be_bytes());
    h.extend_from_slice(&[first, ip.hop_limit]);
    h.extend_from_slice(&ip.src);
    h.extend_from_slice(&ip.dst);
    h.extend_from_slice(&payload);
    h
}

// ---------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------

/// Mostly `None` (the right value), sometimes a corruption.
fn sometimes<T: std::fmt::Debug + Clone + 'static>(s: impl Strategy<Value = T> + 'static) -> BoxedStrategy<Option<T>> {
    prop_oneof![7 => Just(None), 1 => s.prop_map(Some)].boxed()
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![3 => prop::collection::vec(any::<u8>(), 0..24), 1 => prop::collection::vec(any::<u8>(), 24..300)]
}

fn len_field() -> impl Strategy<Value = LenField> {
    prop_oneof![
        12 => Just(LenField::Exact),
        1 => Just(LenField::Zero),
        2 => (-30i16..30).prop_map(LenField::Off),
        1 => any::<u16>().prop_map(LenField::Any),
    ]
}

/// A transport layer (no tunnel: `tunnels.rs` builds those).
pub fn l4() -> impl Strategy<Value = L4> {
    let tcp_options = (0usize..=10).prop_flat_map(|words| prop::collection::vec(any::<u8>(), words * 4));
    let other = prop_oneof![select(vec![2u8, 4, 41, 47, 50, 59, 103, 132, 253, 254]), any::<u8>(),];
    prop_oneof![
        3 => (any::<u16>(), any::<u16>(), 0u16..0x1000, tcp_options, payload())
            .prop_map(|(sport, dport, flags, options, payload)| L4::Tcp { sport, dport, flags, options, payload }),
        3 => (any::<u16>(), any::<u16>(), payload()).prop_map(|(sport, dport, payload)| L4::Udp { sport, dport, payload }),
        1 => (any::<u8>(), any::<u8>(), payload()).prop_map(|(ty, code, payload)| L4::Icmp { ty, code, payload }),
        1 => (other, payload()).prop_map(|(protocol, payload)| L4::Other { protocol, payload }),
    ]
}

fn fragment_offset() -> impl Strategy<Value = u16> {
    prop_oneof![4 => Just(0u16), 1 => 1u16..8, 1 => 0u16..0x2000]
}

fn ipv4() -> impl Strategy<Value = Ipv4> {
    ipv4_with(l4())
}

/// An IPv4 packet (corruptions included) carrying `l4`.
pub fn ipv4_with(l4: impl Strategy<Value = L4>) -> impl Strategy<Value = Ipv4> {
    let options = prop_oneof![
        3 => Just(Vec::new()),
        1 => (1usize..=10).prop_map(|words| vec![1u8; words * 4]),
        1 => (1usize..=10).prop_flat_map(|words| prop::collection::vec(any::<u8>(), words * 4)),
    ];
    let corruptions = (
        sometimes(0u8..16),
        sometimes(0u8..16),
        len_field(),
        sometimes(any::<u8>()),
    );
    (
        (any::<u8>(), 1u8..=255, options, any::<bool>(), fragment_offset()),
        (any::<[u8; 4]>(), any::<[u8; 4]>(), l4),
        corruptions,
    )
        .prop_map(
            |(
                (tos, ttl, options, more_fragments, fragment_offset),
                (src, dst, l4),
                (version, ihl, total_len, protocol),
            )| {
                Ipv4 {
                    tos,
                    ttl,
                    options,
                    more_fragments,
                    fragment_offset,
                    src,
                    dst,
                    l4,
                    version,
                    ihl,
                    total_len,
                    protocol,
                }
            },
        )
}

fn ext() -> impl Strategy<Value = (Ext, Option<u8>)> {
    let ext = prop_oneof![
        4 => (select(vec![0u8, 43, 60, 135]), prop_oneof![3 => Just(0u8), 1 => 1u8..4])
            .prop_map(|(ty, len)| Ext::Options { ty, len }),
        2 => (fragment_offset(), any::<bool>()).prop_map(|(offset, more)| Ext::Fragment { offset, more }),
        1 => (1u8..=6).prop_map(|len| Ext::Auth { len }),
    ];
    (ext, sometimes(any::<u8>()))
}

fn ipv6() -> impl Strategy<Value = Ipv6> {
    ipv6_with(l4())
}

/// An IPv6 packet (corruptions included) carrying `l4`.
pub fn ipv6_with(l4: impl Strategy<Value = L4>) -> impl Strategy<Value = Ipv6> {
    let exts = prop_oneof![2 => Just(Vec::new()), 3 => prop::collection::vec(ext(), 1..=10)];
    (
        (any::<u8>(), any::<u8>(), any::<[u8; 16]>(), any::<[u8; 16]>()),
        (exts, l4),
        (sometimes(0u8..16), len_field()),
    )
        .prop_map(
            |((traffic_class, hop_limit, src, dst), (exts, l4), (version, payload_len))| Ipv6 {
                traffic_class,
                hop_limit,
                src,
                dst,
                exts,
                l4,
                version,
                payload_len,
            },
        )
}

fn non_ip() -> impl Strategy<Value = L3> {
    let ethertype = prop_oneof![
        select(vec![0x0806u16, 0x88cc, 0x8847, 0x8863, 0x9100, 0x0842]),
        0u16..0x600,
        any::<u16>(),
    ];
    (ethertype, payload()).prop_map(|(ethertype, payload)| L3::Other { ethertype, payload })
}

/// Mostly no label stack; else 1 to 4 labels with the bottom-of-stack bit
/// on the last, or up to 6 with S bits anywhere; multicast now and then.
fn mpls() -> impl Strategy<Value = (Vec<Lse>, bool)> {
    let lse = |bottom: BoxedStrategy<bool>| {
        (0u32..1 << 20, 0u8..8, bottom).prop_map(|(label, tc, bottom)| Lse { label, tc, bottom })
    };
    let proper = prop::collection::vec(lse(Just(false).boxed()), 1..=4).prop_map(|mut stack| {
        if let Some(last) = stack.last_mut() {
            last.bottom = true;
        }
        stack
    });
    let any_bits = prop::collection::vec(lse(any::<bool>().boxed()), 1..=6);
    let stack = prop_oneof![6 => Just(Vec::new()), 3 => proper, 1 => any_bits];
    (stack, prop_oneof![4 => Just(false), 1 => Just(true)])
}

fn tags() -> impl Strategy<Value = Vec<(u16, u16)>> {
    let tag = (select(vec![ETH_P_8021Q, ETH_P_8021AD]), any::<u16>());
    prop_oneof![4 => Just(Vec::new()), 2 => prop::collection::vec(tag.clone(), 1..=2), 1 => prop::collection::vec(tag, 3..=4)]
}

pub fn frame() -> impl Strategy<Value = Frame> {
    // Boxed: the value trees of tunnels (an IP packet in an IP packet) are
    // large enough to overflow a test thread's stack when nested unboxed.
    let l3 = prop_oneof![
        4 => ipv4().prop_map(L3::Ipv4).boxed(),
        4 => ipv6().prop_map(L3::Ipv6).boxed(),
        1 => non_ip().boxed(),
        3 => ipv4_with(tunnels::encapsulation().boxed()).prop_map(L3::Ipv4).boxed(),
        3 => ipv6_with(tunnels::encapsulation().boxed()).prop_map(L3::Ipv6).boxed(),
    ];
    let cut = prop_oneof![4 => Just(None), 1 => any::<Index>().prop_map(Some)];
    // gso_segs 0 as virtio-net leaves it, or set; gso_size small enough
    // that test frames (a few hundred bytes) make several segments.
    let gso = (
        prop_oneof![1 => Just(0u32), 1 => 2u32..=4],
        prop_oneof![3 => 1u32..=8, 1 => 1u32..=1400],
    );
    let run = (
        select(vec![Direction::Egress, Direction::Ingress]),
        select(vec![0u32, 1]),
        prop_oneof![1 => Just(None), 1 => gso.prop_map(Some)],
    );
    (
        tags(),
        mpls(),
        l3,
        cut,
        prop_oneof![5 => Just(false), 1 => Just(true)],
        run,
    )
        .prop_map(
            |(tags, (mpls, mpls_multicast), l3, cut, pad, (direction, ingress_ifindex, gso))| {
                let mut frame = Frame {
                    tags,
                    mpls,
                    mpls_multicast,
                    l3,
                    cut,
                    pad,
                    direction,
                    ingress_ifindex,
                    gso,
                };
                // GSO only describes well-formed TCP and UDP super-packets, bare
                // or in a tunnel.
                let tcp_udp = |l4: &L4| {
                    matches!(
                        l4,
                        L4::Tcp { .. }
                            | L4::Udp { .. }
                            | L4::Other {
                                protocol: 4 | 41 | 47,
                                ..
                            }
                    )
                };
                let gso_fits = match &frame.l3 {
                    L3::Ipv4(ip) => tcp_udp(&ip.l4) && ip.fragment_offset == 0 && !ip.more_fragments,
                    L3::Ipv6(ip) => tcp_udp(&ip.l4) && ip.exts.iter().all(|(e, _)| !matches!(e, Ext::Fragment { .. })),
                    L3::Other { .. } => false,
                };
                if !(gso_fits && frame.well_formed()) {
                    frame.gso = None;
                }
                frame
            },
        )
}

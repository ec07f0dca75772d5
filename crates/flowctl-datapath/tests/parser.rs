//! The real classifier, fed crafted packets through BPF_PROG_TEST_RUN (root
//! needed): every parse path lands in the right flow with the right counts.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::IpAddr,
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
};

use etherparse::{ArpHardwareId, ArpOperation, ArpPacket, EtherType, PacketBuilder, TcpOptionElement};
use flowctl_datapath::{
    test_run::{DetachedDatapath, SkbContext},
    Direction, FlowTable, PinLayout,
};
use flowctl_model::{key_addr, DatapathCounters, FlowKey, FlowSource, FlowStats, DIRECTION_EGRESS, DIRECTION_INGRESS};
use gso::gso;

#[path = "parser/gso.rs"]
mod gso;
#[path = "parser/mpls.rs"]
mod mpls;
#[path = "parser/tunnels.rs"]
mod tunnels;

const TC_ACT_UNSPEC: i32 = -1;

/// A freshly loaded datapath with its own pin directory, removed on drop.
struct Harness {
    base: PathBuf,
    layout: PinLayout,
    datapath: DetachedDatapath,
}

impl Harness {
    fn new(max_flows: Option<u32>) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let base = PathBuf::from(format!(
            "/sys/fs/bpf/flowctl-test-parser-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let layout = PinLayout::under(&base);
        let datapath = DetachedDatapath::load(&layout, 4242, max_flows).expect("load datapath (run as root)");
        Self { base, layout, datapath }
    }

    fn send(&self, direction: Direction, packet: &[u8], ctx: SkbContext) {
        let verdict = self.datapath.run(direction, packet, ctx).expect("test run");
        assert_eq!(verdict, TC_ACT_UNSPEC, "the classifier must never change the verdict");
    }

    fn egress(&self, packet: &[u8]) {
        self.send(Direction::Egress, packet, SkbContext::default());
    }

    fn flows(&self) -> Vec<(FlowKey, FlowStats)> {
        let mut f: Vec<_> = FlowTable::open(&self.layout)
            .unwrap()
            .read_all()
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.stats))
            .collect();
        f.sort_by_key(|(k, _)| *k);
        f
    }

    fn only_flow(&self) -> (FlowKey, FlowStats) {
        let f = self.flows();
        assert_eq!(f.len(), 1, "expected exactly one flow, got {f:#?}");
        f[0]
    }

    fn counters(&self) -> DatapathCounters {
        FlowTable::open(&self.layout).unwrap().counters().unwrap()
    }

    /// Asserts that the cache holds exactly `expected` (key, packets, octets)
    /// and returns the stats of each, in the order of `expected`.
    fn assert_flows(&self, expected: &[(FlowKey, u64, u64)]) -> Vec<FlowStats> {
        let flows = self.flows();
        let mut want_keys: Vec<FlowKey> = expected.iter().map(|e| e.0).collect();
        want_keys.sort();
        let got_keys: Vec<FlowKey> = flows.iter().map(|f| f.0).collect();
        assert_eq!(got_keys, want_keys, "flow keys differ; flows: {flows:#?}");
        expected
            .iter()
            .map(|(key, packets, octets)| {
                let (_, s) = flows.iter().find(|f| f.0 == *key).unwrap();
                assert_eq!((s.packets, s.octets), (*packets, *octets), "packets/octets of {key:#?}");
                *s
            })
            .collect()
    }

    /// Asserts that no frame was counted as non-IP, malformed or not recorded.
    fn assert_no_exceptions(&self) {
        assert_eq!(self.counters(), DatapathCounters::default());
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn udp4(payload: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(1000, 2000);
    let mut out = Vec::new();
    b.write(&mut out, &vec![0xab; payload]).unwrap();
    out
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ipv4_udp_is_one_flow_with_l3_octets() {
    let h = Harness::new(None);
    h.egress(&udp4(100));
    h.egress(&udp4(100));
    let (k, s) = h.only_flow();
    assert_eq!(k.ip_version, 4);
    assert_eq!(k.protocol, 17);
    assert_eq!(k.netns_ino, 4242);
    assert_eq!(k.direction, 1);
    assert_eq!(k.egress_ifindex, 1);
    assert_eq!(k.src_addr, key_addr("192.0.2.1".parse().unwrap()));
    assert_eq!(k.dst_addr, key_addr("192.0.2.2".parse().unwrap()));
    assert_eq!((k.src_port, k.dst_port), (1000, 2000));
    assert_eq!(s.packets, 2);
    assert_eq!(s.octets, 2 * (20 + 8 + 100));
    assert_eq!((s.min_ttl, s.max_ttl), (64, 64));
    assert!(s.first_seen_ns > 0 && s.last_seen_ns >= s.first_seen_ns);
}

// ---------------------------------------------------------------------------
// Packet material shared by the tests below.
// ---------------------------------------------------------------------------

const NETNS: u32 = 4242;
const MAC_SRC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_DST: [u8; 6] = [2, 0, 0, 0, 0, 2];
const SRC4: [u8; 4] = [192, 0, 2, 1];
const DST4: [u8; 4] = [192, 0, 2, 2];
const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

const PROTO_HOP: u8 = 0;
const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ROUTING: u8 = 43;
const PROTO_FRAGMENT: u8 = 44;
const PROTO_GRE: u8 = 47;
const PROTO_AH: u8 = 51;
const PROTO_ICMPV6: u8 = 58;
const PROTO_DEST: u8 = 60;
const PROTO_MOBILITY: u8 = 135;

/// TCP flag bits as `flow_value.tcp_flags` stores them (RFC 7125 order).
const FIN: u16 = 0x001;
const SYN: u16 = 0x002;
const PSH: u16 = 0x008;
const ACK: u16 = 0x010;
const ECE: u16 = 0x040;
const CWR: u16 = 0x080;
const NS: u16 = 0x100;

/// The key an egress (default context) IPv4 packet from SRC4 to DST4 gets.
fn key4(protocol: u8, src_port: u16, dst_port: u16) -> FlowKey {
    FlowKey {
        netns_ino: NETNS,
        ingress_ifindex: 0,
        egress_ifindex: 1,
        src_addr: key_addr(IpAddr::from(SRC4)),
        dst_addr: key_addr(IpAddr::from(DST4)),
        src_port,
        dst_port,
        vlan_id: 0,
        inner_vlan_id: 0,
        direction: DIRECTION_EGRESS,
        ip_version: 4,
        protocol,
        sampling_tag: 0,
        mpls_label: 0,
    }
}

/// The key an egress (default context) IPv6 packet from SRC6 to DST6 gets.
fn key6(protocol: u8, src_port: u16, dst_port: u16) -> FlowKey {
    FlowKey {
        src_addr: SRC6,
        dst_addr: DST6,
        ip_version: 6,
        ..key4(protocol, src_port, dst_port)
    }
}

/// Ethernet frame: `tags` are (TPID, VID) pairs written outermost first.
fn tagged_frame(tags: &[(u16, u16)], ethertype: u16, l3: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_DST);
    f.extend_from_slice(&MAC_SRC);
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(l3);
    f
}

fn frame(ethertype: u16, l3: &[u8]) -> Vec<u8> {
    tagged_frame(&[], ethertype, l3)
}

/// IPv4 header of `ihl` 32-bit words (options are NOPs), with the given total
/// length and flags/fragment-offset field; checksum left 0 (not checked).
fn ipv4_header(ihl: u8, total_len: u16, flags_frag: u16, protocol: u8) -> Vec<u8> {
    let mut h = vec![0x40 | ihl, 0x00];
    h.extend_from_slice(&total_len.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34]); // identification
    h.extend_from_slice(&flags_frag.to_be_bytes());
    h.extend_from_slice(&[64, protocol, 0, 0]);
    h.extend_from_slice(&SRC4);
    h.extend_from_slice(&DST4);
    h.resize(ihl as usize * 4, 0x01); // NOP options
    h
}

/// A complete IPv4 packet whose total length matches `l4`.
fn ipv4(ihl: u8, flags_frag: u16, protocol: u8, l4: &[u8]) -> Vec<u8> {
    let mut p = ipv4_header(ihl, (ihl as usize * 4 + l4.len()) as u16, flags_frag, protocol);
    p.extend_from_slice(l4);
    p
}

/// IPv4 flags/fragment-offset field: More Fragments bit and offset in bytes.
fn frag4(more: bool, offset_bytes: u16) -> u16 {
    assert_eq!(offset_bytes % 8, 0);
    (if more { 0x2000 } else { 0 }) | (offset_bytes / 8)
}

/// A complete IPv6 packet (hop limit 64) whose payload length matches.
fn ipv6(next_header: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next_header, 64]);
    p.extend_from_slice(&SRC6);
    p.extend_from_slice(&DST6);
    p.extend_from_slice(payload);
    p
}

/// An 8-byte hop-by-hop / routing / destination-options / mobility header.
fn ext8(next_header: u8) -> Vec<u8> {
    vec![next_header, 0, 1, 4, 0, 0, 0, 0] // PadN over the 6 option bytes
}

/// An IPv6 fragment header.
fn frag6(next_header: u8, offset_bytes: u16, more: bool) -> Vec<u8> {
    assert_eq!(offset_bytes % 8, 0);
    let field = offset_bytes | u16::from(more);
    let mut h = vec![next_header, 0];
    h.extend_from_slice(&field.to_be_bytes());
    h.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    h
}

/// A 24-byte authentication header (12-byte ICV): payload length field 4.
fn ah(next_header: u8) -> Vec<u8> {
    let mut h = vec![next_header, 4, 0, 0];
    h.extend_from_slice(&[0, 0, 0x10, 0x01]); // SPI
    h.extend_from_slice(&[0, 0, 0, 1]); // sequence number
    h.extend_from_slice(&[0xaa; 12]); // ICV
    assert_eq!(h.len(), (4 + 2) * 4);
    h
}

fn udp(src_port: u16, dst_port: u16, payload: usize) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&src_port.to_be_bytes());
    h.extend_from_slice(&dst_port.to_be_bytes());
    h.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.resize(8 + payload, 0xab);
    h
}

/// TCP segment: `flags` in `tcp_flags` form (bit 8 = NS), options padded to 4.
fn tcp(src_port: u16, dst_port: u16, flags: u16, options: &[u8], payload: usize) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let data_offset = (20 + options.len()) / 4;
    let mut h = Vec::new();
    h.extend_from_slice(&src_port.to_be_bytes());
    h.extend_from_slice(&dst_port.to_be_bytes());
    h.extend_from_slice(&1u32.to_be_bytes());
    h.extend_from_slice(&2u32.to_be_bytes());
    h.push(((data_offset as u8) << 4) | ((flags >> 8) as u8 & 0x0f));
    h.push(flags as u8);
    h.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]); // window, checksum, urgent
    h.extend_from_slice(options);
    h.resize(h.len() + payload, 0xcd);
    h
}

fn udp4_ports(src_port: u16, dst_port: u16, payload: usize) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv4(SRC4, DST4, 64)
        .udp(src_port, dst_port)
        .write(&mut out, &vec![0xab; payload])
        .unwrap();
    out
}

// ---------------------------------------------------------------------------
// 1. Transport protocols
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ipv6_udp_is_one_flow_with_l3_octets() {
    let h = Harness::new(None);
    let mut p = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv6(SRC6, DST6, 33)
        .udp(5353, 53)
        .write(&mut p, &[0x11; 60])
        .unwrap();
    h.egress(&p);
    h.egress(&p);
    h.egress(&p);
    let s = h.assert_flows(&[(key6(PROTO_UDP, 5353, 53), 3, 3 * (40 + 8 + 60))]);
    assert_eq!(s[0].tcp_flags, 0);
    assert_eq!((s[0].min_ttl, s[0].max_ttl), (33, 33));
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ipv6_tcp_ors_the_flags_of_every_segment() {
    let h = Harness::new(None);
    let base = || {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ipv6(SRC6, DST6, 64)
            .tcp(40000, 443, 7, 1024)
    };
    let mut syn = Vec::new();
    base().syn().write(&mut syn, &[]).unwrap();
    let mut ack_psh = Vec::new();
    base().ack(1).psh().write(&mut ack_psh, &[0x42; 100]).unwrap();
    let mut fin_ack = Vec::new();
    base().fin().ack(1).write(&mut fin_ack, &[]).unwrap();
    for p in [&syn, &ack_psh, &fin_ack] {
        h.egress(p);
    }
    let s = h.assert_flows(&[(key6(PROTO_TCP, 40000, 443), 3, (40 + 20) + (40 + 20 + 100) + (40 + 20))]);
    assert_eq!(s[0].tcp_flags, SYN | ACK | PSH | FIN);
    assert_eq!(s[0].tcp_flags, 0x1b);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ipv4_tcp_flags_include_the_ns_ae_bit() {
    let h = Harness::new(None);
    let base = || {
        PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
            .ipv4(SRC4, DST4, 64)
            .tcp(40000, 80, 7, 1024)
    };
    let mut ns_ack = Vec::new();
    base().ns().ack(1).write(&mut ns_ack, &[0x42; 10]).unwrap();
    // Byte 12 is data offset 5, low nibble 1 (NS/AE); byte 13 is ACK.
    assert_eq!(&ns_ack[14 + 20 + 12..14 + 20 + 14], &[0x51, 0x10]);
    h.egress(&ns_ack);
    let s = h.assert_flows(&[(key4(PROTO_TCP, 40000, 80), 1, 20 + 20 + 10)]);
    assert_eq!(s[0].tcp_flags, NS | ACK);
    assert_eq!(s[0].tcp_flags, 0x110);

    let mut syn_ece_cwr = Vec::new();
    base().syn().ece().cwr().write(&mut syn_ece_cwr, &[]).unwrap();
    h.egress(&syn_ece_cwr);
    let s = h.assert_flows(&[(key4(PROTO_TCP, 40000, 80), 2, (20 + 20 + 10) + (20 + 20))]);
    assert_eq!(s[0].tcp_flags, NS | CWR | ECE | ACK | SYN);
    assert_eq!(s[0].tcp_flags, 0x1d2);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn tos_of_the_first_packet_and_ttl_range_are_kept() {
    let h = Harness::new(None);
    for (tos, ttl) in [(0xb8u8, 64u8), (0x00, 3), (0x28, 200)] {
        let mut p = ipv4(5, 0, PROTO_UDP, &udp(1000, 2000, 4));
        p[1] = tos;
        p[8] = ttl;
        h.egress(&frame(ETH_P_IP, &p));
    }
    // IPv6 traffic class 0xb8 spans the first two bytes; hop limit 9.
    let mut p6 = ipv6(PROTO_UDP, &udp(1000, 2000, 4));
    p6[0] = 0x6b;
    p6[1] = 0x80;
    p6[7] = 9;
    h.egress(&frame(ETH_P_IPV6, &p6));
    let s = h.assert_flows(&[
        (key4(PROTO_UDP, 1000, 2000), 3, 3 * (20 + 12)),
        (key6(PROTO_UDP, 1000, 2000), 1, 40 + 12),
    ]);
    assert_eq!((s[0].tos, s[0].min_ttl, s[0].max_ttl), (0xb8, 3, 200));
    assert_eq!((s[1].tos, s[1].min_ttl, s[1].max_ttl), (0xb8, 9, 9));
    h.assert_no_exceptions();
}

// ---------------------------------------------------------------------------
// 2. IPv4 options
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ipv4_options_are_skipped_for_ports_and_counted_in_octets() {
    let h = Harness::new(None);
    // IHL 6: one word of options before UDP.
    h.egress(&frame(ETH_P_IP, &ipv4(6, 0, PROTO_UDP, &udp(1111, 2222, 30))));
    // IHL 15: the maximum, 40 bytes of options before TCP.
    h.egress(&frame(ETH_P_IP, &ipv4(15, 0, PROTO_TCP, &tcp(3333, 4444, SYN, &[], 5))));
    let s = h.assert_flows(&[
        (key4(PROTO_UDP, 1111, 2222), 1, 24 + 8 + 30),
        (key4(PROTO_TCP, 3333, 4444), 1, 60 + 20 + 5),
    ]);
    assert_eq!(s[0].tcp_flags, 0);
    assert_eq!(s[1].tcp_flags, SYN);
    h.assert_no_exceptions();
}

// ---------------------------------------------------------------------------
// 3. ICMP / ICMPv6
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn icmp_type_and_code_become_the_destination_port() {
    let h = Harness::new(None);
    let mut echo = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv4(SRC4, DST4, 64)
        .icmpv4_echo_request(0x77, 1)
        .write(&mut echo, &[0x55; 56])
        .unwrap();
    let mut unreach = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv4(SRC4, DST4, 64)
        .icmpv4_raw(3, 3, [0; 4])
        .write(&mut unreach, &[0x66; 28])
        .unwrap();
    let mut echo6 = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv6(SRC6, DST6, 64)
        .icmpv6_echo_request(0x77, 1)
        .write(&mut echo6, &[0x55; 56])
        .unwrap();
    h.egress(&echo);
    h.egress(&echo);
    h.egress(&unreach);
    h.egress(&echo6);
    h.assert_flows(&[
        (key4(PROTO_ICMP, 0, 8 * 256), 2, 2 * (20 + 8 + 56)),
        (key4(PROTO_ICMP, 0, 3 * 256 + 3), 1, 20 + 8 + 28),
        (key6(PROTO_ICMPV6, 0, 128 * 256), 1, 40 + 8 + 56),
    ]);
    assert_eq!(key4(PROTO_ICMP, 0, 8 * 256).dst_port, 2048);
    assert_eq!(key4(PROTO_ICMP, 0, 3 * 256 + 3).dst_port, 771);
    assert_eq!(key6(PROTO_ICMPV6, 0, 128 * 256).dst_port, 32768);
    h.assert_no_exceptions();
}

// ---------------------------------------------------------------------------
// 4. Other protocols
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn other_ip_protocols_count_with_ports_zero() {
    let h = Harness::new(None);
    // GRE carrying IPv4: the first 4 bytes would look like ports if misparsed.
    let gre = [0x00, 0x00, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef];
    h.egress(&frame(ETH_P_IP, &ipv4(5, 0, PROTO_GRE, &gre)));
    h.egress(&frame(ETH_P_IP, &ipv4(5, 0, 253, &[0x12; 33])));
    h.egress(&frame(ETH_P_IPV6, &ipv6(253, &[0x12; 33])));
    h.assert_flows(&[
        (key4(PROTO_GRE, 0, 0), 1, 20 + 8),
        (key4(253, 0, 0), 1, 20 + 33),
        (key6(253, 0, 0), 1, 40 + 33),
    ]);
    h.assert_no_exceptions();
}

// ---------------------------------------------------------------------------
// 5. IPv4 fragments
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ipv4_non_first_fragments_count_with_ports_zero() {
    let h = Harness::new(None);
    // A 72-byte UDP datagram (8 header + 64 data) in three fragments.
    let datagram = udp(1234, 5678, 64);
    let first = ipv4(5, frag4(true, 0), PROTO_UDP, &datagram[..32]);
    let middle = ipv4(5, frag4(true, 32), PROTO_UDP, &datagram[32..56]);
    let last = ipv4(5, frag4(false, 56), PROTO_UDP, &datagram[56..]);
    // The later fragments start with payload bytes that must not be read as ports.
    h.egress(&frame(ETH_P_IP, &first));
    h.egress(&frame(ETH_P_IP, &middle));
    h.egress(&frame(ETH_P_IP, &last));
    h.assert_flows(&[
        (key4(PROTO_UDP, 1234, 5678), 1, 20 + 32),
        (key4(PROTO_UDP, 0, 0), 2, (20 + 24) + (20 + 16)),
    ]);
    h.assert_no_exceptions();
}

// ---------------------------------------------------------------------------
// 6. IPv6 extension headers
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ipv6_hop_by_hop_and_destination_options_before_udp() {
    let h = Harness::new(None);
    let mut payload = ext8(PROTO_DEST);
    payload.extend(ext8(PROTO_UDP));
    payload.extend(udp(7000, 7001, 20));
    // A 16-byte destination options header (Hdr Ext Len 1) after that.
    let mut payload2 = ext8(PROTO_DEST);
    payload2.extend([PROTO_UDP, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    payload2.extend(udp(7000, 7001, 20));
    h.egress(&frame(ETH_P_IPV6, &ipv6(PROTO_HOP, &payload)));
    h.egress(&frame(ETH_P_IPV6, &ipv6(PROTO_HOP, &payload2)));
    h.assert_flows(&[(key6(PROTO_UDP, 7000, 7001), 2, (40 + 16 + 28) + (40 + 24 + 28))]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ipv6_fragment_header_first_has_ports_later_do_not() {
    let h = Harness::new(None);
    let datagram = udp(1234, 5678, 64);
    let mut first = frag6(PROTO_UDP, 0, true);
    first.extend_from_slice(&datagram[..40]);
    let mut last = frag6(PROTO_UDP, 40, false);
    last.extend_from_slice(&datagram[40..]);
    h.egress(&frame(ETH_P_IPV6, &ipv6(PROTO_FRAGMENT, &first)));
    h.egress(&frame(ETH_P_IPV6, &ipv6(PROTO_FRAGMENT, &last)));
    h.assert_flows(&[
        (key6(PROTO_UDP, 1234, 5678), 1, 40 + 8 + 40),
        (key6(PROTO_UDP, 0, 0), 1, 40 + 8 + 32),
    ]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ipv6_authentication_header_before_tcp() {
    let h = Harness::new(None);
    let mut payload = ah(PROTO_TCP);
    payload.extend(tcp(2000, 179, SYN | ACK, &[], 12));
    h.egress(&frame(ETH_P_IPV6, &ipv6(PROTO_AH, &payload)));
    let s = h.assert_flows(&[(key6(PROTO_TCP, 2000, 179), 1, 40 + 24 + 20 + 12)]);
    assert_eq!(s[0].tcp_flags, SYN | ACK);
    h.assert_no_exceptions();
}

/// IPv6 packet whose payload is a chain of 8-byte extension headers of the
/// given types followed by UDP 9000 -> 9001 with 10 bytes of data.
fn ipv6_ext_chain(types: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    for (i, _) in types.iter().enumerate() {
        let next = types.get(i + 1).copied().unwrap_or(PROTO_UDP);
        payload.extend(ext8(next));
    }
    payload.extend(udp(9000, 9001, 10));
    frame(ETH_P_IPV6, &ipv6(types[0], &payload))
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ipv6_chain_of_eight_extension_headers_is_walked_to_udp() {
    let h = Harness::new(None);
    let chain = [
        PROTO_HOP,
        PROTO_ROUTING,
        PROTO_DEST,
        PROTO_MOBILITY,
        PROTO_DEST,
        PROTO_DEST,
        PROTO_DEST,
        PROTO_DEST,
    ];
    h.egress(&ipv6_ext_chain(&chain));
    h.assert_flows(&[(key6(PROTO_UDP, 9000, 9001), 1, 40 + 8 * 8 + 18)]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ipv6_chain_longer_than_eight_headers_stops_at_the_ninth() {
    let h = Harness::new(None);
    // Nine headers: the parser walks eight, so the flow's protocol is the
    // ninth header's type (destination options) with ports 0. It is still a
    // counted flow, not a malformed packet.
    let chain = [
        PROTO_HOP,
        PROTO_ROUTING,
        PROTO_DEST,
        PROTO_MOBILITY,
        PROTO_DEST,
        PROTO_DEST,
        PROTO_DEST,
        PROTO_ROUTING,
        PROTO_DEST,
    ];
    h.egress(&ipv6_ext_chain(&chain));
    h.assert_flows(&[(key6(PROTO_DEST, 0, 0), 1, 40 + 9 * 8 + 18)]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ipv6_truncated_extension_chain_counts_with_ports_zero() {
    let h = Harness::new(None);
    // Only 2 bytes of a hop-by-hop header: the IPv6 header itself is fine, so
    // the packet is counted (not malformed), with the unfinished header's
    // type as protocol and no ports.
    h.egress(&frame(ETH_P_IPV6, &ipv6(PROTO_HOP, &[PROTO_UDP, 0])));
    // A complete hop-by-hop header whose UDP header is missing altogether.
    h.egress(&frame(ETH_P_IPV6, &ipv6(PROTO_HOP, &ext8(PROTO_UDP))));
    h.assert_flows(&[(key6(PROTO_HOP, 0, 0), 1, 40 + 2), (key6(PROTO_UDP, 0, 0), 1, 40 + 8)]);
    h.assert_no_exceptions();
}

// ---------------------------------------------------------------------------
// 7. VLAN tags
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn single_vlan_tag_sets_vlan_id() {
    let h = Harness::new(None);
    let mut p = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .single_vlan(0x123.try_into().unwrap())
        .ipv4(SRC4, DST4, 64)
        .udp(1000, 2000)
        .write(&mut p, &[0; 10])
        .unwrap();
    assert_eq!(&p[12..14], &ETH_P_8021Q.to_be_bytes());
    h.egress(&p);
    // Priority and DEI bits are not part of the VID.
    h.egress(&tagged_frame(
        &[(ETH_P_8021Q, 0xf123)],
        ETH_P_IP,
        &ipv4(5, 0, PROTO_UDP, &udp(1000, 2000, 10)),
    ));
    // A lone 802.1ad tag is the outer VLAN too.
    h.egress(&tagged_frame(
        &[(ETH_P_8021AD, 7)],
        ETH_P_IP,
        &ipv4(5, 0, PROTO_UDP, &udp(1000, 2000, 10)),
    ));
    let key = FlowKey {
        vlan_id: 0x123,
        inner_vlan_id: 0,
        ..key4(PROTO_UDP, 1000, 2000)
    };
    let key_ad = FlowKey {
        vlan_id: 7,
        ..key4(PROTO_UDP, 1000, 2000)
    };
    h.assert_flows(&[(key, 2, 2 * (20 + 8 + 10)), (key_ad, 1, 20 + 8 + 10)]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn qinq_8021ad_outer_and_8021q_inner_set_both_ids() {
    let h = Harness::new(None);
    let mut p = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .double_vlan(100.try_into().unwrap(), 200.try_into().unwrap())
        .ipv6(SRC6, DST6, 64)
        .udp(1000, 2000)
        .write(&mut p, &[0; 10])
        .unwrap();
    assert_eq!(&p[12..14], &ETH_P_8021AD.to_be_bytes());
    assert_eq!(&p[16..18], &ETH_P_8021Q.to_be_bytes());
    h.egress(&p);
    let key = FlowKey {
        vlan_id: 100,
        inner_vlan_id: 200,
        ..key6(PROTO_UDP, 1000, 2000)
    };
    h.assert_flows(&[(key, 1, 40 + 8 + 10)]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn three_stacked_vlan_tags_count_as_non_ip() {
    let h = Harness::new(None);
    // Only two in-band tags are walked; the ethertype after them is the
    // third TPID (0x8100), so the frame is not IP.
    let p = tagged_frame(
        &[(ETH_P_8021AD, 10), (ETH_P_8021Q, 20), (ETH_P_8021Q, 30)],
        ETH_P_IP,
        &ipv4(5, 0, PROTO_UDP, &udp(1000, 2000, 10)),
    );
    h.egress(&p);
    h.assert_flows(&[]);
    assert_eq!(
        h.counters(),
        DatapathCounters {
            non_ip_packets: 1,
            non_ip_octets: p.len() as u64,
            ..Default::default()
        }
    );
}

// ---------------------------------------------------------------------------
// 8. Truncated and bogus packets
// ---------------------------------------------------------------------------

/// Whether BPF_PROG_TEST_RUN itself refuses a tc test frame: since it reads
/// the addresses of an untagged IPv4 / IPv6 frame into a socket, it returns
/// EINVAL when the IP header is not all there (checked on Linux 6.18).
fn refused_by_test_run(frame: &[u8]) -> bool {
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    (ethertype == ETH_P_IP && frame.len() < 14 + 20) || (ethertype == ETH_P_IPV6 && frame.len() < 14 + 40)
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn untagged_truncated_ip_headers_never_reach_the_classifier() {
    let h = Harness::new(None);
    let good = ipv4(5, 0, PROTO_UDP, &udp(1000, 2000, 10));
    let good6 = ipv6(PROTO_UDP, &udp(1000, 2000, 10));
    let frames = [
        frame(ETH_P_IP, &[]),            // Ethernet header only
        frame(ETH_P_IP, &good[..10]),    // IPv4 header cut at 10 bytes
        frame(ETH_P_IP, &good[..19]),    // one byte short of an IPv4 header
        frame(ETH_P_IPV6, &[]),          // Ethernet header only
        frame(ETH_P_IPV6, &good6[..39]), // one byte short of an IPv6 header
    ];
    for f in &frames {
        assert!(refused_by_test_run(f));
        let result = h.datapath.run(Direction::Egress, f, SkbContext::default());
        assert!(
            result.is_err(),
            "{}-byte frame: the kernel refuses it, got {result:?}",
            f.len()
        );
    }
    h.assert_flows(&[]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn truncated_or_bogus_ip_headers_are_malformed() {
    let h = Harness::new(None);
    let good = ipv4(5, 0, PROTO_UDP, &udp(1000, 2000, 10));
    let mut ihl4 = good.clone();
    ihl4[0] = 0x44;
    let mut ihl0 = good.clone();
    ihl0[0] = 0x40;
    let mut version6 = good.clone();
    version6[0] = 0x65;
    let good6 = ipv6(PROTO_UDP, &udp(1000, 2000, 10));
    let mut version4 = good6.clone();
    version4[0] = 0x40;
    // Truncated headers reach the classifier behind a VLAN tag (the kernel's
    // test-run precheck only looks at untagged frames).
    let tag = [(ETH_P_8021Q, 5)];
    let frames = [
        tagged_frame(&tag, ETH_P_IP, &[]),            // Ethernet + tag, no IPv4 header
        tagged_frame(&tag, ETH_P_IP, &good[..10]),    // IPv4 header cut at 10 bytes
        tagged_frame(&tag, ETH_P_IP, &good[..19]),    // one byte short of an IPv4 header
        tagged_frame(&tag, ETH_P_IPV6, &good6[..39]), // one byte short of an IPv6 header
        frame(ETH_P_IP, &ihl4),                       // IHL 4 < 5
        frame(ETH_P_IP, &ihl0),                       // IHL 0
        frame(ETH_P_IP, &version6),                   // version 6 in an IPv4 frame
        frame(ETH_P_IPV6, &version4),                 // version 4 in an IPv6 frame
        tagged_frame(&tag, ETH_P_IP, &ihl4),          // IHL 4 behind a tag
    ];
    assert_eq!(frames[0].len(), 18);
    assert_eq!(frames[1].len(), 28);
    for f in &frames {
        h.egress(f);
    }
    h.assert_flows(&[]);
    assert_eq!(
        h.counters(),
        DatapathCounters {
            malformed_packets: frames.len() as u64,
            malformed_octets: frames.iter().map(|f| f.len() as u64).sum(),
            ..Default::default()
        }
    );
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ipv4_total_length_beyond_the_frame_counts_the_bytes_present() {
    let h = Harness::new(None);
    let mut p = ipv4_header(5, 1500, 0, PROTO_UDP);
    p.extend(udp(1000, 2000, 10));
    h.egress(&frame(ETH_P_IP, &p));
    // IPv6 likewise: payload length 1000, 18 bytes present.
    let mut p6 = ipv6(PROTO_UDP, &udp(1000, 2000, 10));
    p6[4..6].copy_from_slice(&1000u16.to_be_bytes());
    h.egress(&frame(ETH_P_IPV6, &p6));
    h.assert_flows(&[
        (key4(PROTO_UDP, 1000, 2000), 1, 20 + 8 + 10),
        (key6(PROTO_UDP, 1000, 2000), 1, 40 + 8 + 10),
    ]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn truncated_tcp_header_counts_with_ports_zero() {
    let h = Harness::new(None);
    // Only the 4 port bytes of TCP are present: the parser needs 14 bytes
    // (ports to flags) and, failing that, leaves ports and flags 0.
    let segment = tcp(40000, 443, SYN, &[], 0);
    h.egress(&frame(ETH_P_IP, &ipv4(5, 0, PROTO_TCP, &segment[..4])));
    // 13 bytes: still one short of the flags byte.
    h.egress(&frame(ETH_P_IP, &ipv4(5, 0, PROTO_TCP, &segment[..13])));
    let s = h.assert_flows(&[(key4(PROTO_TCP, 0, 0), 2, (20 + 4) + (20 + 13))]);
    assert_eq!(s[0].tcp_flags, 0);
    // Exactly 14 bytes are enough.
    h.egress(&frame(ETH_P_IP, &ipv4(5, 0, PROTO_TCP, &segment[..14])));
    let s = h.assert_flows(&[
        (key4(PROTO_TCP, 0, 0), 2, 57),
        (key4(PROTO_TCP, 40000, 443), 1, 20 + 14),
    ]);
    assert_eq!(s[1].tcp_flags, SYN);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn frame_shorter_than_ethernet_header_is_rejected_by_test_run() {
    let h = Harness::new(None);
    for len in [0usize, 1, 13] {
        let result = h
            .datapath
            .run(Direction::Egress, &vec![0x08; len], SkbContext::default());
        assert!(result.is_err(), "a {len}-byte frame must be refused, got {result:?}");
    }
    h.assert_flows(&[]);
    h.assert_no_exceptions();
}

// ---------------------------------------------------------------------------
// 9. Ethernet padding
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ethernet_padding_is_not_counted() {
    let h = Harness::new(None);
    let mut p = udp4(0);
    assert_eq!(p.len(), 14 + 28);
    p.resize(60, 0);
    h.egress(&p);
    h.assert_flows(&[(key4(PROTO_UDP, 1000, 2000), 1, 28)]);
    h.assert_no_exceptions();
}

// ---------------------------------------------------------------------------
// 10. GSO: in parser/gso.rs
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// 11. Non-IP
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn arp_counts_as_non_ip_without_a_flow() {
    let h = Harness::new(None);
    let mut p = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .arp(
            ArpPacket::new(
                ArpHardwareId::ETHERNET,
                EtherType::IPV4,
                ArpOperation::REQUEST,
                &MAC_SRC,
                &SRC4,
                &[0; 6],
                &DST4,
            )
            .unwrap(),
        )
        .write(&mut p)
        .unwrap();
    assert_eq!(&p[12..14], &ETH_P_ARP.to_be_bytes());
    assert_eq!(p.len(), 42);
    h.egress(&p);
    h.assert_flows(&[]);
    assert_eq!(
        h.counters(),
        DatapathCounters {
            non_ip_packets: 1,
            non_ip_octets: 42,
            ..Default::default()
        }
    );
}

// ---------------------------------------------------------------------------
// 12. Ingress
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ingress_records_direction_and_ingress_ifindex_only() {
    let h = Harness::new(None);
    let ctx = SkbContext {
        ingress_ifindex: 1,
        ifindex: 1,
        ..SkbContext::default()
    };
    h.send(Direction::Ingress, &udp4(50), ctx);
    // The same packet at egress is a different flow.
    h.send(Direction::Egress, &udp4(50), ctx);
    let ingress = FlowKey {
        direction: DIRECTION_INGRESS,
        ingress_ifindex: 1,
        egress_ifindex: 0,
        ..key4(PROTO_UDP, 1000, 2000)
    };
    let egress = FlowKey {
        ingress_ifindex: 1,
        ..key4(PROTO_UDP, 1000, 2000)
    };
    assert_eq!(egress.egress_ifindex, 1);
    h.assert_flows(&[(ingress, 1, 20 + 8 + 50), (egress, 1, 20 + 8 + 50)]);
    h.assert_no_exceptions();
}

// ---------------------------------------------------------------------------
// 13. Map full
// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn full_flow_map_counts_new_flows_as_not_recorded() {
    let h = Harness::new(Some(2));
    h.egress(&udp4_ports(1, 2000, 10));
    h.egress(&udp4_ports(2, 2000, 20));
    h.egress(&udp4_ports(3, 2000, 30)); // no room
    h.egress(&udp4_ports(1, 2000, 10)); // existing flows still count
    h.egress(&udp4_ports(2, 2000, 20));
    h.assert_flows(&[
        (key4(PROTO_UDP, 1, 2000), 2, 2 * (28 + 10)),
        (key4(PROTO_UDP, 2, 2000), 2, 2 * (28 + 20)),
    ]);
    assert_eq!(
        h.counters(),
        DatapathCounters {
            not_recorded_packets: 1,
            not_recorded_octets: 28 + 30,
            ..Default::default()
        }
    );
    // A GSO packet of an unrecorded flow counts all its segments.
    h.send(Direction::Egress, &udp4_ports(3, 2000, 300), gso(3, 100));
    assert_eq!(
        h.counters(),
        DatapathCounters {
            not_recorded_packets: 1 + 3,
            not_recorded_octets: (28 + 30) + (28 + 300 + 2 * 28),
            ..Default::default()
        }
    );
}

// ---------------------------------------------------------------------------
// 14. Random input
// ---------------------------------------------------------------------------

/// xorshift64: deterministic, good enough to scramble packet bytes.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn random_frames_are_all_accounted_for() {
    const RUNS: u64 = 2000;
    let h = Harness::new(Some(4096));
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut total_len = 0u64;
    let mut classified = 0u64;
    for _ in 0..RUNS {
        let len = 14 + rng.below(187) as usize; // 14..=200
        let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0 {
            let ethertype = [ETH_P_IP, ETH_P_IPV6, ETH_P_8021Q][rng.below(3) as usize];
            buf[12..14].copy_from_slice(&ethertype.to_be_bytes());
            let mut l3 = 14;
            if ethertype == ETH_P_8021Q && len >= 18 && rng.below(2) == 0 {
                // A plausible inner ethertype so the IP parsers run behind a tag.
                let inner = [ETH_P_IP, ETH_P_IPV6, ETH_P_8021Q][rng.below(3) as usize];
                buf[16..18].copy_from_slice(&inner.to_be_bytes());
                l3 = 18;
            }
            let inner = u16::from_be_bytes([buf[l3 - 2], buf[l3 - 1]]);
            if len > l3 && rng.below(4) != 0 {
                // Mostly a matching version nibble, so deeper headers get parsed.
                match inner {
                    ETH_P_IP => buf[l3] = 0x40 | (buf[l3] & 0x0f),
                    ETH_P_IPV6 => {
                        buf[l3] = 0x60 | (buf[l3] & 0x0f);
                        if len > l3 + 6 {
                            let next = [0, 6, 17, 43, 44, 51, 58, 60, 135][rng.below(9) as usize];
                            buf[l3 + 6] = next;
                        }
                    }
                    _ => {}
                }
            }
        }
        let direction = if rng.below(2) == 0 {
            Direction::Egress
        } else {
            Direction::Ingress
        };
        match h.datapath.run(direction, &buf, SkbContext::default()) {
            Ok(verdict) => {
                assert_eq!(verdict, TC_ACT_UNSPEC, "verdict for {buf:02x?}");
                classified += 1;
                total_len += len as u64;
            }
            Err(e) => assert!(refused_by_test_run(&buf), "test run failed on {buf:02x?}: {e}"),
        }
    }
    // Only short untagged IPv4/IPv6 frames are refused by the kernel.
    assert!(classified >= RUNS * 9 / 10, "only {classified} of {RUNS} frames ran");
    let flows = h.flows();
    let c = h.counters();
    let flow_packets: u64 = flows.iter().map(|(_, s)| s.packets).sum();
    assert_eq!(
        flow_packets + c.malformed_packets + c.non_ip_packets + c.not_recorded_packets,
        classified,
        "flows: {} packets in {} flows; counters: {c:?}",
        flow_packets,
        flows.len()
    );
    assert_eq!(c.not_recorded_packets, 0, "4096 slots are enough for 2000 frames");
    // Every path was taken, and no counted octet came from nowhere.
    assert!(
        flow_packets > 0 && c.malformed_packets > 0 && c.non_ip_packets > 0,
        "{c:?}"
    );
    let flow_octets: u64 = flows.iter().map(|(_, s)| s.octets).sum();
    assert!(flow_octets + c.malformed_octets + c.non_ip_octets <= total_len);
    for (k, s) in &flows {
        assert!(k.ip_version == 4 || k.ip_version == 6, "{k:?}");
        assert_eq!(k.sampling_tag, 0);
        assert_eq!(k.netns_ino, NETNS);
        assert!(s.octets <= s.packets * 186, "{k:?} {s:?}");
    }
}

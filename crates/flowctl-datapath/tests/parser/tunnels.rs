//! Tunnel GSO: metering a tunnel's underlay, each segment of a GSO packet
//! repeats the outer headers and the inner Ethernet/IP/transport headers.
//! The flow is the outer one; the counts below are worked out by hand from
//! the header sizes.

use super::*;

const INNER_SRC4: [u8; 4] = [10, 9, 0, 1];
const INNER_DST4: [u8; 4] = [10, 9, 0, 2];
const INNER_SRC6: [u8; 16] = [0xfd, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const INNER_DST6: [u8; 16] = [0xfd, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const ETH_P_TEB: u16 = 0x6558;
const PROTO_IPIP: u8 = 4;
const PROTO_IPV6: u8 = 41;
/// Payload of every inner packet and the segment size: 4 segments of 500.
const PAYLOAD: usize = 2000;
const MSS: u32 = 500;
const SEGS: u64 = 4;

/// Inner IPv4 + TCP (20-byte header) with `PAYLOAD` bytes: 40 bytes of headers.
fn inner_tcp4() -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv4(INNER_SRC4, INNER_DST4, 64)
        .tcp(33000, 80, 1, 1024)
        .ack(1)
        .write(&mut p, &[0x61; PAYLOAD])
        .unwrap();
    p
}

/// Inner IPv6 + TCP with timestamps (32-byte header): 72 bytes of headers.
fn inner_tcp6() -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv6(INNER_SRC6, INNER_DST6, 64)
        .tcp(33000, 80, 1, 1024)
        .ack(1)
        .options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Timestamp(1, 2),
        ])
        .unwrap()
        .write(&mut p, &[0x62; PAYLOAD])
        .unwrap();
    p
}

/// Inner IPv4 + UDP with `PAYLOAD` bytes (UDP GSO inside): 28 bytes of headers.
fn inner_udp4() -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ipv4(INNER_SRC4, INNER_DST4, 64)
        .udp(5000, 5001)
        .write(&mut p, &[0x63; PAYLOAD])
        .unwrap();
    p
}

/// The inner packet in an Ethernet header (14 bytes).
fn inner_eth(ethertype: u16, ip: &[u8]) -> Vec<u8> {
    frame(ethertype, ip)
}

/// A UDP header 50000 -> `dst_port` and `body`.
fn udp_with(dst_port: u16, body: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&50000u16.to_be_bytes());
    h.extend_from_slice(&dst_port.to_be_bytes());
    h.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(body);
    h
}

/// VXLAN header (I flag, VNI 42) and `inner`.
fn vxlan(inner: &[u8]) -> Vec<u8> {
    let mut h = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
    h.extend_from_slice(inner);
    h
}

/// GENEVE header with `options` (a multiple of 4 bytes), `protocol` and `inner`.
fn geneve(options: &[u8], protocol: u16, inner: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let mut h = vec![(options.len() / 4) as u8, 0];
    h.extend_from_slice(&protocol.to_be_bytes());
    h.extend_from_slice(&[0, 0, 42, 0]);
    h.extend_from_slice(options);
    h.extend_from_slice(inner);
    h
}

/// GRE header with `flags` (C, K, S bits, version), their words, and `inner`.
fn gre(flags: u16, protocol: u16, inner: &[u8]) -> Vec<u8> {
    let mut h = flags.to_be_bytes().to_vec();
    h.extend_from_slice(&protocol.to_be_bytes());
    for bit in [0x8000, 0x2000, 0x1000] {
        if flags & bit != 0 {
            h.extend_from_slice(&[0x11, 0x22, 0x33, 0x44]);
        }
    }
    h.extend_from_slice(inner);
    h
}

/// Sends `l3` (an outer IPv4 or IPv6 packet) as a GSO packet, first with
/// gso_segs as the kernel's stack sets it, then with gso_segs 0.
fn send_both_ways(h: &Harness, ethertype: u16, l3: &[u8]) {
    h.send(Direction::Egress, &frame(ethertype, l3), gso(SEGS as u32, MSS));
    h.send(Direction::Egress, &frame(ethertype, l3), gso(0, MSS));
}

/// The counts of two sends of a GSO packet of `SEGS` segments whose
/// segments each carry `headers` bytes from the outer IP header to the
/// inner payload.
fn twice(key: FlowKey, headers: u64) -> (FlowKey, u64, u64) {
    (key, 2 * SEGS, 2 * (PAYLOAD as u64 + SEGS * headers))
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn vxlan_gso_repeats_outer_and_inner_headers_in_every_segment() {
    let h = Harness::new(None);
    // IPv4 outer, port 4789, inner Ethernet + IPv4 + TCP:
    // 20 + 8 + 8 + 14 + 20 + 20 = 90 bytes per segment.
    let v4 = ipv4(
        5,
        0,
        PROTO_UDP,
        &udp_with(4789, &vxlan(&inner_eth(ETH_P_IP, &inner_tcp4()))),
    );
    send_both_ways(&h, ETH_P_IP, &v4);
    // IPv6 outer, Linux's port 8472, inner Ethernet + IPv6 + TCP with
    // timestamps: 40 + 8 + 8 + 14 + 40 + 32 = 142 bytes per segment.
    let v6 = ipv6(
        PROTO_UDP,
        &udp_with(8472, &vxlan(&inner_eth(ETH_P_IPV6, &inner_tcp6()))),
    );
    send_both_ways(&h, ETH_P_IPV6, &v6);
    h.assert_flows(&[
        twice(key4(PROTO_UDP, 50000, 4789), 20 + 8 + 8 + 14 + 20 + 20),
        twice(key6(PROTO_UDP, 50000, 8472), 40 + 8 + 8 + 14 + 40 + 32),
    ]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn geneve_gso_counts_its_options_and_inner_headers() {
    let h = Harness::new(None);
    // 8 bytes of options, inner Ethernet + IPv4 + UDP (UDP GSO inside):
    // 20 + 8 + 8 + 8 + 14 + 20 + 8 = 86 bytes per segment.
    let options = [0x01, 0x02, 0x03, 0x01, 0xaa, 0xbb, 0xcc, 0xdd];
    let eth = ipv4(
        5,
        0,
        PROTO_UDP,
        &udp_with(6081, &geneve(&options, ETH_P_TEB, &inner_eth(ETH_P_IP, &inner_udp4()))),
    );
    send_both_ways(&h, ETH_P_IP, &eth);
    // No options, IPv6 straight after the header (protocol 0x86dd), TCP with
    // timestamps, over IPv6: 40 + 8 + 8 + 40 + 32 = 128 bytes per segment.
    let ip = ipv6(PROTO_UDP, &udp_with(6081, &geneve(&[], ETH_P_IPV6, &inner_tcp6())));
    send_both_ways(&h, ETH_P_IPV6, &ip);
    h.assert_flows(&[
        twice(key4(PROTO_UDP, 50000, 6081), 20 + 8 + 8 + 8 + 14 + 20 + 8),
        twice(key6(PROTO_UDP, 50000, 6081), 40 + 8 + 8 + 40 + 32),
    ]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn gre_gso_counts_its_optional_words_and_inner_headers() {
    let h = Harness::new(None);
    // Checksum, key and sequence words, inner IPv4 + TCP:
    // 20 + 4 + 12 + 20 + 20 = 76 bytes per segment.
    let all_words = ipv4(5, 0, PROTO_GRE, &gre(0xb000, ETH_P_IP, &inner_tcp4()));
    send_both_ways(&h, ETH_P_IP, &all_words);
    // gretap over IPv6 with a key: inner Ethernet + IPv6 + TCP:
    // 40 + 4 + 4 + 14 + 40 + 32 = 134 bytes per segment.
    let tap = ipv6(
        PROTO_GRE,
        &gre(0x2000, ETH_P_TEB, &inner_eth(ETH_P_IPV6, &inner_tcp6())),
    );
    send_both_ways(&h, ETH_P_IPV6, &tap);
    h.assert_flows(&[
        twice(key4(PROTO_GRE, 0, 0), 20 + 4 + 12 + 20 + 20),
        twice(key6(PROTO_GRE, 0, 0), 40 + 4 + 4 + 14 + 40 + 32),
    ]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn ip_in_ip_gso_counts_both_ip_headers() {
    let h = Harness::new(None);
    // IPv4 in IPv4 (ipip): 20 + 20 + 20 = 60 bytes per segment.
    send_both_ways(&h, ETH_P_IP, &ipv4(5, 0, PROTO_IPIP, &inner_tcp4()));
    // IPv6 in IPv4 (sit): 20 + 40 + 32 = 92.
    send_both_ways(&h, ETH_P_IP, &ipv4(5, 0, PROTO_IPV6, &inner_tcp6()));
    // IPv4 in IPv6 (ip6tnl): 40 + 20 + 20 = 80.
    send_both_ways(&h, ETH_P_IPV6, &ipv6(PROTO_IPIP, &inner_tcp4()));
    // IPv6 in IPv6 after the destination options header carrying the tunnel
    // encapsulation limit that ip6tnl adds: 40 + 8 + 40 + 32 = 120.
    let mut encap_limit = ext8(PROTO_IPV6);
    encap_limit.extend(inner_tcp6());
    send_both_ways(&h, ETH_P_IPV6, &ipv6(PROTO_DEST, &encap_limit));
    h.assert_flows(&[
        twice(key4(PROTO_IPIP, 0, 0), 20 + 20 + 20),
        twice(key4(PROTO_IPV6, 0, 0), 20 + 40 + 32),
        twice(key6(PROTO_IPIP, 0, 0), 40 + 20 + 20),
        twice(key6(PROTO_IPV6, 0, 0), 40 + 8 + 40 + 32),
    ]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn unknown_encapsulations_count_their_outer_headers_only() {
    let h = Harness::new(None);
    let inner = inner_eth(ETH_P_IP, &inner_tcp4());
    // VXLAN-GPE's port is not in the list: an ordinary UDP GSO packet whose
    // segments repeat 20 + 8 bytes. Its payload is 8 + 14 + 40 + 2000 bytes,
    // 2062 in 500-byte datagrams: 5 of them when gso_segs is 0.
    let gpe = ipv4(5, 0, PROTO_UDP, &udp_with(4790, &vxlan(&inner)));
    send_both_ways(&h, ETH_P_IP, &gpe);
    // GRE version 1 (PPTP): only the outer IP header repeats (20 bytes),
    // 4 + 14 + 40 + 2000 = 2058 bytes of payload: 5 segments when computed.
    let pptp = ipv4(5, 0, PROTO_GRE, &gre(0x0001, ETH_P_TEB, &inner));
    send_both_ways(&h, ETH_P_IP, &pptp);
    // A VLAN tag inside VXLAN is not parsed: outer headers only.
    let tagged = tagged_frame(&[(ETH_P_8021Q, 7)], ETH_P_IP, &inner_tcp4());
    let vlan = ipv4(5, 0, PROTO_UDP, &udp_with(8472, &vxlan(&tagged)));
    send_both_ways(&h, ETH_P_IP, &vlan);
    // Inner headers cut short: outer headers only.
    let cut = ipv4(5, 0, PROTO_UDP, &udp_with(4789, &vxlan(&inner[..40])));
    let cut_len = cut.len() as u64;
    h.send(Direction::Egress, &frame(ETH_P_IP, &cut), gso(2, MSS));
    let plain = |payload: u64, headers: u64, computed: u64| {
        (
            SEGS + computed,
            (payload + SEGS * headers) + (payload + computed * headers),
        )
    };
    let (gpe_packets, gpe_octets) = plain(8 + 14 + 40 + 2000, 20 + 8, 5);
    let (pptp_packets, pptp_octets) = plain(4 + 14 + 40 + 2000, 20, 5);
    let (vlan_packets, vlan_octets) = plain(8 + 18 + 40 + 2000, 20 + 8, 5);
    h.assert_flows(&[
        (key4(PROTO_UDP, 50000, 4790), gpe_packets, gpe_octets),
        (key4(PROTO_GRE, 0, 0), pptp_packets, pptp_octets),
        (key4(PROTO_UDP, 50000, 8472), vlan_packets, vlan_octets),
        (key4(PROTO_UDP, 50000, 4789), 2, cut_len + (20 + 8)),
    ]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn tunnel_packets_that_are_not_gso_count_once() {
    let h = Harness::new(None);
    let v4 = ipv4(
        5,
        0,
        PROTO_UDP,
        &udp_with(4789, &vxlan(&inner_eth(ETH_P_IP, &inner_tcp4()))),
    );
    h.egress(&frame(ETH_P_IP, &v4));
    h.assert_flows(&[(key4(PROTO_UDP, 50000, 4789), 1, v4.len() as u64)]);
    h.assert_no_exceptions();
}

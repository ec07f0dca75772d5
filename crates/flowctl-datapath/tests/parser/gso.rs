//! GSO super-packets: every segment counted with the headers it repeats,
//! with `gso_segs` given by the kernel or (left 0 by virtio-net and tap)
//! computed from the payload and `gso_size`.

use super::*;

// A test-run frame must fit in one page with the skb's head- and tailroom
// (about 3.7 KB on Linux 6.18), so 5 x 1000 bytes of payload is refused
// (EINVAL); 5 x 600 bytes exercises the same arithmetic.
const GSO_SEGS: u32 = 5;
const GSO_SIZE: u32 = 600;
/// Payload of the GSO test packets: `GSO_SEGS` full segments.
const GSO_PAYLOAD: usize = (GSO_SEGS * GSO_SIZE) as usize;

pub fn gso(segs: u32, size: u32) -> SkbContext {
    SkbContext {
        gso_segs: segs,
        gso_size: size,
        ..SkbContext::default()
    }
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn gso_ipv4_tcp_counts_every_segment_with_its_headers() {
    let h = Harness::new(None);
    let mut p = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv4(SRC4, DST4, 64)
        .tcp(40000, 443, 7, 1024)
        .ack(1)
        .psh()
        .write(&mut p, &vec![0x42; GSO_PAYLOAD])
        .unwrap();
    h.send(Direction::Egress, &p, gso(GSO_SEGS, GSO_SIZE));
    let s = h.assert_flows(&[(
        key4(PROTO_TCP, 40000, 443),
        GSO_SEGS as u64,
        GSO_PAYLOAD as u64 + GSO_SEGS as u64 * (20 + 20),
    )]);
    assert_eq!(s[0].tcp_flags, ACK | PSH);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn gso_ipv6_tcp_with_timestamps_counts_the_full_tcp_header() {
    let h = Harness::new(None);
    let mut p = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv6(SRC6, DST6, 64)
        .tcp(40000, 443, 7, 1024)
        .ack(1)
        .options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Timestamp(1, 2),
        ])
        .unwrap()
        .write(&mut p, &vec![0x42; GSO_PAYLOAD])
        .unwrap();
    assert_eq!(p[14 + 40 + 12] >> 4, 8, "32-byte TCP header");
    h.send(Direction::Egress, &p, gso(GSO_SEGS, GSO_SIZE));
    h.assert_flows(&[(
        key6(PROTO_TCP, 40000, 443),
        GSO_SEGS as u64,
        GSO_PAYLOAD as u64 + GSO_SEGS as u64 * (40 + 32),
    )]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn gso_udp_counts_every_datagram_with_its_headers() {
    let h = Harness::new(None);
    let mut p = udp4(GSO_PAYLOAD);
    h.send(Direction::Egress, &p, gso(GSO_SEGS, GSO_SIZE));
    // Same over IPv6.
    p = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv6(SRC6, DST6, 64)
        .udp(1000, 2000)
        .write(&mut p, &vec![0x42; GSO_PAYLOAD])
        .unwrap();
    h.send(Direction::Egress, &p, gso(GSO_SEGS, GSO_SIZE));
    h.assert_flows(&[
        (
            key4(PROTO_UDP, 1000, 2000),
            GSO_SEGS as u64,
            GSO_PAYLOAD as u64 + GSO_SEGS as u64 * (20 + 8),
        ),
        (
            key6(PROTO_UDP, 1000, 2000),
            GSO_SEGS as u64,
            GSO_PAYLOAD as u64 + GSO_SEGS as u64 * (40 + 8),
        ),
    ]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn gso_segs_of_one_is_a_plain_packet() {
    let h = Harness::new(None);
    let p = udp4(100);
    h.send(Direction::Egress, &p, gso(1, 100));
    h.assert_flows(&[(key4(PROTO_UDP, 1000, 2000), 1, 20 + 8 + 100)]);
    h.assert_no_exceptions();
}

/// Ethernet + IPv4 + TCP (20-byte header) carrying `payload` bytes.
fn tcp4_frame(payload: usize) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv4(SRC4, DST4, 64)
        .tcp(40000, 443, 7, 1024)
        .ack(1)
        .write(&mut p, &vec![0x42; payload])
        .unwrap();
    p
}

/// Ethernet + IPv6 + TCP with timestamps (32-byte header) carrying `payload` bytes.
fn tcp6_frame(payload: usize) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv6(SRC6, DST6, 64)
        .tcp(40000, 443, 7, 1024)
        .ack(1)
        .options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Timestamp(1, 2),
        ])
        .unwrap()
        .write(&mut p, &vec![0x42; payload])
        .unwrap();
    assert_eq!(p[14 + 40 + 12] >> 4, 8, "32-byte TCP header");
    p
}

/// Ethernet + IPv6 + UDP 1000 -> 2000 carrying `payload` bytes.
fn udp6_frame(payload: usize) -> Vec<u8> {
    let mut p = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv6(SRC6, DST6, 64)
        .udp(1000, 2000)
        .write(&mut p, &vec![0x42; payload])
        .unwrap();
    p
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn gso_segs_zero_tcp_is_segmented_like_the_kernel() {
    let h = Harness::new(None);
    // virtio-net/tap leave gso_segs 0. IPv4: 2900 bytes in 600-byte
    // segments are 600, 600, 600, 600 and 500: 5 packets of 20 + 20 bytes of
    // headers each.
    h.send(Direction::Egress, &tcp4_frame(2900), gso(0, 600));
    // IPv6 with a 32-byte TCP header: 2500 bytes in 700-byte segments are
    // 700, 700, 700, 400: 4 packets of 40 + 32 bytes of headers each.
    h.send(Direction::Egress, &tcp6_frame(2500), gso(0, 700));
    h.assert_flows(&[
        (key4(PROTO_TCP, 40000, 443), 5, 2900 + 5 * (20 + 20)),
        (key6(PROTO_TCP, 40000, 443), 4, 2500 + 4 * (40 + 32)),
    ]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn gso_segs_given_by_the_kernel_count_the_same() {
    let h = Harness::new(None);
    // The same super-packets as above with gso_segs filled in, as the
    // kernel's own TCP stack does.
    h.send(Direction::Egress, &tcp4_frame(2900), gso(5, 600));
    h.send(Direction::Egress, &tcp6_frame(2500), gso(4, 700));
    h.assert_flows(&[
        (key4(PROTO_TCP, 40000, 443), 5, 2900 + 5 * (20 + 20)),
        (key6(PROTO_TCP, 40000, 443), 4, 2500 + 4 * (40 + 32)),
    ]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn gso_segs_zero_udp_counts_every_datagram() {
    let h = Harness::new(None);
    // UDP GSO: gso_size is the UDP payload of each datagram. IPv4: 1000
    // bytes in 300-byte datagrams are 300, 300, 300, 100: 4 datagrams of
    // 20 + 8 bytes of headers each.
    h.send(Direction::Egress, &udp4(1000), gso(0, 300));
    // IPv6: 1200 bytes in 400-byte datagrams: exactly 3, of 40 + 8 bytes of headers.
    h.send(Direction::Egress, &udp6_frame(1200), gso(0, 400));
    h.assert_flows(&[
        (key4(PROTO_UDP, 1000, 2000), 4, 1000 + 4 * (20 + 8)),
        (key6(PROTO_UDP, 1000, 2000), 3, 1200 + 3 * (40 + 8)),
    ]);
    // With gso_segs given, the same counts again.
    h.send(Direction::Egress, &udp4(1000), gso(4, 300));
    h.send(Direction::Egress, &udp6_frame(1200), gso(3, 400));
    h.assert_flows(&[
        (key4(PROTO_UDP, 1000, 2000), 2 * 4, 2 * (1000 + 4 * (20 + 8))),
        (key6(PROTO_UDP, 1000, 2000), 2 * 3, 2 * (1200 + 3 * (40 + 8))),
    ]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn gso_segs_zero_with_one_segment_of_payload_or_none_is_one_packet() {
    let h = Harness::new(None);
    // 600 bytes in 600-byte segments: one packet.
    h.send(Direction::Egress, &tcp4_frame(600), gso(0, 600));
    // No payload at all: one packet (qdisc_pkt_len_init counts it as one too).
    h.send(Direction::Egress, &tcp4_frame(0), gso(0, 600));
    h.assert_flows(&[(key4(PROTO_TCP, 40000, 443), 2, (20 + 20 + 600) + (20 + 20))]);
    h.assert_no_exceptions();
}

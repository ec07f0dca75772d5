//! GSO super-packets: every segment counted with the headers it repeats.

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


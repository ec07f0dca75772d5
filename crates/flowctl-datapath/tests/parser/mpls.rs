//! MPLS: label stacks of up to 4 entries, after any VLAN tags, to the IPv4
//! or IPv6 packet inside; the top entry (label, TC, S) is part of the key,
//! the labels are not L3 octets.

use super::*;
use flowctl_model::MPLS_PRESENT;

const ETH_P_MPLS_UC: u16 = 0x8847;
const ETH_P_MPLS_MC: u16 = 0x8848;

/// A label stack: (label, TC) pairs, top first; the last one gets the
/// bottom-of-stack bit. TTL 64.
fn labels(stack: &[(u32, u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &(label, tc)) in stack.iter().enumerate() {
        let bottom = u32::from(i + 1 == stack.len());
        let entry = (label << 12) | (u32::from(tc) << 9) | (bottom << 8) | 64;
        out.extend_from_slice(&entry.to_be_bytes());
    }
    out
}

/// `stack` followed by `l3`.
fn mpls(stack: &[(u32, u8)], l3: &[u8]) -> Vec<u8> {
    let mut out = labels(stack);
    out.extend_from_slice(l3);
    out
}

/// `key` with the top label stack entry of `stack` (S set for a stack of one).
fn with_top(key: FlowKey, stack: &[(u32, u8)]) -> FlowKey {
    let (label, tc) = stack[0];
    let bottom = u32::from(stack.len() == 1);
    FlowKey {
        mpls_label: MPLS_PRESENT | (label << 4) | (u32::from(tc) << 1) | bottom,
        ..key
    }
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn one_label_over_ipv4_and_ipv6() {
    let h = Harness::new(None);
    let one = [(100, 5)];
    let udp_v4 = ipv4(5, 0, PROTO_UDP, &udp(1000, 2000, 50));
    let tcp_v6 = ipv6(PROTO_TCP, &tcp(40000, 443, SYN, &[], 0));
    h.egress(&frame(ETH_P_MPLS_UC, &mpls(&one, &udp_v4)));
    h.egress(&frame(ETH_P_MPLS_UC, &mpls(&one, &udp_v4)));
    h.egress(&frame(ETH_P_MPLS_UC, &mpls(&one, &tcp_v6)));
    let v4 = with_top(key4(PROTO_UDP, 1000, 2000), &one);
    // Label 100, TC 5, bottom of stack: the 24 bits IPFIX exports.
    assert_eq!(v4.mpls_label, MPLS_PRESENT | 0x00_064b);
    let s = h.assert_flows(&[
        (v4, 2, 2 * (20 + 8 + 50)),
        (with_top(key6(PROTO_TCP, 40000, 443), &one), 1, 40 + 20),
    ]);
    assert_eq!(s[1].tcp_flags, SYN);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn three_labels_over_ipv4_and_ipv6() {
    let h = Harness::new(None);
    let three = [(16, 0), (299_999, 7), (1_048_575, 3)];
    h.egress(&frame(
        ETH_P_MPLS_UC,
        &mpls(&three, &ipv4(5, 0, PROTO_UDP, &udp(1000, 2000, 10))),
    ));
    h.egress(&frame(
        ETH_P_MPLS_UC,
        &mpls(&three, &ipv6(PROTO_UDP, &udp(1000, 2000, 10))),
    ));
    let v4 = with_top(key4(PROTO_UDP, 1000, 2000), &three);
    // Label 16, TC 0, not the bottom of the stack.
    assert_eq!(v4.mpls_label, MPLS_PRESENT | (16 << 4));
    h.assert_flows(&[
        (v4, 1, 20 + 8 + 10),
        (with_top(key6(PROTO_UDP, 1000, 2000), &three), 1, 40 + 8 + 10),
    ]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn labels_after_vlan_tags() {
    let h = Harness::new(None);
    let one = [(2000, 1)];
    let three = [(3000, 2), (17, 0), (18, 0)];
    let v4 = ipv4(5, 0, PROTO_UDP, &udp(1000, 2000, 10));
    let v6 = ipv6(PROTO_UDP, &udp(1000, 2000, 10));
    let tag = [(ETH_P_8021Q, 10)];
    let qinq = [(ETH_P_8021AD, 100), (ETH_P_8021Q, 200)];
    h.egress(&tagged_frame(&tag, ETH_P_MPLS_UC, &mpls(&one, &v4)));
    h.egress(&tagged_frame(&qinq, ETH_P_MPLS_UC, &mpls(&three, &v6)));
    let tagged = FlowKey {
        vlan_id: 10,
        ..with_top(key4(PROTO_UDP, 1000, 2000), &one)
    };
    let double = FlowKey {
        vlan_id: 100,
        inner_vlan_id: 200,
        ..with_top(key6(PROTO_UDP, 1000, 2000), &three)
    };
    h.assert_flows(&[(tagged, 1, 20 + 8 + 10), (double, 1, 40 + 8 + 10)]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn the_top_label_entry_tells_flows_apart() {
    let h = Harness::new(None);
    let v4 = ipv4(5, 0, PROTO_UDP, &udp(1000, 2000, 10));
    // Different top labels, and the same top label with another TC: three flows.
    h.egress(&frame(ETH_P_MPLS_UC, &mpls(&[(100, 0)], &v4)));
    h.egress(&frame(ETH_P_MPLS_UC, &mpls(&[(101, 0)], &v4)));
    h.egress(&frame(ETH_P_MPLS_UC, &mpls(&[(100, 4)], &v4)));
    // Labels below the top one are not part of the key.
    h.egress(&frame(ETH_P_MPLS_UC, &mpls(&[(200, 0), (1, 0)], &v4)));
    h.egress(&frame(ETH_P_MPLS_UC, &mpls(&[(200, 0), (2, 0)], &v4)));
    // Multicast MPLS (0x8848) is parsed the same way; unlabelled is a flow of its own.
    h.egress(&frame(ETH_P_MPLS_MC, &mpls(&[(300, 0)], &v4)));
    h.egress(&frame(ETH_P_IP, &v4));
    let key = key4(PROTO_UDP, 1000, 2000);
    let n = 20 + 8 + 10;
    h.assert_flows(&[
        (with_top(key, &[(100, 0)]), 1, n),
        (with_top(key, &[(101, 0)]), 1, n),
        (with_top(key, &[(100, 4)]), 1, n),
        (with_top(key, &[(200, 0), (1, 0)]), 2, 2 * n),
        (with_top(key, &[(300, 0)]), 1, n),
        (key, 1, n),
    ]);
    h.assert_no_exceptions();
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn deep_truncated_or_non_ip_stacks_count_as_non_ip() {
    let h = Harness::new(None);
    let v4 = ipv4(5, 0, PROTO_UDP, &udp(1000, 2000, 10));
    let five = [(16, 0), (17, 0), (18, 0), (19, 0), (20, 0)];
    let mut no_bottom = labels(&[(16, 0), (17, 0)]);
    no_bottom[6] &= !0x01; // the S bit of the last entry
    let mut pseudowire = labels(&[(16, 0)]);
    pseudowire.extend_from_slice(&[0, 0, 0, 1]); // control word: first nibble 0
    pseudowire.extend(frame(ETH_P_IP, &v4));
    let frames = [
        frame(ETH_P_MPLS_UC, &mpls(&five, &v4)), // deeper than 4 labels
        frame(ETH_P_MPLS_UC, &no_bottom),        // stack cut before its bottom
        frame(ETH_P_MPLS_UC, &labels(&[(16, 0)])[..2]),
        frame(ETH_P_MPLS_UC, &labels(&[(16, 0)])), // nothing after the bottom
        frame(ETH_P_MPLS_UC, &pseudowire),         // Ethernet pseudowire
    ];
    for f in &frames {
        h.egress(f);
    }
    // Four labels are still walked.
    h.egress(&frame(ETH_P_MPLS_UC, &mpls(&five[..4], &v4)));
    h.assert_flows(&[(with_top(key4(PROTO_UDP, 1000, 2000), &five[..4]), 1, 20 + 8 + 10)]);
    assert_eq!(
        h.counters(),
        DatapathCounters {
            non_ip_packets: frames.len() as u64,
            non_ip_octets: frames.iter().map(|f| f.len() as u64).sum(),
            ..Default::default()
        }
    );
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_cut_ip_header_under_labels_is_malformed() {
    let h = Harness::new(None);
    let v4 = ipv4(5, 0, PROTO_UDP, &udp(1000, 2000, 10));
    let f = frame(ETH_P_MPLS_UC, &mpls(&[(16, 0)], &v4[..12]));
    h.egress(&f);
    h.assert_flows(&[]);
    assert_eq!(
        h.counters(),
        DatapathCounters {
            malformed_packets: 1,
            malformed_octets: f.len() as u64,
            ..Default::default()
        }
    );
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn gso_under_labels_counts_ip_headers_not_labels() {
    let h = Harness::new(None);
    // TCP over two labels, 1500 bytes in 500-byte segments, gso_segs 0:
    // 3 packets of 20 + 20 bytes of L3 headers (labels are not L3 octets).
    let two = [(16, 0), (17, 0)];
    let v4 = ipv4(5, 0, PROTO_TCP, &tcp(40000, 443, ACK, &[], 1500));
    h.send(Direction::Egress, &frame(ETH_P_MPLS_UC, &mpls(&two, &v4)), gso(0, 500));
    h.assert_flows(&[(with_top(key4(PROTO_TCP, 40000, 443), &two), 3, 1500 + 3 * (20 + 20))]);
    h.assert_no_exceptions();
}

//! Where the inner payload of a tunnel GSO packet starts, worked out from
//! its bytes with the rules of docs/architecture.md ("Tunnel GSO"), RFC 7348
//! (VXLAN), RFC 8926 (GENEVE) and RFC 2784/2890 (GRE), written here
//! independently of bpf/encap.h. A header counts as there when all the bytes
//! the rules need of it are in the frame.

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Whether `n` bytes at `at` are in the frame.
fn has(frame: &[u8], at: usize, n: usize) -> bool {
    at + n <= frame.len()
}

/// The offset of the inner payload of a packet whose outer transport
/// header (IP protocol `protocol`, destination port `dst_port`) is at `l4`;
/// `None` when it is no known tunnel or the inner headers are not all there.
pub fn tunnel_payload(frame: &[u8], protocol: u8, dst_port: u16, l4: usize) -> Option<usize> {
    const TEB: u16 = 0x6558;
    let (mut ethertype, mut at) = match (protocol, dst_port) {
        // VXLAN: UDP, then an 8-byte header, then Ethernet.
        (17, 4789 | 8472) => (TEB, l4 + 8 + 8),
        // GENEVE: version 0, options length in 4-byte words, protocol type.
        (17, 6081) => {
            let g = l4 + 8;
            if !has(frame, g, 4) || frame[g] >> 6 != 0 {
                return None;
            }
            (be16(frame, g + 2), g + 8 + usize::from(frame[g] & 0x3f) * 4)
        }
        // GRE version 0 without routing; checksum, key, sequence words.
        (47, _) => {
            if !has(frame, l4, 4) {
                return None;
            }
            let flags = be16(frame, l4);
            if flags & 0x4007 != 0 {
                return None;
            }
            let words = [0x8000, 0x2000, 0x1000].iter().filter(|&&bit| flags & bit != 0).count();
            (be16(frame, l4 + 2), l4 + 4 + 4 * words)
        }
        (4, _) => (0x0800, l4),
        (41, _) => (0x86dd, l4),
        _ => return None,
    };
    if ethertype == TEB {
        if !has(frame, at + 12, 2) {
            return None;
        }
        ethertype = be16(frame, at + 12);
        at += 14;
    }
    let (next, l4) = match ethertype {
        0x0800 => {
            if !has(frame, at, 20) || frame[at] >> 4 != 4 || frame[at] & 0x0f < 5 {
                return None;
            }
            (frame[at + 9], at + usize::from(frame[at] & 0x0f) * 4)
        }
        0x86dd => {
            if !has(frame, at, 8) || frame[at] >> 4 != 6 {
                return None;
            }
            (frame[at + 6], at + 40)
        }
        _ => return None,
    };
    match next {
        17 if has(frame, l4, 8) => Some(l4 + 8),
        6 if has(frame, l4, 20) && frame[l4 + 12] >> 4 >= 5 => Some(l4 + usize::from(frame[l4 + 12] >> 4) * 4),
        _ => None,
    }
}

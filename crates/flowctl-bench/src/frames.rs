//! Ready-made Ethernet + IPv4 + UDP frames, one per flow.

use std::net::Ipv4Addr;

/// Ethernet header length.
const ETH_LEN: usize = 14;
/// IPv4 header length (no options).
const IP_LEN: usize = 20;
/// UDP header length.
const UDP_LEN: usize = 8;
/// Smallest IPv4 total length with a UDP header.
pub const MIN_SIZE: u16 = (IP_LEN + UDP_LEN) as u16;
/// UDP source port of flow 0.
pub const FIRST_SRC_PORT: u16 = 10000;

/// What every frame shares.
#[derive(Clone, Copy, Debug)]
pub struct FrameSpec {
    /// Source MAC (the sending interface's).
    pub src_mac: [u8; 6],
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source IPv4 address.
    pub src_ip: Ipv4Addr,
    /// Destination IPv4 address.
    pub dst_ip: Ipv4Addr,
    /// UDP destination port.
    pub dst_port: u16,
    /// IPv4 total length.
    pub size: u16,
}

/// Builds the frames of `flows` flows; flow i has UDP source port 10000 + i.
/// `flows` must keep the ports within u16 and `size` be at least [`MIN_SIZE`].
pub fn build(spec: &FrameSpec, flows: u32) -> Vec<Vec<u8>> {
    // The CLI keeps FIRST_SRC_PORT + flows within the port range.
    (FIRST_SRC_PORT..=u16::MAX)
        .take(flows as usize)
        .map(|port| frame(spec, port))
        .collect()
}

/// One frame with valid IPv4 and UDP checksums.
pub fn frame(spec: &FrameSpec, src_port: u16) -> Vec<u8> {
    let size = usize::from(spec.size.max(MIN_SIZE));
    let mut f = vec![0u8; ETH_LEN + size];
    f[0..6].copy_from_slice(&spec.dst_mac);
    f[6..12].copy_from_slice(&spec.src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());

    let ip = &mut f[ETH_LEN..ETH_LEN + IP_LEN];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(size as u16).to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&spec.src_ip.octets());
    ip[16..20].copy_from_slice(&spec.dst_ip.octets());
    let sum = checksum(0, ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());

    let udp_len = size - IP_LEN;
    let l4 = &mut f[ETH_LEN + IP_LEN..];
    l4[0..2].copy_from_slice(&src_port.to_be_bytes());
    l4[2..4].copy_from_slice(&spec.dst_port.to_be_bytes());
    l4[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    for (i, b) in l4[UDP_LEN..].iter_mut().enumerate() {
        *b = (i as u8) ^ 0x5a;
    }
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&spec.src_ip.octets());
    pseudo[4..8].copy_from_slice(&spec.dst_ip.octets());
    pseudo[9] = 17;
    pseudo[10..12].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let sum = match checksum(sum_words(0, &pseudo), l4) {
        0 => 0xffff, // 0 means "no checksum" in UDP
        s => s,
    };
    l4[6..8].copy_from_slice(&sum.to_be_bytes());
    f
}

/// Adds `data` as big-endian 16-bit words to a one's-complement sum.
fn sum_words(mut acc: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    acc
}

/// Internet checksum of `data`, continuing the partial sum `acc`.
fn checksum(acc: u32, data: &[u8]) -> u16 {
    let mut sum = sum_words(acc, data);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(size: u16) -> FrameSpec {
        FrameSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: Ipv4Addr::new(10, 1, 2, 3),
            dst_ip: Ipv4Addr::new(10, 1, 2, 4),
            dst_port: 9999,
            size,
        }
    }

    fn verify(f: &[u8]) {
        let ip = &f[ETH_LEN..ETH_LEN + IP_LEN];
        assert_eq!(checksum(0, ip), 0, "IPv4 header checksum");
        let l4 = &f[ETH_LEN + IP_LEN..];
        let mut pseudo = [0u8; 12];
        pseudo[0..8].copy_from_slice(&ip[12..20]);
        pseudo[9] = 17;
        pseudo[10..12].copy_from_slice(&(l4.len() as u16).to_be_bytes());
        assert_eq!(checksum(sum_words(0, &pseudo), l4), 0, "UDP checksum");
    }

    #[test]
    fn frames_have_the_asked_size_ports_and_checksums() {
        for size in [64u16, 65, 1500] {
            let frames = build(&spec(size), 3);
            assert_eq!(frames.len(), 3);
            for (i, f) in frames.iter().enumerate() {
                assert_eq!(f.len(), ETH_LEN + usize::from(size));
                assert_eq!(&f[12..14], &[0x08, 0x00]);
                assert_eq!(u16::from_be_bytes([f[16], f[17]]), size, "IPv4 total length");
                assert_eq!(u16::from_be_bytes([f[34], f[35]]), 10000 + i as u16);
                assert_eq!(u16::from_be_bytes([f[36], f[37]]), 9999);
                assert_eq!(u16::from_be_bytes([f[38], f[39]]), size - 20, "UDP length");
                verify(f);
            }
        }
    }

    #[test]
    fn checksum_matches_a_known_header() {
        // RFC 1071 style example: a classic IPv4 header whose checksum is 0xb861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(checksum(0, &hdr), 0xb861);
    }
}

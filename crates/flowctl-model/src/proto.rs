//! IP protocol numbers and TCP flag bits the model and its users test for.

/// ICMP (IPv4).
pub const ICMP: u8 = 1;
/// TCP.
pub const TCP: u8 = 6;
/// UDP.
pub const UDP: u8 = 17;
/// ICMPv6.
pub const ICMPV6: u8 = 58;

/// TCP FIN, in `tcpControlBits` (RFC 7125) order.
pub const TCP_FIN: u16 = 0x01;
/// TCP SYN.
pub const TCP_SYN: u16 = 0x02;
/// TCP RST.
pub const TCP_RST: u16 = 0x04;
/// TCP PSH.
pub const TCP_PSH: u16 = 0x08;
/// TCP ACK.
pub const TCP_ACK: u16 = 0x10;

/// Whether `protocol` is ICMP or ICMPv6, whose flows carry
/// `dst_port = type * 256 + code`.
pub fn is_icmp(protocol: u8) -> bool {
    matches!(protocol, ICMP | ICMPV6)
}

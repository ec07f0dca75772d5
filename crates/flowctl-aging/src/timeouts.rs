//! The timers that decide when a flow is reported.

use std::time::Duration;

use flowctl_model::proto;

/// Aging timers (RFC 5470 terms: idle = inactive timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Idle timeout of TCP flows.
    pub idle_tcp: Duration,
    /// Idle timeout of UDP flows.
    pub idle_udp: Duration,
    /// Idle timeout of ICMP and ICMPv6 flows.
    pub idle_icmp: Duration,
    /// Idle timeout of every other protocol.
    pub idle_other: Duration,
    /// Active timeout: a flow still sending is reported this often.
    pub active: Duration,
    /// After a TCP FIN or RST, wait this long for the last packets, then end the flow.
    pub tcp_end_grace: Duration,
}

impl Default for Timeouts {
    /// 15 s idle, 60 s active, 5 s TCP end grace.
    fn default() -> Self {
        let idle = Duration::from_secs(15);
        Self {
            idle_tcp: idle,
            idle_udp: idle,
            idle_icmp: idle,
            idle_other: idle,
            active: Duration::from_secs(60),
            tcp_end_grace: Duration::from_secs(5),
        }
    }
}

impl Timeouts {
    /// Idle timeout of a flow of IP protocol `protocol`.
    pub fn idle_for(&self, protocol: u8) -> Duration {
        match protocol {
            proto::TCP => self.idle_tcp,
            proto::UDP => self.idle_udp,
            proto::ICMP | proto::ICMPV6 => self.idle_icmp,
            _ => self.idle_other,
        }
    }
}

/// When the cache counts as nearly full, and how far to empty it then.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Watermarks {
    /// Fill ratio (0..1) at which the oldest flows are evicted.
    pub high: f64,
    /// Fill ratio eviction brings the cache down to.
    pub low: f64,
}

impl Default for Watermarks {
    /// Evict at 90 % full, down to 80 %.
    fn default() -> Self {
        Self { high: 0.9, low: 0.8 }
    }
}

//! A flow's counters merged over CPUs.

use flowctl_common::FlowValue;

/// A flow's counters summed over every CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Wire packets.
    pub packets: u64,
    /// L3 octets.
    pub octets: u64,
    /// Earliest first-packet time (boot-time ns) over the CPUs.
    pub first_seen_ns: u64,
    /// Latest last-packet time (boot-time ns) over the CPUs.
    pub last_seen_ns: u64,
    /// OR of the TCP flags seen on every CPU.
    pub tcp_flags: u16,
    /// Minimum TTL / hop limit.
    pub min_ttl: u8,
    /// Maximum TTL / hop limit.
    pub max_ttl: u8,
    /// TOS / traffic class of the flow's first packet.
    pub tos: u8,
}

impl FlowStats {
    /// Merges per-CPU slots; CPUs that saw no packet are ignored. `None` when
    /// no CPU saw a packet.
    pub fn merge(per_cpu: &[FlowValue]) -> Option<Self> {
        let mut seen = per_cpu.iter().filter(|v| v.packets > 0);
        let first = seen.next()?;
        let mut s = FlowStats {
            packets: first.packets,
            octets: first.octets,
            first_seen_ns: first.first_seen_ns,
            last_seen_ns: first.last_seen_ns,
            tcp_flags: first.tcp_flags,
            min_ttl: first.min_ttl,
            max_ttl: first.max_ttl,
            tos: first.tos,
        };
        for v in seen {
            s.packets += v.packets;
            s.octets += v.octets;
            if v.first_seen_ns < s.first_seen_ns {
                s.first_seen_ns = v.first_seen_ns;
                s.tos = v.tos;
            }
            s.last_seen_ns = s.last_seen_ns.max(v.last_seen_ns);
            s.tcp_flags |= v.tcp_flags;
            s.min_ttl = s.min_ttl.min(v.min_ttl);
            s.max_ttl = s.max_ttl.max(v.max_ttl);
        }
        Some(s)
    }

    /// One CPU slot holding these stats: [`merge`](Self::merge) of it alone
    /// gives them back.
    pub fn to_value(&self) -> FlowValue {
        FlowValue {
            packets: self.packets,
            octets: self.octets,
            first_seen_ns: self.first_seen_ns,
            last_seen_ns: self.last_seen_ns,
            tcp_flags: self.tcp_flags,
            min_ttl: self.min_ttl,
            max_ttl: self.max_ttl,
            tos: self.tos,
            pad: [0; 3],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(packets: u64, first: u64, last: u64, flags: u16, ttl: (u8, u8), tos: u8) -> FlowValue {
        FlowValue {
            packets,
            octets: packets * 100,
            first_seen_ns: first,
            last_seen_ns: last,
            tcp_flags: flags,
            min_ttl: ttl.0,
            max_ttl: ttl.1,
            tos,
            pad: [0; 3],
        }
    }

    #[test]
    fn merge_ignores_idle_cpus_and_combines_the_rest() {
        let merged = FlowStats::merge(&[
            FlowValue::default(),
            slot(3, 500, 900, 0x02, (60, 64), 0x10),
            slot(2, 200, 700, 0x11, (63, 63), 0x20),
        ])
        .unwrap();
        assert_eq!(
            merged,
            FlowStats {
                packets: 5,
                octets: 500,
                first_seen_ns: 200,
                last_seen_ns: 900,
                tcp_flags: 0x13,
                min_ttl: 60,
                max_ttl: 64,
                tos: 0x20,
            }
        );
    }

    #[test]
    fn one_slot_of_merged_stats_merges_back_to_them() {
        let merged = FlowStats::merge(&[
            slot(3, 500, 900, 0x02, (60, 64), 0x10),
            slot(2, 200, 700, 0x11, (63, 63), 0x20),
        ])
        .unwrap();
        assert_eq!(
            FlowStats::merge(&[FlowValue::default(), merged.to_value()]),
            Some(merged)
        );
        assert_eq!(FlowStats::merge(&[merged.to_value()]), Some(merged));
    }

    #[test]
    fn merge_of_empty_slots_is_none() {
        assert_eq!(FlowStats::merge(&[FlowValue::default(), FlowValue::default()]), None);
        assert_eq!(FlowStats::merge(&[]), None);
    }
}

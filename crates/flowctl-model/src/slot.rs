//! The flow cache's shared memory as the datapath writes it (`bpf/flowctl.h`,
//! byte for byte): one slot per flow, the ring of free slots, and a CPU's
//! spare slot. How the three maps work together: `flowctl.h`, and
//! `docs/architecture.md` ("The flow cache").

use crate::{EndReason, FlowKey, FlowStats};

/// State of a slot that is free (on the ring, or a CPU's spare).
pub const SLOT_FREE: u8 = 0;
/// State of a slot counting a flow published in the hash.
pub const SLOT_LIVE: u8 = 1;
/// State of a slot whose key was taken out of the hash. The byte above the
/// state in [`FlowSlot::meta`] holds the [`EndReason`] it was closed for,
/// so a process that settles it after a crash still knows why the flow
/// ended.
pub const SLOT_CLOSING: u8 = 2;

/// Bit offsets of the fields of [`FlowSlot::meta`] (`FLOWCTL_META_*`):
/// TCP flags from bit 0, then these.
pub mod meta {
    /// Minimum TTL.
    pub const TTL_MIN_SHIFT: u32 = 16;
    /// Maximum TTL.
    pub const TTL_MAX_SHIFT: u32 = 24;
    /// TOS of the first packet.
    pub const TOS_SHIFT: u32 = 32;
    /// The CPU that adds to the slot without atomics, + 1 (it created the
    /// slot, or took it once open), or [`OWNER_NONE`] or [`OWNER_OPEN`].
    pub const OWNER_SHIFT: u32 = 40;
    /// Owner byte: nobody adds plainly, every CPU adds to the shared
    /// counters (created on CPU 254 or above, or being handed over).
    pub const OWNER_NONE: u8 = 0;
    /// Owner byte: the next CPU (below 254) that counts into the slot
    /// takes it.
    pub const OWNER_OPEN: u8 = 0xff;
    /// The owner byte.
    pub const OWNER_MASK: u64 = 0xff << OWNER_SHIFT;
    /// The slot's state.
    pub const STATE_SHIFT: u32 = 48;
    /// The reason a closing slot was closed for.
    pub const REASON_SHIFT: u32 = 56;
    /// State and reason together.
    pub const STATE_AND_REASON: u64 = 0xffff << STATE_SHIFT;
}

/// The state byte of a slot's `meta`.
pub fn slot_state(meta: u64) -> u8 {
    (meta >> meta::STATE_SHIFT) as u8
}

/// The owner byte of a slot's `meta`: a CPU number + 1, or
/// [`meta::OWNER_NONE`] or [`meta::OWNER_OPEN`].
pub fn slot_owner(meta: u64) -> u8 {
    (meta >> meta::OWNER_SHIFT) as u8
}

/// The state and reason bits of a slot closed for `reason`.
pub fn closing_bits(reason: EndReason) -> u64 {
    u64::from(SLOT_CLOSING) << meta::STATE_SHIFT | u64::from(reason.value()) << meta::REASON_SHIFT
}

/// The reason a closing slot was closed for; `None` if it is not closing.
/// An unknown reason byte reads as a forced end.
pub fn closing_reason(meta: u64) -> Option<EndReason> {
    (slot_state(meta) == SLOT_CLOSING)
        .then(|| EndReason::from_value((meta >> meta::REASON_SHIFT) as u8).unwrap_or(EndReason::ForcedEnd))
}

/// The `meta` word of a flow's first packets (state free): its flags, TTL
/// range and TOS.
pub fn first_meta(stats: &FlowStats) -> u64 {
    u64::from(stats.tcp_flags)
        | u64::from(stats.min_ttl) << meta::TTL_MIN_SHIFT
        | u64::from(stats.max_ttl) << meta::TTL_MAX_SHIFT
        | u64::from(stats.tos) << meta::TOS_SHIFT
}

/// One flow's counters in the cache (`struct flow_slot`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowSlot {
    /// The flow this slot counts.
    pub key: FlowKey,
    /// The sampling of the attachment that created the flow
    /// ([`Sampling::word`](crate::Sampling::word); 0: every packet).
    pub sampling: u32,
    /// Wire packets counted by the owner CPU (the one that created the
    /// slot, [`meta::OWNER_SHIFT`]), without atomics.
    pub packets: u64,
    /// L3 octets counted by the owner CPU.
    pub octets: u64,
    /// CLOCK_BOOTTIME (ns) of the first packet.
    pub first_seen_ns: u64,
    /// CLOCK_BOOTTIME (ns) of the last packet.
    pub last_seen_ns: u64,
    /// TCP flags, TTL range, TOS, owner, state and reason ([`meta`]).
    pub meta: u64,
    /// Wire packets counted by other CPUs, with atomic adds.
    pub shared_packets: u64,
    /// L3 octets counted by other CPUs.
    pub shared_octets: u64,
}

impl FlowSlot {
    /// The counters of the flow: the owner's and the other CPUs' added.
    pub fn stats(&self) -> FlowStats {
        FlowStats {
            packets: self.packets.wrapping_add(self.shared_packets),
            octets: self.octets.wrapping_add(self.shared_octets),
            first_seen_ns: self.first_seen_ns,
            last_seen_ns: self.last_seen_ns,
            tcp_flags: self.meta as u16,
            min_ttl: (self.meta >> meta::TTL_MIN_SHIFT) as u8,
            max_ttl: (self.meta >> meta::TTL_MAX_SHIFT) as u8,
            tos: (self.meta >> meta::TOS_SHIFT) as u8,
            sampling: self.sampling,
            ..Default::default()
        }
    }
}

/// Positions in the ring of free slots (`struct slot_ring`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotRing {
    /// Next position the datapath takes a free slot from.
    pub head: u64,
    /// Next position user space puts a free slot at.
    pub tail: u64,
    /// Ring positions - 1 (a power of two minus one); 0 until filled.
    pub mask: u32,
    /// Always 0.
    pub pad: u32,
}

/// Two entries of the ring of free slots (`struct ring_pair`): position
/// `p` is `slot[p & 1]` of element `p >> 1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingPair {
    /// The two free slot indexes.
    pub slot: [u32; 2],
}

/// A slot a CPU took but could not use (`struct spare_slot`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpareSlot {
    /// The slot.
    pub slot: u32,
    /// 1 when `slot` is valid.
    pub held: u32,
}

/// An entry of a CPU's front cache (`struct front_entry`): the slot the
/// flow whose key folds to `check` was last counted in by that CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrontEntry {
    /// The key fold's low half with its lowest bit set; 0 for an empty entry.
    pub check: u32,
    /// The slot.
    pub slot: u32,
}

/// Elements of the front cache array for a machine with `cpus` possible
/// CPUs: [`crate::FRONT_ENTRIES`] for each of the first
/// [`crate::FRONT_MAX_CPUS`].
pub fn front_array_entries(cpus: usize) -> u32 {
    let cpus = u32::try_from(cpus).unwrap_or(u32::MAX).clamp(1, crate::FRONT_MAX_CPUS);
    cpus * crate::FRONT_ENTRIES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closing_slot_keeps_its_reason() {
        for reason in EndReason::ALL {
            let m = 0x1234 | closing_bits(reason);
            assert_eq!(closing_reason(m), Some(reason));
            assert_eq!(slot_state(m), SLOT_CLOSING);
        }
        assert_eq!(closing_reason(u64::from(SLOT_LIVE) << meta::STATE_SHIFT), None);
        assert_eq!(closing_reason(0), None);
        let unknown = u64::from(SLOT_CLOSING) << meta::STATE_SHIFT | 99 << meta::REASON_SHIFT;
        assert_eq!(closing_reason(unknown), Some(EndReason::ForcedEnd));
    }

    #[test]
    fn a_slot_unpacks_flags_ttls_and_tos_and_first_meta_packs_them() {
        let stats = FlowStats {
            tcp_flags: 0x12,
            min_ttl: 60,
            max_ttl: 64,
            tos: 0xb8,
            ..Default::default()
        };
        let slot = FlowSlot {
            packets: 3,
            shared_packets: 4,
            octets: 100,
            shared_octets: 200,
            meta: first_meta(&stats) | u64::from(SLOT_LIVE) << meta::STATE_SHIFT,
            ..Default::default()
        };
        let read = slot.stats();
        assert_eq!(
            (read.min_ttl, read.max_ttl, read.tos, read.tcp_flags),
            (60, 64, 0xb8, 0x12)
        );
        assert_eq!(slot_state(slot.meta), SLOT_LIVE);
        assert_eq!(
            (read.packets, read.octets),
            (7, 300),
            "the owner's and the other CPUs' counts add up"
        );
    }
}

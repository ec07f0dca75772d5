//! The flow slots as user space reads and writes them in the mapping shared
//! with the datapath: every field through an atomic of its size, since
//! eBPF programs add to them at any time.

use std::{
    mem::offset_of,
    ptr::NonNull,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
};

use flowctl_model::{first_meta, meta, slot_owner, slot_state, FlowKey, FlowSlot, FlowStats, SLOT_LIVE};

use crate::map_ops::MappedArray;

/// The slots of the cache, mapped.
pub(crate) struct Slots(pub(crate) MappedArray<FlowSlot>);

/// One field of a slot.
fn field<T>(slot: NonNull<FlowSlot>, offset: usize) -> *mut T {
    // SAFETY: offset is the offset of a field of FlowSlot, inside the slot.
    unsafe { slot.as_ptr().cast::<u8>().add(offset).cast::<T>() }
}

/// The u64 field at `offset` of a slot of `_slots`, borrowed from it.
fn u64_at(_slots: &Slots, slot: NonNull<FlowSlot>, offset: usize) -> &AtomicU64 {
    // SAFETY: the field is 8-byte aligned (FlowSlot is repr(C) with u64
    // fields at multiples of 8, and the mapping is page aligned) and lives
    // as long as the mapping, which the returned borrow cannot outlive.
    unsafe { AtomicU64::from_ptr(field(slot, offset)) }
}

/// The u32 at `offset` of a slot of `_slots`, borrowed from it.
fn u32_at(_slots: &Slots, slot: NonNull<FlowSlot>, offset: usize) -> &AtomicU32 {
    // SAFETY: as above, for a 4-byte aligned u32.
    unsafe { AtomicU32::from_ptr(field(slot, offset)) }
}

impl Slots {
    /// Number of slots.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    fn at(&self, i: u32) -> Option<NonNull<FlowSlot>> {
        self.0.get(i as usize)
    }

    fn meta(&self, slot: NonNull<FlowSlot>) -> &AtomicU64 {
        u64_at(self, slot, offset_of!(FlowSlot, meta))
    }

    /// The `meta` word of slot `i` (acquire: a live slot's fields, written
    /// before it was made live, are visible after).
    pub(crate) fn meta_word(&self, i: u32) -> Option<u64> {
        self.at(i).map(|s| self.meta(s).load(Ordering::Acquire))
    }

    /// The state of slot `i`.
    pub(crate) fn state(&self, i: u32) -> Option<u8> {
        self.meta_word(i).map(slot_state)
    }

    /// Replaces the state and reason bits of slot `i` with `bits`,
    /// atomically with the datapath's updates of the other bits.
    pub(crate) fn set_state_bits(&self, i: u32, bits: u64) {
        if let Some(s) = self.at(i) {
            let _ = self.meta(s).fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| {
                Some(m & !meta::STATE_AND_REASON | bits)
            });
        }
    }

    /// Whether slot `i`, as a walk just read it (`seen`), should be handed
    /// over to another CPU: its packets `moved` to other CPUs than its
    /// owner, or nobody owns it. An owned slot is taken from its owner here
    /// (owner byte [`meta::OWNER_NONE`]: every CPU now adds atomically), if
    /// the owner is still the one seen; [`hand_over`](Self::hand_over)
    /// finishes once no CPU can still be in a plain add (after a grace
    /// period).
    pub(crate) fn take_from_owner(&self, i: u32, seen: &FlowSlot, moved: bool) -> bool {
        let Some(s) = self.at(i) else { return false };
        let owner = slot_owner(seen.meta);
        if owner == meta::OWNER_OPEN || slot_state(seen.meta) != SLOT_LIVE {
            return false;
        }
        if owner == meta::OWNER_NONE {
            return true;
        }
        if !moved {
            return false;
        }
        self.meta(s)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| {
                (slot_owner(m) == owner).then_some(m & !meta::OWNER_MASK)
            })
            .is_ok()
    }

    /// Opens slot `i`, taken from its owner at least one RCU grace period
    /// ago (no CPU can still be in a plain add that read the old owner):
    /// the next CPU that counts into it takes it. Counts stay where they
    /// are (readers add both pairs): nothing moves that a crash could
    /// lose. Nothing if the slot is no longer live and unowned (closed
    /// since, or opened already); returns whether it was opened.
    pub(crate) fn hand_over(&self, i: u32) -> bool {
        let Some(s) = self.at(i) else { return false };
        self.meta(s)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| {
                (slot_state(m) == SLOT_LIVE && slot_owner(m) == meta::OWNER_NONE)
                    .then_some(m | u64::from(meta::OWNER_OPEN) << meta::OWNER_SHIFT)
            })
            .is_ok()
    }

    /// Marks slot `i` free. Only for a slot no eBPF program can reach any
    /// more (settled after a grace period, or never published).
    pub(crate) fn free(&self, i: u32) {
        if let Some(s) = self.at(i) {
            self.meta(s).store(0, Ordering::Release);
        }
    }

    /// The key of slot `i`. Written once, before the slot was made live.
    pub(crate) fn key(&self, i: u32) -> Option<FlowKey> {
        let s = self.at(i)?;
        let words = offset_of!(FlowSlot, key);
        let mut raw = [0u32; size_of::<FlowKey>() / 4];
        for (n, w) in raw.iter_mut().enumerate() {
            *w = u32_at(self, s, words + 4 * n).load(Ordering::Relaxed);
        }
        // SAFETY: FlowKey is repr(C), 4-byte aligned, made only of integers
        // and as large as `raw`: every bit pattern is a valid key.
        Some(unsafe { std::mem::transmute::<[u32; size_of::<FlowKey>() / 4], FlowKey>(raw) })
    }

    /// The counters of slot `i` now.
    pub(crate) fn stats(&self, i: u32) -> Option<FlowStats> {
        self.counters(i).map(|slot| slot.stats())
    }

    /// Slot `i` now, as a walk reads it: the key, and the counters and
    /// `meta` in one read each.
    pub(crate) fn read_walked(&self, i: u32) -> Option<(FlowKey, FlowSlot)> {
        Some((self.key(i)?, self.counters(i)?))
    }

    /// Slot `i` now, key and all.
    pub(crate) fn read(&self, i: u32) -> Option<FlowSlot> {
        Some(FlowSlot {
            key: self.key(i)?,
            ..self.counters(i)?
        })
    }

    /// Slot `i` now, but for its key.
    fn counters(&self, i: u32) -> Option<FlowSlot> {
        let s = self.at(i)?;
        let u64_of = |o| u64_at(self, s, o).load(Ordering::Relaxed);
        Some(FlowSlot {
            // Written once, before the slot was made live, as the key.
            sampling: u32_at(self, s, offset_of!(FlowSlot, sampling)).load(Ordering::Relaxed),
            packets: u64_of(offset_of!(FlowSlot, packets)),
            octets: u64_of(offset_of!(FlowSlot, octets)),
            first_seen_ns: u64_of(offset_of!(FlowSlot, first_seen_ns)),
            last_seen_ns: u64_of(offset_of!(FlowSlot, last_seen_ns)),
            meta: u64_of(offset_of!(FlowSlot, meta)),
            shared_packets: u64_of(offset_of!(FlowSlot, shared_packets)),
            shared_octets: u64_of(offset_of!(FlowSlot, shared_octets)),
            ..Default::default()
        })
    }

    /// Fills slot `i` for a flow inserted from user space (tests and
    /// benchmarks), leaving it free: the caller publishes it.
    pub(crate) fn fill(&self, i: u32, key: &FlowKey, stats: &FlowStats) {
        let Some(s) = self.at(i) else { return };
        // SAFETY: FlowKey is repr(C), 4-byte aligned and 60 bytes: it reads
        // as 15 words.
        let words: [u32; size_of::<FlowKey>() / 4] = unsafe { std::mem::transmute(*key) };
        for (n, w) in words.iter().enumerate() {
            u32_at(self, s, offset_of!(FlowSlot, key) + 4 * n).store(*w, Ordering::Relaxed);
        }
        u32_at(self, s, offset_of!(FlowSlot, sampling)).store(stats.sampling, Ordering::Relaxed);
        u64_at(self, s, offset_of!(FlowSlot, packets)).store(stats.packets, Ordering::Relaxed);
        u64_at(self, s, offset_of!(FlowSlot, octets)).store(stats.octets, Ordering::Relaxed);
        u64_at(self, s, offset_of!(FlowSlot, first_seen_ns)).store(stats.first_seen_ns, Ordering::Relaxed);
        u64_at(self, s, offset_of!(FlowSlot, last_seen_ns)).store(stats.last_seen_ns, Ordering::Relaxed);
        u64_at(self, s, offset_of!(FlowSlot, shared_packets)).store(0, Ordering::Relaxed);
        u64_at(self, s, offset_of!(FlowSlot, shared_octets)).store(0, Ordering::Relaxed);
        // Open: the first CPU that counts into it takes it.
        self.meta(s).store(
            first_meta(stats) | u64::from(meta::OWNER_OPEN) << meta::OWNER_SHIFT,
            Ordering::Release,
        );
    }

    /// Makes slot `i` live, after its key was published (user-space
    /// inserts).
    pub(crate) fn make_live(&self, i: u32) {
        self.set_state_bits(i, u64::from(flowctl_model::SLOT_LIVE) << meta::STATE_SHIFT);
    }
}

//! The ring of free slots, from user space: filled once when the cache is
//! created, given back the slots of settled flows (user space alone writes
//! `tail`), and taken from by user-space inserts (tests and benchmarks)
//! exactly as the datapath takes: compare-and-swap on `head`.

use std::{
    mem::offset_of,
    ptr::NonNull,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
};

use flowctl_model::{RingPair, SlotRing};

use crate::map_ops::MappedArray;

/// The ring: its entries and its positions, mapped.
pub(crate) struct FreeRing {
    pub(crate) pairs: MappedArray<RingPair>,
    pub(crate) ctl: MappedArray<SlotRing>,
}

/// A u64 field of the mapped positions, borrowed from the ring.
fn ctl_u64(_ring: &FreeRing, ctl: NonNull<SlotRing>, offset: usize) -> &AtomicU64 {
    // SAFETY: head and tail are 8-byte aligned u64 fields of the mapped
    // SlotRing, which the returned borrow cannot outlive.
    unsafe { AtomicU64::from_ptr(ctl.as_ptr().cast::<u8>().add(offset).cast()) }
}

/// The u32 mask of the mapped positions, borrowed from the ring.
fn ctl_u32(_ring: &FreeRing, ctl: NonNull<SlotRing>, offset: usize) -> &AtomicU32 {
    // SAFETY: as above for the u32 mask.
    unsafe { AtomicU32::from_ptr(ctl.as_ptr().cast::<u8>().add(offset).cast()) }
}

impl FreeRing {
    fn ctl(&self) -> Option<NonNull<SlotRing>> {
        self.ctl.get(0)
    }

    fn entry(&self, position: u64) -> Option<&AtomicU32> {
        let mask = u64::from(self.mask());
        let p = position & mask;
        let pair = self.pairs.get((p >> 1) as usize)?;
        // SAFETY: slot[p & 1] is an aligned u32 inside the mapped pair.
        Some(unsafe {
            AtomicU32::from_ptr(
                pair.as_ptr()
                    .cast::<u8>()
                    .add(offset_of!(RingPair, slot) + 4 * (p & 1) as usize)
                    .cast(),
            )
        })
    }

    fn mask(&self) -> u32 {
        self.ctl().map_or(0, |c| {
            ctl_u32(self, c, offset_of!(SlotRing, mask)).load(Ordering::Acquire)
        })
    }

    /// Puts every slot `0..slots` on the ring, once: the first caller after
    /// the maps were created does it (the mask, set by compare-and-swap,
    /// tells); `false` for the others.
    pub(crate) fn fill_once(&self, slots: u32) -> bool {
        let Some(ctl) = self.ctl() else { return false };
        let positions = (self.pairs.len() * 2) as u32;
        if positions < slots || !positions.is_power_of_two() {
            return false;
        }
        let mask = ctl_u32(self, ctl, offset_of!(SlotRing, mask));
        if mask
            .compare_exchange(0, positions - 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        for slot in 0..slots {
            if let Some(e) = self.entry(u64::from(slot)) {
                e.store(slot, Ordering::Relaxed);
            }
        }
        ctl_u64(self, ctl, offset_of!(SlotRing, tail)).store(u64::from(slots), Ordering::Release);
        true
    }

    /// Free slots on the ring now.
    pub(crate) fn free(&self) -> u64 {
        let Some(ctl) = self.ctl() else { return 0 };
        let tail = ctl_u64(self, ctl, offset_of!(SlotRing, tail)).load(Ordering::Acquire);
        let head = ctl_u64(self, ctl, offset_of!(SlotRing, head)).load(Ordering::Acquire);
        tail.saturating_sub(head)
    }

    /// Gives `slots` back (their state already set free). Only the process
    /// holding the cache's writer lock calls this: it alone moves `tail`.
    pub(crate) fn give_back(&self, slots: &[u32]) {
        let Some(ctl) = self.ctl() else { return };
        let tail = ctl_u64(self, ctl, offset_of!(SlotRing, tail));
        let at = tail.load(Ordering::Acquire);
        for (n, slot) in slots.iter().enumerate() {
            if let Some(e) = self.entry(at + n as u64) {
                e.store(*slot, Ordering::Relaxed);
            }
        }
        tail.store(at + slots.len() as u64, Ordering::Release);
    }

    /// Takes a free slot, as the datapath does; `None` if none is free.
    pub(crate) fn take(&self) -> Option<u32> {
        let ctl = self.ctl()?;
        let head = ctl_u64(self, ctl, offset_of!(SlotRing, head));
        let tail = ctl_u64(self, ctl, offset_of!(SlotRing, tail));
        loop {
            let h = head.load(Ordering::Acquire);
            if h == tail.load(Ordering::Acquire) {
                return None;
            }
            if head
                .compare_exchange(h, h + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return self.entry(h).map(|e| e.load(Ordering::Relaxed));
            }
        }
    }
}

//! Telling, walk after walk, which flows' packets have moved to other
//! CPUs than their slot's owner: what each slot's two packet counters
//! held at the writer's previous walk.

/// The plain and shared packet counters of every slot at the previous
/// walk that saw other CPUs count into it, low 32 bits of each (a walk
/// sees far fewer than 2^32 packets of one flow since the one before).
/// Zero-filled memory: a slot that only its owner counts into is never
/// written, so its page stays unbacked; at most 8 bytes a slot.
pub(super) struct Moves(Vec<u64>);

impl Moves {
    /// Room for `slots` slots.
    pub(super) fn new(slots: usize) -> Self {
        Self(vec![0; slots])
    }

    /// Whether, since the previous walk that saw slot `i` counted into by
    /// other CPUs, they counted more of its packets (`shared` now) than its
    /// owner did (`plain` now); remembers both. The first time, the counts
    /// since the flow began.
    pub(super) fn moved(&mut self, i: u32, plain: u64, shared: u64) -> bool {
        let Some(before) = self.0.get_mut(i as usize) else {
            return shared > plain;
        };
        let (plain, shared) = (plain as u32, shared as u32);
        let (plain_before, shared_before) = (*before as u32, (*before >> 32) as u32);
        *before = u64::from(shared) << 32 | u64::from(plain);
        shared.wrapping_sub(shared_before) > plain.wrapping_sub(plain_before)
    }

    /// Slot `i` is free: the flow it counts next starts from zero.
    pub(super) fn forget(&mut self, i: u32) {
        if let Some(before) = self.0.get_mut(i as usize) {
            if *before != 0 {
                *before = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Moves;

    #[test]
    fn the_first_look_compares_everything_counted_then_only_what_came_since() {
        let mut moves = Moves::new(4);
        // Owner counted 100, others 5: not moved.
        assert!(!moves.moved(1, 100, 5));
        // Since then the owner counted nothing and others 3: moved, though
        // the owner's total is still far larger.
        assert!(moves.moved(1, 100, 8));
        // Both counted: the owner more.
        assert!(!moves.moved(1, 150, 20));
        // Other slots are on their own.
        assert!(moves.moved(2, 1, 2));
    }

    #[test]
    fn a_freed_slot_starts_again_from_zero_and_counters_may_wrap() {
        let mut moves = Moves::new(2);
        assert!(!moves.moved(0, 1_000, 10));
        moves.forget(0);
        // A new flow in the slot: 7 plain, 9 shared since it began.
        assert!(moves.moved(0, 7, 9));
        // Low 32 bits wrap between two walks.
        let near = u64::from(u32::MAX) - 1;
        assert!(!moves.moved(0, near, near));
        assert!(moves.moved(0, near + 2, near + 5));
    }

    #[test]
    fn a_slot_out_of_range_falls_back_to_the_totals() {
        let mut moves = Moves::new(1);
        assert!(moves.moved(5, 1, 2));
        assert!(!moves.moved(5, 2, 1));
        moves.forget(5);
    }
}

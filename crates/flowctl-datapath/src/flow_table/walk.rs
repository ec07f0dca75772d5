//! Reading the live flows a chunk at a time, in slot order, straight from
//! the mapped slots: no system call per flow.

use flowctl_model::{FlowEntry, FlowWalk, SLOT_LIVE};

use super::FlowTable;
use crate::{Error, Result};

/// One pass over the slots. A flow published after the cursor passed its
/// slot is not seen; every flow live for the whole walk is seen once.
pub struct SlotWalk<'t> {
    table: &'t FlowTable,
    next: u32,
    chunk: Vec<FlowEntry>,
}

impl<'t> SlotWalk<'t> {
    pub(super) fn new(table: &'t FlowTable) -> Self {
        Self {
            table,
            next: 0,
            chunk: Vec::with_capacity(table.chunk),
        }
    }
}

impl FlowWalk for SlotWalk<'_> {
    type Error = Error;

    fn next_chunk(&mut self) -> Result<Option<&[FlowEntry]>> {
        let slots = &self.table.slots;
        let end = slots.len() as u32;
        self.chunk.clear();
        while self.next < end && self.chunk.len() < self.table.chunk {
            let slot = self.next;
            self.next += 1;
            if slots.state(slot) != Some(SLOT_LIVE) {
                continue;
            }
            if let Some((key, seen)) = slots.read_walked(slot) {
                self.chunk.push(FlowEntry {
                    slot,
                    key,
                    stats: seen.stats(),
                });
                self.table.note_owner(slot, &seen);
            }
        }
        Ok((!self.chunk.is_empty()).then_some(&self.chunk[..]))
    }
}

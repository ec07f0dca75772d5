//! Items spread over as many v9 packets as they need, each packet carrying
//! the next packet sequence number (RFC 3954 §5.1: the sequence number
//! counts export packets, not records).

use super::message::V9MessageBuilder;
use super::uptime::Uptime;
use crate::encode::Full;
use crate::split::FinishedMessages;

/// Builds consecutive packets of one Source ID, all with one export time.
#[derive(Debug)]
pub struct V9Splitter<'u> {
    current: V9MessageBuilder,
    export_secs: u32,
    sequence: u32,
    uptime: &'u mut Uptime,
    done: FinishedMessages,
}

impl<'u> V9Splitter<'u> {
    /// Packets like `empty` (its size limit and Source ID), exported at
    /// `export_secs`; the first carries `sequence`, each next one the
    /// number after. `uptime` gives them their sysUptime.
    pub fn starting_with(empty: V9MessageBuilder, export_secs: u32, sequence: u32, uptime: &'u mut Uptime) -> Self {
        Self {
            current: empty,
            export_secs,
            sequence,
            uptime,
            done: Vec::new(),
        }
    }

    /// Adds one item with `add`; when the current packet is full it is
    /// finished and the item goes in a new one. `Full` means the item does
    /// not fit even in an empty packet; nothing was added then.
    pub fn push(&mut self, mut add: impl FnMut(&mut V9MessageBuilder) -> Result<(), Full>) -> Result<(), Full> {
        if add(&mut self.current).is_ok() {
            return Ok(());
        }
        if self.current.is_empty() {
            return Err(Full);
        }
        self.flush();
        add(&mut self.current)
    }

    /// Finishes the current packet, if it has anything.
    pub fn flush(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let fresh = self.current.empty_like();
        let full = std::mem::replace(&mut self.current, fresh);
        let records = full.data_record_count();
        let packet = full.finish(self.export_secs, self.sequence, self.uptime);
        self.done.push((packet, records));
        self.sequence = self.sequence.wrapping_add(1);
    }

    /// Every packet, with its data record count.
    pub fn finish(mut self) -> FinishedMessages {
        self.flush();
        self.done
    }
}

//! Items spread over as many messages as they need: each item goes in the
//! current message, or, when that one is full, in a new one.

use crate::encode::{EncodeError, Full, MessageBuilder};

/// Finished messages, each with the number of data records it carries.
pub type FinishedMessages = Vec<(Vec<u8>, u32)>;

/// Builds consecutive messages of one observation domain, advancing the
/// sequence number by the data records of each finished message.
///
/// ```
/// use flowctl_ipfix::{MessageSplitter, Strictness, SyntheticValues, Template};
///
/// let t = Template::new(256, &["octetDeltaCount"], Strictness::Agent)?;
/// let mut messages = MessageSplitter::new(64, 1, 1_700_000_000, 0)?;
/// for _ in 0..10 {
///     messages.push(|m| m.push_record(&t, &SyntheticValues::default()))?;
/// }
/// let out = messages.finish();
/// assert_eq!(out.iter().map(|(_, n)| n).sum::<u32>(), 10);
/// assert!(out.len() > 1, "ten 8-byte records do not fit in one 64-byte message");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MessageSplitter {
    current: MessageBuilder,
    export_time: u32,
    sequence: u32,
    done: FinishedMessages,
}

impl MessageSplitter {
    /// Messages of at most `max_size` bytes (64..=65535) in
    /// `observation_domain_id`, all with `export_time`; the first carries
    /// `sequence`.
    pub fn new(
        max_size: usize,
        observation_domain_id: u32,
        export_time: u32,
        sequence: u32,
    ) -> Result<Self, EncodeError> {
        Ok(Self::starting_with(
            MessageBuilder::new(max_size, observation_domain_id)?,
            export_time,
            sequence,
        ))
    }

    /// Messages like `empty` (an empty message: its size limit and
    /// observation domain), all with `export_time`; the first carries
    /// `sequence`.
    pub fn starting_with(empty: MessageBuilder, export_time: u32, sequence: u32) -> Self {
        Self {
            current: empty,
            export_time,
            sequence,
            done: Vec::new(),
        }
    }

    /// Adds one item with `add` (for example
    /// `|m| m.push_record(&template, &values)`). When the current message is
    /// full it is finished and the item goes in a new message. `Full` means
    /// the item does not fit even in an empty message (see
    /// [`MessageBuilder::check`]); nothing was added then.
    pub fn push(&mut self, mut add: impl FnMut(&mut MessageBuilder) -> Result<(), Full>) -> Result<(), Full> {
        if add(&mut self.current).is_ok() {
            return Ok(());
        }
        if self.current.is_empty() {
            return Err(Full);
        }
        self.flush();
        add(&mut self.current)
    }

    /// Finishes the current message, if it has anything, so that the next
    /// item starts a new one.
    pub fn flush(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let fresh = self.current.empty_like();
        let full = std::mem::replace(&mut self.current, fresh);
        let records = full.data_record_count();
        self.done.push((full.finish(self.export_time, self.sequence), records));
        self.sequence = self.sequence.wrapping_add(records);
    }

    /// The sequence number of the message being built: the one after the
    /// data records of the finished messages.
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// Every message, the current one finished too if it has anything.
    pub fn finish(mut self) -> FinishedMessages {
        self.flush();
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{template::Strictness, SyntheticValues, Template};

    fn template(id: u16, names: &[&str]) -> Template {
        Template::new(id, names, Strictness::Agent).unwrap()
    }

    fn header(msg: &[u8]) -> (u16, u32, u32) {
        let length = u16::from_be_bytes([msg[2], msg[3]]);
        let sequence = u32::from_be_bytes([msg[8], msg[9], msg[10], msg[11]]);
        let domain = u32::from_be_bytes([msg[12], msg[13], msg[14], msg[15]]);
        (length, sequence, domain)
    }

    #[test]
    fn full_messages_are_finished_and_sequence_numbers_advance() {
        let t = template(300, &["octetDeltaCount", "packetDeltaCount"]);
        let per_message = (100 - 16 - 4) / t.record_length();
        let mut m = MessageSplitter::new(100, 7, 42, u32::MAX - 1).unwrap();
        m.push(|b| b.push_template(&t)).unwrap();
        m.flush();
        m.flush();
        for _ in 0..2 * per_message + 1 {
            m.push(|b| b.push_record(&t, &SyntheticValues::default())).unwrap();
        }
        assert_eq!(m.sequence(), (u32::MAX - 1).wrapping_add(2 * per_message as u32));
        let out = m.finish();
        let counts: Vec<u32> = out.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [0, per_message as u32, per_message as u32, 1]);
        let sequences: Vec<u32> = out.iter().map(|(msg, _)| header(msg).1).collect();
        let first = u32::MAX - 1;
        let n = per_message as u32;
        assert_eq!(
            sequences,
            [first, first, first.wrapping_add(n), first.wrapping_add(2 * n)]
        );
        for (msg, _) in &out {
            let (length, _, domain) = header(msg);
            assert_eq!((usize::from(length), domain), (msg.len(), 7));
            assert!(msg.len() <= 100);
        }
    }

    #[test]
    fn an_item_that_never_fits_is_refused_without_an_empty_message() {
        let small = template(300, &["octetDeltaCount"]);
        let names: Vec<&str> = crate::fields::all()
            .iter()
            .filter(|f| f.is_available() && f.kind != crate::fields::FieldKind::Ipv6Address)
            .map(|f| f.name)
            .collect();
        let big = template(301, &names);
        let mut m = MessageSplitter::new(64, 1, 0, 0).unwrap();
        assert_eq!(m.push(|b| b.push_template(&big)), Err(Full));
        m.push(|b| b.push_template(&small)).unwrap();
        assert_eq!(m.push(|b| b.push_template(&big)), Err(Full));
        let out = m.finish();
        assert_eq!(out.len(), 1, "the message with the small template, no empty one");
        assert_eq!(out[0].0.len(), 16 + 4 + small.template_record_length());
        assert!(MessageSplitter::new(63, 1, 0, 0).is_err());
        assert!(MessageSplitter::new(64, 1, 0, 0).unwrap().finish().is_empty());
    }
}

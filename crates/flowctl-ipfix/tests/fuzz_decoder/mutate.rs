//! Breaking encoded messages where it hurts: set ids and lengths, template
//! ids, field counts, scope counts, field lengths, the enterprise bit,
//! variable-length prefixes, record bytes; truncation, deletion, insertion,
//! bit flips, and withdrawals appended to a message.

use proptest::prelude::*;
use proptest::sample::{select, Index};

use super::session::{Encoded, Spot, SpotKind};

/// How a 16-bit structural field is changed.
#[derive(Clone, Copy, Debug)]
pub enum Change {
    Set(u16),
    Add(i16),
}

/// One change to one message.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Changes the 16 bits at a structural field.
    Spot(Index, Change),
    /// Flips the enterprise bit of a field specifier (its enterprise number
    /// then appears or disappears).
    EnterpriseBit(Index),
    Truncate(Index),
    Delete(Index, usize),
    Insert(Index, Vec<u8>),
    Flip(Index, u8),
    /// Appends a template set (`options`: Set 3) withdrawing `id`.
    AppendWithdrawal {
        options: bool,
        id: u16,
    },
}

fn change() -> impl Strategy<Value = Change> {
    let interesting = select(vec![
        0u16, 1, 2, 3, 4, 5, 8, 10, 16, 255, 256, 257, 0x7fff, 0x8000, 0xfffe, 0xffff,
    ]);
    prop_oneof![
        4 => interesting.prop_map(Change::Set),
        2 => any::<u16>().prop_map(Change::Set),
        3 => select(vec![-4i16, -2, -1, 1, 2, 4, 8]).prop_map(Change::Add),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        8 => (any::<Index>(), change()).prop_map(|(i, c)| Mutation::Spot(i, c)),
        1 => any::<Index>().prop_map(Mutation::EnterpriseBit),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), 1usize..12).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..12)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => (any::<Index>(), 0u8..8).prop_map(|(i, bit)| Mutation::Flip(i, bit)),
        1 => (any::<bool>(), prop_oneof![256u16..=262, 0u16..=3]).prop_map(|(options, id)| Mutation::AppendWithdrawal { options, id }),
    ]
}

/// Changes to some messages of a session.
#[derive(Clone, Debug)]
pub struct SessionMutation {
    /// (message, changes, whether to fix the header length afterwards).
    pub messages: Vec<(Index, Vec<Mutation>, bool)>,
}

pub fn session_mutation() -> impl Strategy<Value = SessionMutation> {
    let one = (
        any::<Index>(),
        prop::collection::vec(mutation(), 1..=3),
        prop_oneof![3 => Just(true), 1 => Just(false)],
    );
    prop::collection::vec(one, 1..=2).prop_map(|messages| SessionMutation { messages })
}

/// Applies `m` to the encoded `messages` (in place).
pub fn apply(messages: &mut [Encoded], m: &SessionMutation) {
    for (which, mutations, patch) in &m.messages {
        let msg = &mut messages[which.index(messages.len())];
        for mutation in mutations {
            apply_one(&mut msg.bytes, &msg.spots, mutation);
        }
        if *patch && msg.bytes.len() >= 4 {
            let len = u16::try_from(msg.bytes.len()).unwrap_or(u16::MAX);
            msg.bytes[2..4].copy_from_slice(&len.to_be_bytes());
        }
    }
}

fn apply_one(bytes: &mut Vec<u8>, spots: &[Spot], mutation: &Mutation) {
    let at = |i: &Index, len: usize| i.index(len.max(1));
    match mutation {
        Mutation::Spot(i, change) => {
            let spot = spots[i.index(spots.len())];
            if let Some(slot) = bytes.get_mut(spot.at..spot.at + 2) {
                let old = u16::from_be_bytes([slot[0], slot[1]]);
                let new = match *change {
                    Change::Set(v) => v,
                    Change::Add(d) => old.wrapping_add_signed(d),
                };
                slot.copy_from_slice(&new.to_be_bytes());
            }
        }
        Mutation::EnterpriseBit(i) => {
            let ids: Vec<&Spot> = spots.iter().filter(|s| s.kind == SpotKind::FieldId).collect();
            if !ids.is_empty() {
                let at = ids[i.index(ids.len())].at;
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 0x80;
                }
            }
        }
        Mutation::Truncate(i) => bytes.truncate(at(i, bytes.len() + 1)),
        Mutation::Delete(i, n) => {
            let start = at(i, bytes.len());
            bytes.drain(start.min(bytes.len())..(start + n).min(bytes.len()));
        }
        Mutation::Insert(i, extra) => {
            let start = at(i, bytes.len() + 1).min(bytes.len());
            bytes.splice(start..start, extra.iter().copied());
        }
        Mutation::Flip(i, bit) => {
            if !bytes.is_empty() {
                let k = at(i, bytes.len());
                bytes[k] ^= 1 << bit;
            }
        }
        Mutation::AppendWithdrawal { options, id } => {
            bytes.extend_from_slice(&[0, if *options { 3 } else { 2 }, 0, 8]);
            bytes.extend_from_slice(&id.to_be_bytes());
            bytes.extend_from_slice(&[0, 0]);
        }
    }
}

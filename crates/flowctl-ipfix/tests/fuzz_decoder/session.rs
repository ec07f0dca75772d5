//! Sessions of valid IPFIX messages for one decoder: templates and options
//! templates (redefined, withdrawn), data sets before and after their
//! template, padding, reserved sets. Each message is encoded here together
//! with the decoder output it must give (worked out from RFC 7011, not from
//! the decoder) and the offsets of its structural fields, for mutations.

use std::collections::HashMap;

use flowctl_ipfix::{DecodedField, DecodedMessage, DecodedRecord, SkipReason, SkippedSet};
use proptest::prelude::*;
use proptest::sample::{select, Index};

use super::fields::{field, write_value, Field, Material, VARIABLE};

/// A template or options template definition.
#[derive(Clone, Debug)]
pub struct TemplateDef {
    pub id: u16,
    pub fields: Vec<Field>,
    /// Scope field count of an options template; `None` for a data template.
    pub scope: Option<u16>,
}

impl TemplateDef {
    fn min_record_len(&self) -> usize {
        self.fields.iter().map(Field::min_len).sum()
    }

    fn variable(&self) -> bool {
        self.fields.iter().any(|f| f.length == VARIABLE)
    }
}

/// Template ids are drawn from a small range so that they get redefined.
const IDS: std::ops::RangeInclusive<u16> = 256..=262;

fn template_def() -> impl Strategy<Value = TemplateDef> {
    let fields = prop::collection::vec(field(), 1..=5).prop_map(|mut fields| {
        let mut seen = Vec::new();
        fields.retain(|f| {
            let new = !seen.contains(&(f.enterprise, f.id));
            seen.push((f.enterprise, f.id));
            new
        });
        fields
    });
    (IDS, fields, any::<bool>(), any::<Index>()).prop_map(|(id, fields, options, scope)| {
        let scope = options.then(|| 1 + scope.index(fields.len()) as u16);
        TemplateDef { id, fields, scope }
    })
}

/// One record of a template set.
#[derive(Clone, Debug)]
pub enum Item {
    /// Defines a template of the pool (of the set's kind).
    Define(Index),
    /// Defines every template of the pool of the set's kind.
    DefineAll,
    /// Withdraws one template id.
    Withdraw(u16),
    /// Withdraws every template of the set's kind.
    WithdrawAll,
}

/// One set of a message.
#[derive(Clone, Debug)]
pub enum SetPlan {
    Templates {
        options: bool,
        items: Vec<Item>,
        padding: usize,
    },
    /// Records of a pool template's id, each from random material.
    Data {
        template: Index,
        records: Vec<Vec<u8>>,
        padding: Index,
    },
    Reserved {
        id: u16,
        body: Vec<u8>,
    },
}

fn set_plan() -> impl Strategy<Value = SetPlan> {
    let item = prop_oneof![
        6 => any::<Index>().prop_map(Item::Define),
        2 => prop_oneof![IDS, Just(300u16)].prop_map(Item::Withdraw),
        1 => Just(Item::WithdrawAll),
    ];
    let material = prop::collection::vec(any::<u8>(), 0..48);
    prop_oneof![
        3 => (any::<bool>(), prop::collection::vec(item, 1..=3), prop_oneof![4 => Just(0usize), 1 => 1usize..4])
            .prop_map(|(options, items, padding)| SetPlan::Templates { options, items, padding }),
        5 => (any::<Index>(), prop::collection::vec(material, 0..=3), any::<Index>())
            .prop_map(|(template, records, padding)| SetPlan::Data { template, records, padding }),
        1 => (prop_oneof![0u16..=1, 4u16..=255], prop::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(id, body)| SetPlan::Reserved { id, body }),
    ]
}

#[derive(Clone, Debug)]
pub struct MessagePlan {
    odid: u32,
    sequence: u32,
    export_time: u32,
    sets: Vec<SetPlan>,
}

/// Templates to draw from, and messages using them.
#[derive(Clone, Debug)]
pub struct Session {
    pool: Vec<TemplateDef>,
    messages: Vec<MessagePlan>,
}

pub fn session() -> impl Strategy<Value = Session> {
    let message = (
        select(vec![1u32, 2, 0xdead_beef]),
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(set_plan(), 1..=4),
    )
        .prop_map(|(odid, sequence, export_time, sets)| MessagePlan {
            odid,
            sequence,
            export_time,
            sets,
        });
    // Mostly, the first message starts by defining every template of the pool.
    let preamble = prop_oneof![3 => Just(true), 1 => Just(false)];
    (
        prop::collection::vec(template_def(), 1..=4),
        preamble,
        prop::collection::vec(message, 1..=4),
    )
        .prop_map(|(pool, preamble, mut messages)| {
            if preamble {
                for options in [false, true] {
                    let items = vec![Item::DefineAll];
                    messages[0].sets.insert(
                        0,
                        SetPlan::Templates {
                            options,
                            items,
                            padding: 0,
                        },
                    );
                }
            }
            Session { pool, messages }
        })
}

/// A structural field of an encoded message, for mutations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SpotKind {
    Version,
    Length,
    SetId,
    SetLength,
    TemplateId,
    FieldCount,
    ScopeCount,
    FieldId,
    FieldLength,
    Enterprise,
    VarLength,
    Record,
}

/// Where a structural field is (byte offset in the message).
#[derive(Clone, Copy, Debug)]
pub struct Spot {
    pub kind: SpotKind,
    pub at: usize,
}

/// One encoded message and the decoder output it must give.
#[derive(Clone, Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub expected: DecodedMessage,
    pub spots: Vec<Spot>,
}

/// The templates a decoder knows, per observation domain.
type Known = HashMap<u32, HashMap<u16, TemplateDef>>;

impl Session {
    /// Encodes every message, in order, with its expected decoding.
    pub fn encode(&self) -> Vec<Encoded> {
        let mut known = Known::new();
        self.messages
            .iter()
            .map(|m| self.encode_message(m, &mut known))
            .collect()
    }

    fn encode_message(&self, plan: &MessagePlan, known: &mut Known) -> Encoded {
        let mut out = Writer::default();
        out.spot(SpotKind::Version);
        out.u16(10);
        out.spot(SpotKind::Length);
        out.u16(0);
        out.u32(plan.export_time);
        out.u32(plan.sequence);
        out.u32(plan.odid);
        let mut expected = DecodedMessage {
            export_time: plan.export_time,
            sequence_number: plan.sequence,
            observation_domain_id: plan.odid,
            templates: Vec::new(),
            options_templates: Vec::new(),
            withdrawn: Vec::new(),
            records: Vec::new(),
            skipped_sets: Vec::new(),
        };
        let domain = known.entry(plan.odid).or_default();
        for set in &plan.sets {
            let start = out.bytes.len();
            out.spot(SpotKind::SetId);
            let id_at = out.bytes.len();
            out.u16(0);
            out.spot(SpotKind::SetLength);
            out.u16(0);
            let id = match set {
                SetPlan::Templates {
                    options,
                    items,
                    padding,
                } => {
                    self.template_set(*options, items, domain, &mut out, &mut expected);
                    out.bytes.resize(out.bytes.len() + padding, 0);
                    if *options {
                        3
                    } else {
                        2
                    }
                }
                SetPlan::Data {
                    template,
                    records,
                    padding,
                } => {
                    let def = &self.pool[template.index(self.pool.len())];
                    let current = domain.get(&def.id);
                    let t = current.unwrap_or(def);
                    let mut decoded = Vec::new();
                    for material in records {
                        out.spot(SpotKind::Record);
                        decoded.push(record(t, material, &mut out));
                    }
                    // Padding (zeros) shorter than any record, where records
                    // have a fixed length.
                    if !t.variable() && t.min_record_len() > 1 {
                        out.bytes
                            .resize(out.bytes.len() + padding.index(t.min_record_len().min(4)), 0);
                    }
                    let skip = |reason| SkippedSet {
                        set_id: def.id,
                        offset: start,
                        reason,
                    };
                    if out.bytes.len() > start + 4 {
                        match current {
                            None => expected.skipped_sets.push(skip(SkipReason::UnknownTemplate)),
                            Some(t) if t.min_record_len() == 0 => {
                                expected.skipped_sets.push(skip(SkipReason::EmptyRecords))
                            }
                            Some(_) => expected.records.extend(decoded),
                        }
                    }
                    def.id
                }
                SetPlan::Reserved { id, body } => {
                    out.bytes.extend_from_slice(body);
                    expected.skipped_sets.push(SkippedSet {
                        set_id: *id,
                        offset: start,
                        reason: SkipReason::ReservedSetId,
                    });
                    *id
                }
            };
            let length = (out.bytes.len() - start) as u16;
            out.bytes[id_at..id_at + 2].copy_from_slice(&id.to_be_bytes());
            out.bytes[id_at + 2..id_at + 4].copy_from_slice(&length.to_be_bytes());
        }
        let length = u16::try_from(out.bytes.len()).expect("generated messages stay below 64 KiB");
        out.bytes[2..4].copy_from_slice(&length.to_be_bytes());
        Encoded {
            bytes: out.bytes,
            expected,
            spots: out.spots,
        }
    }

    /// Writes the records of a template set and applies them to `domain`.
    fn template_set(
        &self,
        options: bool,
        items: &[Item],
        domain: &mut HashMap<u16, TemplateDef>,
        out: &mut Writer,
        expected: &mut DecodedMessage,
    ) {
        let pool: Vec<&TemplateDef> = self.pool.iter().filter(|t| t.scope.is_some() == options).collect();
        for item in items {
            match item {
                Item::Define(i) if !pool.is_empty() => define(pool[i.index(pool.len())], domain, out, expected),
                Item::DefineAll => pool.iter().for_each(|t| define(t, domain, out, expected)),
                Item::Define(_) => {}
                // Only templates of the set's kind (or unknown ids) are withdrawn.
                Item::Withdraw(id) if domain.get(id).is_none_or(|t| t.scope.is_some() == options) => {
                    out.spot(SpotKind::TemplateId);
                    out.u16(*id);
                    out.spot(SpotKind::FieldCount);
                    out.u16(0);
                    domain.remove(id);
                    expected.withdrawn.push(*id);
                }
                Item::Withdraw(_) => {}
                Item::WithdrawAll => {
                    let set_id = if options { 3 } else { 2 };
                    out.spot(SpotKind::TemplateId);
                    out.u16(set_id);
                    out.u16(0);
                    domain.retain(|_, t| t.scope.is_some() != options);
                    expected.withdrawn.push(set_id);
                }
            }
        }
    }
}

/// Writes a template record of `t` and learns it.
fn define(t: &TemplateDef, domain: &mut HashMap<u16, TemplateDef>, out: &mut Writer, expected: &mut DecodedMessage) {
    out.spot(SpotKind::TemplateId);
    out.u16(t.id);
    out.spot(SpotKind::FieldCount);
    out.u16(t.fields.len() as u16);
    if let Some(scope) = t.scope {
        out.spot(SpotKind::ScopeCount);
        out.u16(scope);
    }
    for f in &t.fields {
        out.spot(SpotKind::FieldId);
        out.u16(f.id | if f.enterprise.is_some() { 0x8000 } else { 0 });
        out.spot(SpotKind::FieldLength);
        out.u16(f.length);
        if let Some(pen) = f.enterprise {
            out.spot(SpotKind::Enterprise);
            out.u32(pen);
        }
    }
    domain.insert(t.id, t.clone());
    if t.scope.is_some() {
        expected.options_templates.push(t.id);
    } else {
        expected.templates.push(t.id);
    }
}

/// Writes one data record of `t` from `material`; returns its decoding.
fn record(t: &TemplateDef, material: &[u8], out: &mut Writer) -> DecodedRecord {
    let mut m = Material(material.iter());
    let fields = t
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if f.length == VARIABLE {
                out.spot(SpotKind::VarLength);
            }
            DecodedField {
                id: f.id,
                enterprise: f.enterprise,
                name: f.name(),
                scope: t.scope.is_some_and(|s| i < usize::from(s)),
                value: write_value(f, &mut m, &mut out.bytes),
            }
        })
        .collect();
    DecodedRecord {
        template_id: t.id,
        options: t.scope.is_some(),
        fields,
    }
}

/// Message bytes and the spots written so far.
#[derive(Default)]
struct Writer {
    bytes: Vec<u8>,
    spots: Vec<Spot>,
}

impl Writer {
    fn spot(&mut self, kind: SpotKind) {
        self.spots.push(Spot {
            kind,
            at: self.bytes.len(),
        });
    }

    fn u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }
}

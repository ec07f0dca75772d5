//! What the decoder returns: messages, records, fields, skipped sets.

use super::DecodedValue;

/// Why a set was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// A data set whose template this domain has not received (yet).
    UnknownTemplate,
    /// A data set whose template has records of length 0.
    EmptyRecords,
    /// Set ids 0, 1 and 4..=255 are reserved.
    ReservedSetId,
}

/// A set that was not decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkippedSet {
    /// The set id.
    pub set_id: u16,
    /// Offset of the set in the message.
    pub offset: usize,
    /// Why.
    pub reason: SkipReason,
}

/// One decoded message.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedMessage {
    /// Export time, Unix seconds.
    pub export_time: u32,
    /// Sequence number from the header.
    pub sequence_number: u32,
    /// Observation domain.
    pub observation_domain_id: u32,
    /// Ids of the templates defined in this message.
    pub templates: Vec<u16>,
    /// Ids of the options templates defined in this message.
    pub options_templates: Vec<u16>,
    /// Ids of templates withdrawn (2 and 3: all templates / options templates).
    pub withdrawn: Vec<u16>,
    /// Data and options data records, in message order.
    pub records: Vec<DecodedRecord>,
    /// Sets not decoded; their records are lost.
    pub skipped_sets: Vec<SkippedSet>,
}

impl DecodedMessage {
    /// Data records (not options data records) in the message.
    pub fn data_records(&self) -> impl Iterator<Item = &DecodedRecord> {
        self.records.iter().filter(|r| !r.options)
    }
}

/// One data or options data record.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedRecord {
    /// Its template.
    pub template_id: u16,
    /// Whether the template is an options template.
    pub options: bool,
    /// Fields in template order (an element repeated in a template appears
    /// once, with the value of its last occurrence).
    pub fields: Vec<DecodedField>,
}

impl DecodedRecord {
    /// The value of the first field named `name` (IANA name or `ie<N>`).
    pub fn get(&self, name: &str) -> Option<&DecodedValue> {
        self.fields.iter().find(|f| f.name == name).map(|f| &f.value)
    }

    /// The value of field `name` if it is an unsigned integer.
    pub fn unsigned(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(DecodedValue::as_unsigned)
    }
}

/// One field of a record.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedField {
    /// Information element id.
    pub id: u16,
    /// Enterprise number, for enterprise-specific elements.
    pub enterprise: Option<u32>,
    /// IANA name, or `ie<N>` (`ie<PEN>.<N>` for enterprise elements).
    pub name: String,
    /// Whether it is a scope field of an options record.
    pub scope: bool,
    /// The value.
    pub value: DecodedValue,
}

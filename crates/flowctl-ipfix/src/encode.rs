//! Building IPFIX messages within a size limit.
//!
//! Consecutive records of one template share a set; a new set starts when the
//! template changes. Template records go in Set 2, options template records in
//! Set 3, never mixed with each other or with data. No padding is added.
//!
//! Integer values are big-endian and reduced to the field length; a value
//! that does not fit is saturated to the largest value of that length.

use crate::options::{OptionValue, OptionsTemplate};
use crate::template::Template;
use crate::wire::{put_unsigned, write_value};

pub use crate::values::{FieldValue, FieldValues, RecordValues, SyntheticValues};

/// IPFIX version number.
pub const VERSION: u16 = 10;
/// Set id of template sets.
pub const TEMPLATE_SET_ID: u16 = 2;
/// Set id of options template sets.
pub const OPTIONS_TEMPLATE_SET_ID: u16 = 3;
/// Length of a set header.
pub const SET_HEADER_LEN: usize = 4;

/// The item does not fit in the remaining space of the message: finish this
/// message and start a new one. Check templates with [`MessageBuilder::check`]
/// / [`MessageBuilder::check_options`] first: an item that can never fit
/// returns `Full` even from an empty builder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the IPFIX message is full")]
pub struct Full;

/// Why messages cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message size limit is out of range.
    #[error("IPFIX message size limit {0} is out of range: use 64..=65535")]
    BadMaxSize(usize),
    /// A template and one of its records do not fit in one message.
    #[error(
        "template {id} and one record need {bytes} bytes but a {max_size}-byte message has room for {room}: \
         raise the message size or remove fields"
    )]
    TooLarge {
        /// The template id.
        id: u16,
        /// Bytes of a template set with the template and a data set with one record.
        bytes: usize,
        /// The message size limit.
        max_size: usize,
        /// Room for sets in a message: the limit minus the 16-byte header.
        room: usize,
    },
    /// The template id is reserved.
    #[error("template id {0} is reserved: use 256..=65535")]
    BadTemplateId(u16),
    /// An options template without scope fields (RFC 7011 §3.4.2.2).
    #[error("options template {0} has no scope field")]
    NoScope(u16),
    /// A template without fields.
    #[error("template {0} has no fields")]
    NoFields(u16),
}

/// The set currently being filled.
#[derive(Clone, Copy, Debug)]
struct OpenSet {
    id: u16,
    start: usize,
}

/// Builds one IPFIX message, refusing items that would make it exceed its
/// size limit.
#[derive(Clone, Debug)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    max_size: usize,
    observation_domain_id: u32,
    open: Option<OpenSet>,
    data_records: u32,
}

impl MessageBuilder {
    /// Length of the message header.
    pub const HEADER_LEN: usize = 16;
    /// Smallest accepted size limit.
    pub const MIN_SIZE: usize = 64;
    /// Largest accepted size limit (the header's length field is 16 bits).
    pub const MAX_SIZE: usize = 65535;

    /// An empty message of at most `max_size` bytes (64..=65535).
    pub fn new(max_size: usize, observation_domain_id: u32) -> Result<Self, EncodeError> {
        if !(Self::MIN_SIZE..=Self::MAX_SIZE).contains(&max_size) {
            return Err(EncodeError::BadMaxSize(max_size));
        }
        Ok(MessageBuilder {
            buf: Vec::new(),
            max_size,
            observation_domain_id,
            open: None,
            data_records: 0,
        }
        .empty_like())
    }

    /// An empty message with the same size limit and observation domain.
    pub(crate) fn empty_like(&self) -> Self {
        let mut buf = Vec::with_capacity(self.max_size);
        buf.resize(Self::HEADER_LEN, 0);
        MessageBuilder {
            buf,
            max_size: self.max_size,
            observation_domain_id: self.observation_domain_id,
            open: None,
            data_records: 0,
        }
    }

    /// The size limit.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// The observation domain of the message.
    pub fn observation_domain_id(&self) -> u32 {
        self.observation_domain_id
    }

    /// Room for sets in an empty message: the size limit minus the header.
    pub fn room(&self) -> usize {
        self.max_size - Self::HEADER_LEN
    }

    /// Checks that `t` is valid and that its template record and one data
    /// record, each in its own set, fit together in an empty message of this
    /// size. Then an exporter that starts each message with the template
    /// always makes progress; without this check a `Full` from an empty
    /// message could repeat forever.
    pub fn check(&self, t: &Template) -> Result<(), EncodeError> {
        if t.fields.is_empty() {
            return Err(EncodeError::NoFields(t.id));
        }
        self.check_sizes(t.id, t.template_record_length(), t.record_length())
    }

    /// Like [`MessageBuilder::check`] for an options template, which must
    /// also have a scope field.
    pub fn check_options(&self, t: &OptionsTemplate) -> Result<(), EncodeError> {
        if t.scope.is_empty() {
            return Err(EncodeError::NoScope(t.id));
        }
        self.check_sizes(t.id, t.template_record_length(), t.record_length())
    }

    fn check_sizes(&self, id: u16, template_bytes: usize, record_bytes: usize) -> Result<(), EncodeError> {
        if id < 256 {
            return Err(EncodeError::BadTemplateId(id));
        }
        let bytes = SET_HEADER_LEN + template_bytes + SET_HEADER_LEN + record_bytes;
        let room = self.room();
        if bytes > room {
            return Err(EncodeError::TooLarge {
                id,
                bytes,
                max_size: self.max_size,
                room,
            });
        }
        Ok(())
    }

    /// Adds a template record (in a template set).
    pub fn push_template(&mut self, t: &Template) -> Result<(), Full> {
        refuse_invalid(t.id, t.fields.len())?;
        let field_count = u16::try_from(t.fields.len()).map_err(|_| Full)?;
        self.reserve(TEMPLATE_SET_ID, t.template_record_length())?;
        self.put_u16(t.id);
        self.put_u16(field_count);
        for f in &t.fields {
            self.put_u16(f.id & 0x7fff);
            self.put_u16(f.length);
        }
        Ok(())
    }

    /// Adds the withdrawal of template `id` (a template record with no
    /// fields, RFC 7011 §8.1), in a template set, or an options template set
    /// for an options template.
    pub fn push_withdrawal(&mut self, id: u16, options: bool) -> Result<(), Full> {
        if id < 256 {
            return Err(Full);
        }
        let set = if options {
            OPTIONS_TEMPLATE_SET_ID
        } else {
            TEMPLATE_SET_ID
        };
        self.reserve(set, 4)?;
        self.put_u16(id);
        self.put_u16(0);
        Ok(())
    }

    /// Adds an options template record (in an options template set).
    pub fn push_options_template(&mut self, t: &OptionsTemplate) -> Result<(), Full> {
        refuse_invalid(t.id, t.scope.len())?;
        let field_count = u16::try_from(t.value_count()).map_err(|_| Full)?;
        let scope_count = u16::try_from(t.scope.len()).map_err(|_| Full)?;
        self.reserve(OPTIONS_TEMPLATE_SET_ID, t.template_record_length())?;
        self.put_u16(t.id);
        self.put_u16(field_count);
        self.put_u16(scope_count);
        for (ie, len) in t.all_fields() {
            self.put_u16(ie & 0x7fff);
            self.put_u16(len);
        }
        Ok(())
    }

    /// Adds a data record of template `t` (in a data set with the template's id).
    ///
    /// The record's bytes are reserved at once and each field is written in
    /// its slot: no allocation once the buffer has its capacity, and no
    /// dynamic dispatch for `values` of a known type.
    pub fn push_record<V: FieldValues + ?Sized>(&mut self, t: &Template, values: &V) -> Result<(), Full> {
        refuse_invalid(t.id, t.fields.len())?;
        let length = t.record_length();
        self.reserve(t.id, length)?;
        let start = self.buf.len();
        self.buf.resize(start + length, 0);
        let mut rest = self.buf.get_mut(start..).unwrap_or_default();
        for f in &t.fields {
            let Some((slot, tail)) = std::mem::take(&mut rest).split_at_mut_checked(usize::from(f.length)) else {
                break; // unreachable: the record length is the sum of the field lengths
            };
            write_value(slot, f.kind, values.value(f));
            rest = tail;
        }
        self.data_records = self.data_records.wrapping_add(1);
        Ok(())
    }

    /// Adds an options data record: `values` are the scope values then the
    /// field values, each encoded as an unsigned integer of its field length.
    /// Missing values are 0; extra values are ignored.
    pub fn push_options_record(&mut self, t: &OptionsTemplate, values: &[u64]) -> Result<(), Full> {
        refuse_invalid(t.id, t.scope.len())?;
        self.reserve(t.id, t.record_length())?;
        for (i, (_, len)) in t.all_fields().enumerate() {
            put_unsigned(&mut self.buf, values.get(i).copied().unwrap_or(0), len);
        }
        self.data_records = self.data_records.wrapping_add(1);
        Ok(())
    }

    /// Adds an options data record of any values (addresses, text): scope
    /// values then field values, each written per [`OptionValue::write`].
    /// Missing values are zeros; extra values are ignored.
    pub fn push_options_values(&mut self, t: &OptionsTemplate, values: &[OptionValue]) -> Result<(), Full> {
        refuse_invalid(t.id, t.scope.len())?;
        self.reserve(t.id, t.record_length())?;
        for (i, (_, len)) in t.all_fields().enumerate() {
            let start = self.buf.len();
            self.buf.resize(start + usize::from(len), 0);
            if let (Some(v), Some(slot)) = (values.get(i), self.buf.get_mut(start..)) {
                v.write(slot);
            }
        }
        self.data_records = self.data_records.wrapping_add(1);
        Ok(())
    }

    /// Data records and options data records in the message: the amount the
    /// sequence number advances by (RFC 7011 §3.1).
    pub fn data_record_count(&self) -> u32 {
        self.data_records
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == Self::HEADER_LEN
    }

    /// Current length of the message in bytes, header included.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The finished message: version 10, length, `export_time` (Unix
    /// seconds), `sequence_number` (data records sent before this message in
    /// this domain, modulo 2^32) and the observation domain.
    pub fn finish(mut self, export_time: u32, sequence_number: u32) -> Vec<u8> {
        self.close_set();
        let length = u16::try_from(self.buf.len()).unwrap_or(u16::MAX);
        let mut header = Vec::with_capacity(Self::HEADER_LEN);
        header.extend_from_slice(&VERSION.to_be_bytes());
        header.extend_from_slice(&length.to_be_bytes());
        header.extend_from_slice(&export_time.to_be_bytes());
        header.extend_from_slice(&sequence_number.to_be_bytes());
        header.extend_from_slice(&self.observation_domain_id.to_be_bytes());
        if let Some(slot) = self.buf.get_mut(..Self::HEADER_LEN) {
            slot.copy_from_slice(&header);
        }
        self.buf
    }

    /// Makes room for `bytes` of records in a set with `set_id`, opening a new
    /// set (and closing the open one) if the open set has another id.
    fn reserve(&mut self, set_id: u16, bytes: usize) -> Result<(), Full> {
        let same_set = self.open.is_some_and(|s| s.id == set_id);
        let needed = bytes + if same_set { 0 } else { SET_HEADER_LEN };
        if self.buf.len() + needed > self.max_size {
            return Err(Full);
        }
        if !same_set {
            self.close_set();
            self.open = Some(OpenSet {
                id: set_id,
                start: self.buf.len(),
            });
            self.put_u16(set_id);
            self.put_u16(0);
        }
        Ok(())
    }

    /// Writes the length of the open set into its header.
    fn close_set(&mut self) {
        if let Some(set) = self.open.take() {
            let length = u16::try_from(self.buf.len() - set.start).unwrap_or(u16::MAX);
            if let Some(slot) = self.buf.get_mut(set.start + 2..set.start + 4) {
                slot.copy_from_slice(&length.to_be_bytes());
            }
        }
    }

    fn put_u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
}

/// Items of an invalid template are never added: a reserved id would be
/// misread as a template set, no fields (or, for an options template, no
/// scope) as a withdrawal. [`MessageBuilder::check`] and
/// [`MessageBuilder::check_options`] report these.
fn refuse_invalid(id: u16, required_fields: usize) -> Result<(), Full> {
    if id < 256 || required_fields == 0 {
        Err(Full)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::sampling_template;
    use crate::template::Strictness;

    fn template(id: u16, names: &[&str]) -> Template {
        Template::new(id, names, Strictness::Agent).unwrap()
    }

    fn set_headers(msg: &[u8]) -> Vec<(u16, usize)> {
        let mut sets = Vec::new();
        let mut at = MessageBuilder::HEADER_LEN;
        while at + 4 <= msg.len() {
            let id = u16::from_be_bytes([msg[at], msg[at + 1]]);
            let len = usize::from(u16::from_be_bytes([msg[at + 2], msg[at + 3]]));
            sets.push((id, len));
            at += len.max(4);
        }
        assert_eq!(at, msg.len());
        sets
    }

    #[test]
    fn a_withdrawal_decodes_as_one() {
        let t = template(300, &["octetDeltaCount"]);
        let mut m = MessageBuilder::new(512, 9).unwrap();
        m.push_template(&t).unwrap();
        let mut decoder = crate::Decoder::new();
        decoder.decode(&m.finish(1, 0)).unwrap();
        let mut w = MessageBuilder::new(512, 9).unwrap();
        w.push_withdrawal(300, false).unwrap();
        assert!(w.push_withdrawal(2, false).is_err(), "ids below 256 are set ids");
        let msg = w.finish(2, 0);
        assert_eq!(set_headers(&msg), vec![(TEMPLATE_SET_ID, 8)]);
        assert_eq!(decoder.decode(&msg).unwrap().withdrawn, vec![300]);
    }

    #[test]
    fn max_size_is_bounded() {
        for bad in [0, 63, 65536] {
            assert_eq!(MessageBuilder::new(bad, 0).unwrap_err(), EncodeError::BadMaxSize(bad));
        }
        assert!(MessageBuilder::new(64, 0).is_ok());
        assert!(MessageBuilder::new(65535, 0).is_ok());
    }

    #[test]
    fn records_group_into_sets_by_template() {
        let a = template(300, &["octetDeltaCount"]);
        let b = template(301, &["protocolIdentifier", "vlanId"]);
        let opts = sampling_template(302);
        let mut m = MessageBuilder::new(1500, 9).unwrap();
        m.push_template(&a).unwrap();
        m.push_template(&b).unwrap();
        m.push_options_template(&opts).unwrap();
        let zero = SyntheticValues::default();
        for t in [&a, &a, &b, &a] {
            m.push_record(t, &zero).unwrap();
        }
        m.push_options_record(&opts, &[1, 2, 3]).unwrap();
        assert_eq!(m.data_record_count(), 5);
        let msg = m.finish(1, 2);
        let expected = vec![
            (
                TEMPLATE_SET_ID,
                4 + a.template_record_length() + b.template_record_length(),
            ),
            (OPTIONS_TEMPLATE_SET_ID, 4 + opts.template_record_length()),
            (a.id, 4 + 2 * a.record_length()),
            (b.id, 4 + b.record_length()),
            (a.id, 4 + a.record_length()),
            (opts.id, 4 + opts.record_length()),
        ];
        assert_eq!(set_headers(&msg), expected);
    }

    #[test]
    fn header_carries_what_the_caller_gave() {
        let a = template(300, &["octetDeltaCount"]);
        let mut m = MessageBuilder::new(100, 0xdead_beef).unwrap();
        assert!(m.is_empty());
        m.push_record(&a, &SyntheticValues::default()).unwrap();
        assert!(!m.is_empty());
        let len = m.len();
        let msg = m.finish(0x0102_0304, 0x0506_0708);
        assert_eq!(msg.len(), len);
        assert_eq!(msg[..4], [0, 10, 0, len as u8]);
        assert_eq!(msg[4..16], [1, 2, 3, 4, 5, 6, 7, 8, 0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn items_that_can_never_fit_are_reported_by_check() {
        let names: Vec<&str> = crate::fields::all()
            .iter()
            .filter(|f| f.is_available() && f.kind != crate::fields::FieldKind::Ipv6Address)
            .map(|f| f.name)
            .collect();
        let big = template(300, &names);
        let m = MessageBuilder::new(64, 0).unwrap();
        assert!(matches!(m.check(&big), Err(EncodeError::TooLarge { id: 300, .. })));
        let mut empty = MessageBuilder::new(64, 0).unwrap();
        assert_eq!(empty.push_template(&big), Err(Full));
        assert!(empty.is_empty(), "a refused item leaves the message unchanged");
        let roomy = MessageBuilder::new(big.record_length() + big.template_record_length() + 24, 0).unwrap();
        assert_eq!(roomy.check(&big), Ok(()));
        let bad_id = Template {
            id: 5,
            fields: big.fields.clone(),
        };
        assert_eq!(roomy.check(&bad_id), Err(EncodeError::BadTemplateId(5)));
        let mut no_scope = sampling_template(400);
        no_scope.scope.clear();
        assert_eq!(roomy.check_options(&no_scope), Err(EncodeError::NoScope(400)));
        let no_fields = Template {
            id: 300,
            fields: vec![],
        };
        assert_eq!(roomy.check(&no_fields), Err(EncodeError::NoFields(300)));
        let mut m = roomy.clone();
        assert_eq!(m.push_template(&bad_id), Err(Full));
        assert_eq!(m.push_template(&no_fields), Err(Full));
        assert_eq!(m.push_record(&no_fields, &SyntheticValues::default()), Err(Full));
        assert_eq!(m.push_options_template(&no_scope), Err(Full));
        assert_eq!(m.push_options_record(&no_scope, &[]), Err(Full));
        assert!(m.is_empty());
    }
}

//! Building one NetFlow v9 export packet within a size limit (RFC 3954 §5).
//!
//! A 20-byte header (version 9, record count, sysUptime, unix_secs, packet
//! sequence number, Source ID) then FlowSets: templates in FlowSet 0,
//! options templates in FlowSet 1 (one per FlowSet), data in FlowSets
//! named by their template id. Consecutive records of one template share a
//! FlowSet. Each FlowSet is padded with zeros to a 4-byte boundary, as the
//! RFC asks, unless the padding would be as long as a record of the set
//! (a collector would take it for one): only sets of records shorter than 4
//! bytes can go unpadded.

use super::fields::{Encoding, V9Field};
use super::options::V9OptionsTemplate;
use super::template::V9Template;
use super::uptime::Uptime;
use crate::encode::{EncodeError, FieldValue, FieldValues, Full};
use crate::options::OptionValue;
use crate::wire::{write_unsigned, write_value};

/// NetFlow version number.
pub const VERSION: u16 = 9;
/// FlowSet id of template FlowSets.
pub const TEMPLATE_FLOWSET_ID: u16 = 0;
/// FlowSet id of options template FlowSets.
pub const OPTIONS_TEMPLATE_FLOWSET_ID: u16 = 1;
/// Length of a FlowSet header.
const FLOWSET_HEADER_LEN: usize = 4;
const NANOS_PER_MILLI: u64 = 1_000_000;

/// The FlowSet being filled.
#[derive(Clone, Copy, Debug)]
struct OpenSet {
    id: u16,
    start: usize,
    /// The shortest item of the set: padding must be shorter.
    unit: usize,
}

/// Builds one v9 export packet, refusing items that would make it exceed
/// its size limit.
#[derive(Clone, Debug)]
pub struct V9MessageBuilder {
    buf: Vec<u8>,
    max_size: usize,
    source_id: u32,
    open: Option<OpenSet>,
    /// Template, options template, data and options data records.
    records: u32,
    data_records: u32,
    /// sysUptime fields: their offset and Unix milliseconds, written at
    /// [`V9MessageBuilder::finish`] once the boot time is known.
    times: Vec<(usize, u64)>,
}

/// Zero bytes that bring a set of `len` bytes (header included) to a
/// 4-byte boundary, or none if that is not shorter than `unit`.
fn padding(len: usize, unit: usize) -> usize {
    let pad = (4 - len % 4) % 4;
    if pad < unit {
        pad
    } else {
        0
    }
}

impl V9MessageBuilder {
    /// Length of the packet header.
    pub const HEADER_LEN: usize = 20;
    /// Smallest accepted size limit.
    pub const MIN_SIZE: usize = 64;
    /// Largest accepted size limit (a UDP datagram's payload is smaller still).
    pub const MAX_SIZE: usize = 65535;

    /// An empty packet of at most `max_size` bytes (64..=65535) for `source_id`.
    pub fn new(max_size: usize, source_id: u32) -> Result<Self, EncodeError> {
        if !(Self::MIN_SIZE..=Self::MAX_SIZE).contains(&max_size) {
            return Err(EncodeError::BadMaxSize(max_size));
        }
        let empty = V9MessageBuilder {
            buf: Vec::new(),
            max_size,
            source_id,
            open: None,
            records: 0,
            data_records: 0,
            times: Vec::new(),
        };
        Ok(empty.empty_like())
    }

    /// An empty packet with the same size limit and Source ID.
    pub fn empty_like(&self) -> Self {
        let mut buf = Vec::with_capacity(self.max_size);
        buf.resize(Self::HEADER_LEN, 0);
        V9MessageBuilder {
            buf,
            max_size: self.max_size,
            source_id: self.source_id,
            open: None,
            records: 0,
            data_records: 0,
            times: Vec::new(),
        }
    }

    /// The size limit.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Checks that `t` is valid and that its template record and one data
    /// record, each in its FlowSet (padded), fit together in an empty packet.
    pub fn check(&self, t: &V9Template) -> Result<(), EncodeError> {
        if t.fields.is_empty() {
            return Err(EncodeError::NoFields(t.id));
        }
        self.check_sizes(t.id, t.template_record_length(), t.record_length())
    }

    /// Like [`V9MessageBuilder::check`] for an options template.
    pub fn check_options(&self, t: &V9OptionsTemplate) -> Result<(), EncodeError> {
        if t.scope.is_empty() {
            return Err(EncodeError::NoScope(t.id));
        }
        self.check_sizes(t.id, t.template_record_length(), t.record_length())
    }

    fn check_sizes(&self, id: u16, template_bytes: usize, record_bytes: usize) -> Result<(), EncodeError> {
        if id < 256 {
            return Err(EncodeError::BadTemplateId(id));
        }
        let set = |bytes| FLOWSET_HEADER_LEN + bytes + padding(FLOWSET_HEADER_LEN + bytes, bytes);
        let bytes = set(template_bytes) + set(record_bytes);
        let room = self.max_size - Self::HEADER_LEN;
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

    /// Adds a template record (in a template FlowSet).
    pub fn push_template(&mut self, t: &V9Template) -> Result<(), Full> {
        refuse_invalid(t.id, t.fields.len())?;
        let count = u16::try_from(t.fields.len()).map_err(|_| Full)?;
        self.reserve(TEMPLATE_FLOWSET_ID, t.template_record_length(), 4)?;
        self.put_u16(t.id);
        self.put_u16(count);
        for f in &t.fields {
            self.put_u16(f.field_type);
            self.put_u16(f.length);
        }
        self.records += 1;
        Ok(())
    }

    /// Adds an options template record, in an options template FlowSet of
    /// its own.
    pub fn push_options_template(&mut self, t: &V9OptionsTemplate) -> Result<(), Full> {
        refuse_invalid(t.id, t.scope.len())?;
        let scope_len = u16::try_from(4 * t.scope.len()).map_err(|_| Full)?;
        let fields_len = u16::try_from(4 * t.fields.len()).map_err(|_| Full)?;
        self.reserve(OPTIONS_TEMPLATE_FLOWSET_ID, t.template_record_length(), 4)?;
        self.put_u16(t.id);
        self.put_u16(scope_len);
        self.put_u16(fields_len);
        for (field_type, len) in t.all_fields() {
            self.put_u16(field_type);
            self.put_u16(len);
        }
        // The next options template opens a FlowSet of its own.
        self.close_set();
        self.records += 1;
        Ok(())
    }

    /// Adds a data record of template `t` (in a data FlowSet with its id).
    pub fn push_record<V: FieldValues + ?Sized>(&mut self, t: &V9Template, values: &V) -> Result<(), Full> {
        refuse_invalid(t.id, t.fields.len())?;
        let length = t.record_length();
        self.reserve(t.id, length, length)?;
        let start = self.buf.len();
        self.buf.resize(start + length, 0);
        let mut at = start;
        for f in &t.fields {
            let len = usize::from(f.length);
            let value = values.value(f.def);
            if let Some(slot) = self.buf.get_mut(at..at + len) {
                if let Some(ms) = write_field(slot, f, value) {
                    self.times.push((at, ms));
                }
            }
            at += len;
        }
        self.records += 1;
        self.data_records += 1;
        Ok(())
    }

    /// Adds an options data record: `values` are the IPFIX options
    /// template's record values (scope values, then fields), of which `t`
    /// takes its own; missing ones are zeros.
    pub fn push_options_values(&mut self, t: &V9OptionsTemplate, values: &[OptionValue]) -> Result<(), Full> {
        refuse_invalid(t.id, t.scope.len())?;
        let length = t.record_length();
        self.reserve(t.id, length, length)?;
        for ((_, len), value) in t.all_fields().zip(t.pick(values)) {
            let start = self.buf.len();
            self.buf.resize(start + usize::from(len), 0);
            if let (Some(v), Some(slot)) = (value, self.buf.get_mut(start..)) {
                v.write(slot);
            }
        }
        self.records += 1;
        self.data_records += 1;
        Ok(())
    }

    /// Data and options data records in the packet.
    pub fn data_record_count(&self) -> u32 {
        self.data_records
    }

    /// Every record in the packet, templates included: the header's Count.
    pub fn record_count(&self) -> u32 {
        self.records
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == Self::HEADER_LEN
    }

    /// Current length in bytes, header included (the open FlowSet unpadded).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// The finished packet: version 9, the record count, sysUptime (from
    /// `uptime`, anchored for `export_secs` and the records' times),
    /// `export_secs` as unix_secs, `sequence` (packets sent before this one)
    /// and the Source ID. The time fields are written now, relative to the
    /// boot time.
    pub fn finish(mut self, export_secs: u32, sequence: u32, uptime: &mut Uptime) -> Vec<u8> {
        self.close_set();
        let earliest = self.times.iter().map(|&(_, ms)| ms).min();
        let sys_uptime = uptime.anchor(export_secs, earliest);
        for &(at, ms) in &self.times {
            if let Some(slot) = self.buf.get_mut(at..at + 4) {
                slot.copy_from_slice(&uptime.relative(ms).to_be_bytes());
            }
        }
        let count = u16::try_from(self.records).unwrap_or(u16::MAX);
        let mut header = [0u8; Self::HEADER_LEN];
        let parts: [&[u8]; 6] = [
            &VERSION.to_be_bytes(),
            &count.to_be_bytes(),
            &sys_uptime.to_be_bytes(),
            &export_secs.to_be_bytes(),
            &sequence.to_be_bytes(),
            &self.source_id.to_be_bytes(),
        ];
        let mut at = 0;
        for p in parts {
            if let Some(slot) = header.get_mut(at..at + p.len()) {
                slot.copy_from_slice(p);
            }
            at += p.len();
        }
        if let Some(slot) = self.buf.get_mut(..Self::HEADER_LEN) {
            slot.copy_from_slice(&header);
        }
        self.buf
    }

    /// Makes room for `bytes` in a FlowSet `set_id` whose items are at
    /// least `unit` bytes, opening a new one (and closing the open one) if
    /// the open FlowSet has another id. The padding the FlowSet will need
    /// when it closes must fit too.
    fn reserve(&mut self, set_id: u16, bytes: usize, unit: usize) -> Result<(), Full> {
        let same_set = self.open.is_some_and(|s| s.id == set_id) && set_id != OPTIONS_TEMPLATE_FLOWSET_ID;
        let (start, end) = if same_set {
            let start = self.open.map_or(0, |s| s.start);
            (start, self.buf.len() + bytes)
        } else {
            let closed = self.buf.len() + self.open.map_or(0, |s| padding(self.buf.len() - s.start, s.unit));
            (closed, closed + FLOWSET_HEADER_LEN + bytes)
        };
        if end + padding(end - start, unit) > self.max_size {
            return Err(Full);
        }
        if !same_set {
            self.close_set();
            self.open = Some(OpenSet {
                id: set_id,
                start: self.buf.len(),
                unit,
            });
            self.put_u16(set_id);
            self.put_u16(0);
        }
        Ok(())
    }

    /// Pads the open FlowSet and writes its length into its header.
    fn close_set(&mut self) {
        if let Some(set) = self.open.take() {
            let pad = padding(self.buf.len() - set.start, set.unit);
            self.buf.resize(self.buf.len() + pad, 0);
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

/// Writes `value` into the field's bytes; for a sysUptime field, returns
/// the Unix milliseconds to write once the boot time is known.
fn write_field(slot: &mut [u8], f: &V9Field, value: FieldValue) -> Option<u64> {
    match f.encoding {
        Encoding::Same(kind) => write_value(slot, kind, value),
        Encoding::LowByte => match value {
            FieldValue::Unsigned(v) => write_unsigned(slot, v & 0xff),
            _ => write_unsigned(slot, 0),
        },
        Encoding::SysUptime => {
            // Synthetic values give milliseconds, as for flowStartMilliseconds.
            // No time (0, or an address) is written as sysUptime 0 and does
            // not move the boot time.
            let ms = match value {
                FieldValue::Nanoseconds(ns) => ns / NANOS_PER_MILLI,
                FieldValue::Unsigned(ms) => ms,
                FieldValue::Address(_) => 0,
            };
            return (ms > 0).then_some(ms);
        }
    }
    None
}

/// Items of an invalid template are never added (see [`V9MessageBuilder::check`]).
fn refuse_invalid(id: u16, required_fields: usize) -> Result<(), Full> {
    if id < 256 || required_fields == 0 {
        Err(Full)
    } else {
        Ok(())
    }
}

//! A never-panicking IPFIX decoder, for `flowctl collect` and tests.
//!
//! The message header, set headers and template records are checked here;
//! records are then parsed by ipfixrw (an independent implementation) one set
//! at a time, with the IANA registry for names and types. Templates are kept
//! per observation domain. A data set whose template is unknown is skipped
//! and reported in [`DecodedMessage::skipped_sets`], not an error.

mod bridge;
mod domain;
mod error;
mod framing;
mod message;
mod stream;
mod value;

use std::collections::HashMap;

use ipfixrw::parser::{DataRecord, Message, Records};

use domain::{Domain, TemplateInfo};
use framing::{RawSet, TemplateItem, HEADER_LEN};

pub use error::DecodeError;

pub use message::{DecodedField, DecodedMessage, DecodedRecord, SkipReason, SkippedSet};
pub use stream::split_stream;
pub use value::DecodedValue;

/// Bounds on what one [`Decoder`] remembers, so that an exporter (or
/// anyone spoofing one) cannot make it grow without limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Observation domains with templates.
    pub max_domains: usize,
    /// Fields of all templates of all domains together.
    pub max_template_fields: usize,
}

impl Default for DecoderLimits {
    /// 32 domains and 4096 template fields: far above what an exporter
    /// uses (flowctl itself: one domain, under 100 fields), about 1 MiB.
    fn default() -> Self {
        Self {
            max_domains: 32,
            max_template_fields: 4096,
        }
    }
}

/// Decodes messages, remembering templates per observation domain, within
/// [`DecoderLimits`].
#[derive(Debug, Default)]
pub struct Decoder {
    domains: HashMap<u32, Domain>,
    limits: DecoderLimits,
    /// Fields of every template remembered.
    template_fields: usize,
}

impl Decoder {
    /// A decoder that knows no templates, with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that knows no templates, with `limits`.
    pub fn with_limits(limits: DecoderLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Fields of every template remembered, in all domains.
    pub fn template_fields(&self) -> usize {
        self.template_fields
    }

    /// Observation domains with at least one template.
    pub fn domains(&self) -> usize {
        self.domains.len()
    }

    /// Decodes one whole message. Templates it defines are remembered for
    /// later messages of the same observation domain, even if a later set
    /// of this message is malformed. A template past the limits is refused
    /// with an error (the ones before it in the message are kept).
    pub fn decode(&mut self, msg: &[u8]) -> Result<DecodedMessage, DecodeError> {
        let header = framing::header(msg)?;
        let sets = framing::sets(msg)?;
        let header_bytes = msg.get(..HEADER_LEN).unwrap_or_default();
        let domain_id = header.observation_domain_id;
        let mut out = DecodedMessage {
            export_time: header.export_time,
            sequence_number: header.sequence_number,
            observation_domain_id: domain_id,
            templates: Vec::new(),
            options_templates: Vec::new(),
            withdrawn: Vec::new(),
            records: Vec::new(),
            skipped_sets: Vec::new(),
        };
        // A domain is kept only while it has templates: data for unknown
        // domains leaves nothing behind.
        let mut domain = self.domains.remove(&domain_id).unwrap_or_default();
        let before = domain.field_count();
        let result = sets.iter().try_for_each(|set| match set.id {
            2 | 3 => {
                if domain.known.is_empty() && self.domains.len() >= self.limits.max_domains {
                    return Err(DecodeError::TooManyDomains {
                        domain: domain_id,
                        limit: self.limits.max_domains,
                    });
                }
                let room = (self.limits.max_template_fields + before).saturating_sub(self.template_fields);
                template_set(&mut domain, header_bytes, set, &mut out, room)
            }
            256.. => data_set(&mut domain, header_bytes, set, &mut out),
            _ => {
                out.skipped_sets.push(SkippedSet {
                    set_id: set.id,
                    offset: set.offset,
                    reason: SkipReason::ReservedSetId,
                });
                Ok(())
            }
        });
        self.template_fields = self.template_fields - before + domain.field_count();
        if !domain.known.is_empty() {
            self.domains.insert(domain_id, domain);
        }
        result.map(|()| out).map_err(|e| match e {
            DecodeError::TooManyTemplateFields {
                template_id, domain, ..
            } => DecodeError::TooManyTemplateFields {
                template_id,
                domain,
                limit: self.limits.max_template_fields,
            },
            other => other,
        })
    }
}

/// Applies a template or options template set to `domain`, in record order.
fn template_set(
    domain: &mut Domain,
    header: &[u8],
    set: &RawSet<'_>,
    out: &mut DecodedMessage,
    room: usize,
) -> Result<(), DecodeError> {
    let options = set.id == 3;
    let body = set.body();
    let mut pending: Vec<u8> = Vec::new();
    let mut pending_items: Vec<(u16, u16)> = Vec::new();
    for item in framing::template_items(set, options)? {
        match item {
            TemplateItem::Define { id, scope_count, raw } => {
                pending.extend_from_slice(body.get(raw).unwrap_or_default());
                pending_items.push((id, scope_count));
            }
            TemplateItem::Withdraw(id) => {
                define(domain, header, set, &mut pending, &mut pending_items, out, room)?;
                domain.withdraw(id);
                out.withdrawn.push(id);
            }
            TemplateItem::WithdrawAll => {
                define(domain, header, set, &mut pending, &mut pending_items, out, room)?;
                domain.withdraw_all(options);
                out.withdrawn.push(set.id);
            }
        }
    }
    define(domain, header, set, &mut pending, &mut pending_items, out, room)
}

/// Lets ipfixrw parse the pending template records, then learns them while
/// the domain's templates stay within `room` fields; the first template
/// past it is forgotten and refused.
fn define(
    domain: &mut Domain,
    header: &[u8],
    set: &RawSet<'_>,
    pending: &mut Vec<u8>,
    items: &mut Vec<(u16, u16)>,
    out: &mut DecodedMessage,
    room: usize,
) -> Result<(), DecodeError> {
    if items.is_empty() {
        return Ok(());
    }
    let options = set.id == 3;
    bridge::parse_set(header, set.id, pending, set.offset, &mut domain.store)?;
    for (id, scope_count) in items.drain(..) {
        domain.learn(id, options, scope_count);
        if domain.field_count() > room {
            domain.withdraw(id);
            // ipfixrw stored the rest of the set too: forget what is unlearnt.
            domain.forget_unknown();
            pending.clear();
            return Err(DecodeError::TooManyTemplateFields {
                template_id: id,
                domain: out.observation_domain_id,
                limit: room,
            });
        }
        if options {
            out.options_templates.push(id);
        } else {
            out.templates.push(id);
        }
    }
    pending.clear();
    Ok(())
}

/// Decodes a data set, or skips it if its template is unknown or unusable.
fn data_set(domain: &mut Domain, header: &[u8], set: &RawSet<'_>, out: &mut DecodedMessage) -> Result<(), DecodeError> {
    let body = set.body();
    if body.is_empty() {
        return Ok(());
    }
    let skip = |reason| SkippedSet {
        set_id: set.id,
        offset: set.offset,
        reason,
    };
    let Some(info) = domain.known.get(&set.id) else {
        out.skipped_sets.push(skip(SkipReason::UnknownTemplate));
        return Ok(());
    };
    if info.min_record_len == 0 {
        out.skipped_sets.push(skip(SkipReason::EmptyRecords));
        return Ok(());
    }
    let info = info.clone();
    let message = bridge::parse_set(header, set.id, body, set.offset, &mut domain.store)?;
    out.records
        .extend(data_records(message).map(|r| decoded_record(set.id, &info, r)));
    Ok(())
}

/// The data records of a parsed message, by value.
fn data_records(message: Message) -> impl Iterator<Item = DataRecord> {
    message.sets.into_iter().flat_map(|set| match set.records {
        Records::Data { data, .. } => data,
        _ => Vec::new(),
    })
}

/// Orders ipfixrw's record values by the template and types them.
fn decoded_record(template_id: u16, info: &TemplateInfo, mut record: DataRecord) -> DecodedRecord {
    let fields = info
        .fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let value = record.values.remove(&f.key)?;
            Some(DecodedField {
                id: f.id,
                enterprise: f.enterprise,
                name: f.name.clone(),
                scope: info.options && i < usize::from(info.scope_count),
                value: DecodedValue::from_ipfixrw(value, f.enterprise.is_none().then_some(f.id), f.ty),
            })
        })
        .collect();
    DecodedRecord {
        template_id,
        options: info.options,
        fields,
    }
}

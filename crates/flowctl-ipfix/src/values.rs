//! Where record values come from: a [`FlowRecord`] for the agent, a map of
//! values for synthetic export.

use std::collections::HashMap;

use flowctl_model::FlowRecord;

use crate::fields::{ContextField, FieldDef, Source};

/// A value before encoding; [`crate::encode::MessageBuilder`] encodes it per
/// the field's [`FieldKind`](crate::fields::FieldKind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldValue {
    /// An integer. Saturated to the field length when encoded. In a
    /// time field it is in the field's own unit (seconds, milliseconds, or
    /// Unix nanoseconds for `dateTimeNanoseconds`); in an address field it is
    /// the address as a big-endian integer.
    Unsigned(u64),
    /// An address in the 16-byte key form: IPv4 is IPv4-mapped, and IPv4
    /// fields take the last 4 bytes. In an integer field, the last 8 bytes as a
    /// big-endian integer; in a time field, 0.
    Address([u8; 16]),
    /// Unix nanoseconds. Encoded per field kind: seconds as u32, milliseconds
    /// as u64, NTP for nanoseconds; in an integer field, the nanoseconds; in an
    /// address field, zeros.
    Nanoseconds(u64),
}

/// Supplies the value of each field of a record.
pub trait FieldValues {
    /// The value of `field`.
    fn value(&self, field: &FieldDef) -> FieldValue;
}

/// The values of one flow record, for the agent. Unavailable fields are 0.
#[derive(Clone, Copy, Debug)]
pub struct RecordValues<'a> {
    /// The flow record.
    pub record: &'a FlowRecord,
    /// The observation domain the record is exported in.
    pub observation_domain_id: u32,
    /// The exporter's address, for `exporterIPv4Address`/`exporterIPv6Address`.
    pub exporter_address: Option<std::net::IpAddr>,
}

impl FieldValues for RecordValues<'_> {
    #[inline]
    fn value(&self, field: &FieldDef) -> FieldValue {
        match field.source {
            Source::Record(f) => f.value(self.record),
            Source::Context(ContextField::ObservationDomainId) => {
                FieldValue::Unsigned(u64::from(self.observation_domain_id))
            }
            Source::Context(ContextField::ExporterIpv4) => match self.exporter_address {
                Some(std::net::IpAddr::V4(a)) => FieldValue::Address(a.to_ipv6_mapped().octets()),
                _ => FieldValue::Unsigned(0),
            },
            Source::Context(ContextField::ExporterIpv6) => match self.exporter_address {
                Some(std::net::IpAddr::V6(a)) => FieldValue::Address(a.octets()),
                _ => FieldValue::Unsigned(0),
            },
            Source::Unavailable(_) => FieldValue::Unsigned(0),
        }
    }
}

/// Values given by information element id, for synthetic export from a
/// flows file. Missing fields are 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyntheticValues(pub HashMap<u16, FieldValue>);

impl FieldValues for SyntheticValues {
    fn value(&self, field: &FieldDef) -> FieldValue {
        self.0.get(&field.id).copied().unwrap_or(FieldValue::Unsigned(0))
    }
}

//! Where record values come from: a [`FlowRecord`] for the agent, a map of
//! values for synthetic export.

use std::collections::HashMap;

use flowctl_aging::FlowRecord;

use crate::fields::{ContextField, FieldDef, RecordField, Source};

/// ICMP over IPv4.
const PROTO_ICMP: u8 = 1;
/// ICMPv6.
const PROTO_ICMPV6: u8 = 58;
const NANOS_PER_MILLI: u64 = 1_000_000;

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
}

impl FieldValues for RecordValues<'_> {
    #[inline]
    fn value(&self, field: &FieldDef) -> FieldValue {
        match field.source {
            Source::Record(f) => record_value(self.record, f),
            Source::Context(ContextField::ObservationDomainId) => {
                FieldValue::Unsigned(u64::from(self.observation_domain_id))
            }
            Source::Context(ContextField::SamplingInterval) => FieldValue::Unsigned(1),
            Source::Unavailable(_) => FieldValue::Unsigned(0),
        }
    }
}

/// The value of `field` for `record`.
#[inline]
pub fn record_value(record: &FlowRecord, field: RecordField) -> FieldValue {
    use FieldValue::{Address, Nanoseconds, Unsigned};
    let key = &record.key;
    let icmp_v4 = key.ip_version == 4 && key.protocol == PROTO_ICMP;
    let icmp_v6 = key.ip_version == 6 && key.protocol == PROTO_ICMPV6;
    let type_code = |applies: bool| if applies { u64::from(key.dst_port) } else { 0 };
    match field {
        RecordField::PacketDelta => Unsigned(record.packets),
        RecordField::OctetDelta => Unsigned(record.octets),
        RecordField::PacketTotal => Unsigned(record.total_packets),
        RecordField::OctetTotal => Unsigned(record.total_octets),
        RecordField::Protocol => Unsigned(u64::from(key.protocol)),
        RecordField::ClassOfService => Unsigned(u64::from(record.tos)),
        RecordField::Dscp => Unsigned(u64::from(record.tos >> 2)),
        RecordField::TcpFlags => Unsigned(u64::from(record.tcp_flags)),
        RecordField::SrcPort => Unsigned(u64::from(key.src_port)),
        RecordField::DstPort => {
            let icmp = matches!(key.protocol, PROTO_ICMP | PROTO_ICMPV6);
            Unsigned(if icmp { 0 } else { u64::from(key.dst_port) })
        }
        RecordField::SrcIpv4 | RecordField::SrcIpv6 => Address(key.src_addr),
        RecordField::DstIpv4 | RecordField::DstIpv6 => Address(key.dst_addr),
        RecordField::IngressInterface => Unsigned(u64::from(key.ingress_ifindex)),
        RecordField::EgressInterface => Unsigned(u64::from(key.egress_ifindex)),
        RecordField::IcmpTypeCodeV4 => Unsigned(type_code(icmp_v4)),
        RecordField::IcmpTypeCodeV6 => Unsigned(type_code(icmp_v6)),
        RecordField::IcmpTypeV4 => Unsigned(type_code(icmp_v4) >> 8),
        RecordField::IcmpCodeV4 => Unsigned(type_code(icmp_v4) & 0xff),
        RecordField::IcmpTypeV6 => Unsigned(type_code(icmp_v6) >> 8),
        RecordField::IcmpCodeV6 => Unsigned(type_code(icmp_v6) & 0xff),
        RecordField::MinTtl => Unsigned(u64::from(record.min_ttl)),
        RecordField::MaxTtl => Unsigned(u64::from(record.max_ttl)),
        RecordField::VlanId => Unsigned(u64::from(key.vlan_id)),
        RecordField::InnerVlanId => Unsigned(u64::from(key.inner_vlan_id)),
        RecordField::IpVersion => Unsigned(u64::from(key.ip_version)),
        RecordField::FlowDirection => Unsigned(u64::from(key.direction)),
        RecordField::EndReason => Unsigned(record.reason as u64),
        RecordField::StartSeconds | RecordField::StartMilliseconds | RecordField::StartNanoseconds => {
            Nanoseconds(record.start_unix_ns)
        }
        RecordField::EndSeconds | RecordField::EndMilliseconds | RecordField::EndNanoseconds => {
            Nanoseconds(record.end_unix_ns)
        }
        RecordField::DurationMilliseconds => {
            // Difference of the millisecond timestamps, so that it equals
            // flowEndMilliseconds - flowStartMilliseconds exactly.
            Unsigned((record.end_unix_ns / NANOS_PER_MILLI).saturating_sub(record.start_unix_ns / NANOS_PER_MILLI))
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

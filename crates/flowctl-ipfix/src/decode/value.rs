//! Decoded field values and their conversion from ipfixrw's values.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use flowctl_model::MplsLabel;
use ipfixrw::parser::{DataRecordType, DataRecordValue};

use crate::time::{ntp_to_unix_ns, Utc};

const NANOS_PER_MICRO: u64 = 1_000;

/// One decoded value, typed by the IANA registry.
#[derive(Clone, Debug, PartialEq)]
pub enum DecodedValue {
    /// Unsigned integer (any length up to 8 bytes).
    Unsigned(u64),
    /// Signed integer (any length up to 8 bytes).
    Signed(i64),
    /// Floating point number.
    Float(f64),
    /// Boolean (RFC 7011: 1 is true, anything else false).
    Bool(bool),
    /// MAC address.
    Mac([u8; 6]),
    /// IPv4 address.
    Ipv4(Ipv4Addr),
    /// IPv6 address.
    Ipv6(Ipv6Addr),
    /// `dateTimeSeconds`: Unix seconds.
    Seconds(u32),
    /// `dateTimeMilliseconds`: Unix milliseconds.
    Milliseconds(u64),
    /// `dateTimeMicroseconds`, converted from NTP to Unix microseconds (times
    /// before 1970 become 0).
    Microseconds(u64),
    /// `dateTimeNanoseconds`, converted from NTP to Unix nanoseconds (times
    /// before 1970 become 0).
    Nanoseconds(u64),
    /// String (invalid UTF-8 replaced), without the NULs that pad a
    /// fixed-length field.
    String(String),
    /// Raw bytes: octet arrays, unknown elements, and values whose length
    /// does not suit their type.
    Bytes(Vec<u8>),
    /// An MPLS label stack section (IEs 70 to 79, 3 bytes): label, TC
    /// (formerly EXP) and bottom-of-stack bit.
    MplsLabel(MplsLabel),
}

/// IANA's mplsTopLabelStackSection (70) and mplsLabelStackSection2..10 (71..79).
const MPLS_LABEL_STACK_SECTIONS: std::ops::RangeInclusive<u16> = 70..=79;

impl DecodedValue {
    /// The integer, for [`DecodedValue::Unsigned`].
    pub fn as_unsigned(&self) -> Option<u64> {
        match self {
            DecodedValue::Unsigned(v) => Some(*v),
            _ => None,
        }
    }

    /// Converts ipfixrw's value of IANA element `id` (`None`: an enterprise
    /// element); `ty` is the registry type of the element (raw bytes of a
    /// length ipfixrw cannot read are decoded by this type).
    pub(crate) fn from_ipfixrw(value: DataRecordValue, id: Option<u16>, ty: Option<DataRecordType>) -> DecodedValue {
        match value {
            DataRecordValue::Bytes(bytes) if id.is_some_and(|id| MPLS_LABEL_STACK_SECTIONS.contains(&id)) => {
                mpls_label(bytes)
            }
            DataRecordValue::U8(v) => DecodedValue::Unsigned(v.into()),
            DataRecordValue::U16(v) => DecodedValue::Unsigned(v.into()),
            DataRecordValue::U32(v) => DecodedValue::Unsigned(v.into()),
            DataRecordValue::U64(v) => DecodedValue::Unsigned(v),
            DataRecordValue::I8(v) => DecodedValue::Signed(v.into()),
            DataRecordValue::I16(v) => DecodedValue::Signed(v.into()),
            DataRecordValue::I32(v) => DecodedValue::Signed(v.into()),
            DataRecordValue::I64(v) => DecodedValue::Signed(v),
            DataRecordValue::F32(v) => DecodedValue::Float(v.into()),
            DataRecordValue::F64(v) => DecodedValue::Float(v),
            DataRecordValue::Bool(v) => DecodedValue::Bool(v),
            DataRecordValue::MacAddress(v) => DecodedValue::Mac(v),
            DataRecordValue::Bytes(bytes) => from_bytes(bytes, ty),
            DataRecordValue::String(s) => DecodedValue::String(s.trim_end_matches('\0').to_string()),
            DataRecordValue::DateTimeSeconds(v) => DecodedValue::Seconds(v),
            DataRecordValue::DateTimeMilliseconds(v) => DecodedValue::Milliseconds(v),
            DataRecordValue::DateTimeMicroseconds(v) => DecodedValue::Microseconds(ntp_to_unix_ns(v) / NANOS_PER_MICRO),
            DataRecordValue::DateTimeNanoseconds(v) => DecodedValue::Nanoseconds(ntp_to_unix_ns(v)),
            DataRecordValue::Ipv4Addr(a) => DecodedValue::Ipv4(a),
            DataRecordValue::Ipv6Addr(a) => DecodedValue::Ipv6(a),
        }
    }
}

/// A 3-byte label stack section as label, TC and S; other lengths as bytes.
fn mpls_label(bytes: Vec<u8>) -> DecodedValue {
    match bytes[..] {
        [a, b, c] => DecodedValue::MplsLabel(MplsLabel::from_section(u32::from_be_bytes([0, a, b, c]))),
        _ => DecodedValue::Bytes(bytes),
    }
}

/// Interprets raw bytes by the element's registry type where that is
/// unambiguous (reduced-size integers, strings); else keeps the bytes.
fn from_bytes(bytes: Vec<u8>, ty: Option<DataRecordType>) -> DecodedValue {
    match ty {
        Some(DataRecordType::UnsignedInt) if (1..=8).contains(&bytes.len()) => {
            DecodedValue::Unsigned(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
        }
        Some(DataRecordType::SignedInt) if (1..=8).contains(&bytes.len()) => {
            let unsigned = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            let shift = 64 - 8 * bytes.len() as u32;
            DecodedValue::Signed(((unsigned << shift) as i64) >> shift)
        }
        Some(DataRecordType::String) => {
            DecodedValue::String(String::from_utf8_lossy(&bytes).trim_end_matches('\0').to_string())
        }
        _ => DecodedValue::Bytes(bytes),
    }
}

impl fmt::Display for DecodedValue {
    /// Integers in decimal, addresses in their usual notation, times as UTC
    /// (`2024-05-01T12:00:00.123Z`), bytes in hex (`0x0a0b`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodedValue::Unsigned(v) => write!(f, "{v}"),
            DecodedValue::Signed(v) => write!(f, "{v}"),
            DecodedValue::Float(v) => write!(f, "{v}"),
            DecodedValue::Bool(v) => write!(f, "{v}"),
            DecodedValue::Mac(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
            DecodedValue::Ipv4(a) => write!(f, "{a}"),
            DecodedValue::Ipv6(a) => write!(f, "{a}"),
            DecodedValue::Seconds(s) => write!(f, "{}", utc(u64::from(*s), 1_000_000_000, 0)),
            DecodedValue::Milliseconds(ms) => write!(f, "{}", utc(*ms, 1_000_000, 3)),
            DecodedValue::Microseconds(us) => write!(f, "{}", utc(*us, 1_000, 6)),
            DecodedValue::Nanoseconds(ns) => write!(f, "{}", utc(*ns, 1, 9)),
            DecodedValue::String(s) => write!(f, "{s}"),
            DecodedValue::Bytes(b) => {
                f.write_str("0x")?;
                b.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
            }
            DecodedValue::MplsLabel(l) => write!(
                f,
                "label {} tc {} {}",
                l.label,
                l.tc,
                if l.bottom_of_stack { "bottom" } else { "not bottom" }
            ),
        }
    }
}

/// `value` in units of `unit_ns` nanoseconds as UTC with `digits` fraction
/// digits; values beyond the year 2554 saturate.
fn utc(value: u64, unit_ns: u64, digits: u8) -> Utc {
    Utc {
        unix_ns: value.saturating_mul(unit_ns),
        digits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduced_size_integers_are_decoded_by_type() {
        let ty = Some(DataRecordType::UnsignedInt);
        assert_eq!(from_bytes(vec![1, 2, 3], ty), DecodedValue::Unsigned(0x010203));
        let ty = Some(DataRecordType::SignedInt);
        assert_eq!(from_bytes(vec![0xff, 0xfe, 0xff], ty), DecodedValue::Signed(-257));
        assert_eq!(from_bytes(vec![0; 9], ty), DecodedValue::Bytes(vec![0; 9]));
        assert_eq!(
            from_bytes(vec![b'h', 0xff], Some(DataRecordType::String)),
            DecodedValue::String("h\u{fffd}".into())
        );
    }

    #[test]
    fn mpls_label_stack_sections_are_decoded_as_labels() {
        let section = DataRecordValue::Bytes(vec![0x00, 0x06, 0x4b]);
        let ty = Some(DataRecordType::Bytes);
        let label = MplsLabel {
            label: 100,
            tc: 5,
            bottom_of_stack: true,
        };
        for id in [70, 79] {
            assert_eq!(
                DecodedValue::from_ipfixrw(section.clone(), Some(id), ty),
                DecodedValue::MplsLabel(label)
            );
        }
        // Another length, another element, an enterprise element: bytes.
        let four = DataRecordValue::Bytes(vec![0, 6, 0x4b, 0]);
        assert_eq!(
            DecodedValue::from_ipfixrw(four, Some(70), ty),
            DecodedValue::Bytes(vec![0, 6, 0x4b, 0])
        );
        for id in [Some(80), None] {
            assert_eq!(
                DecodedValue::from_ipfixrw(section.clone(), id, ty),
                DecodedValue::Bytes(vec![0, 6, 0x4b])
            );
        }
    }

    #[test]
    fn display_is_human_readable() {
        let cases = [
            (DecodedValue::Unsigned(42), "42"),
            (DecodedValue::Bytes(vec![0x0a, 0xff]), "0x0aff"),
            (DecodedValue::Mac([0, 1, 2, 0xaa, 0xbb, 0xcc]), "00:01:02:aa:bb:cc"),
            (DecodedValue::Ipv4(Ipv4Addr::new(192, 0, 2, 1)), "192.0.2.1"),
            (DecodedValue::Seconds(86_400), "1970-01-02T00:00:00Z"),
            (DecodedValue::Milliseconds(1_500), "1970-01-01T00:00:01.500Z"),
            (DecodedValue::Nanoseconds(7), "1970-01-01T00:00:00.000000007Z"),
            (
                DecodedValue::MplsLabel(MplsLabel::from_section(0x00_064b)),
                "label 100 tc 5 bottom",
            ),
        ];
        for (value, text) in cases {
            assert_eq!(value.to_string(), text);
        }
    }
}

//! Decoded field values and their conversion from ipfixrw's values.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

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
    /// String (invalid UTF-8 replaced).
    String(String),
    /// Raw bytes: octet arrays, unknown elements, and values whose length
    /// does not suit their type.
    Bytes(Vec<u8>),
}

impl DecodedValue {
    /// The integer, for [`DecodedValue::Unsigned`].
    pub fn as_unsigned(&self) -> Option<u64> {
        match self {
            DecodedValue::Unsigned(v) => Some(*v),
            _ => None,
        }
    }

    /// Converts ipfixrw's value; `ty` is the registry type of the element
    /// (raw bytes of a length ipfixrw cannot read are decoded by this type).
    pub(crate) fn from_ipfixrw(value: DataRecordValue, ty: Option<DataRecordType>) -> DecodedValue {
        match value {
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
            DataRecordValue::String(s) => DecodedValue::String(s),
            DataRecordValue::DateTimeSeconds(v) => DecodedValue::Seconds(v),
            DataRecordValue::DateTimeMilliseconds(v) => DecodedValue::Milliseconds(v),
            DataRecordValue::DateTimeMicroseconds(v) => DecodedValue::Microseconds(ntp_to_unix_ns(v) / NANOS_PER_MICRO),
            DataRecordValue::DateTimeNanoseconds(v) => DecodedValue::Nanoseconds(ntp_to_unix_ns(v)),
            DataRecordValue::Ipv4Addr(a) => DecodedValue::Ipv4(a),
            DataRecordValue::Ipv6Addr(a) => DecodedValue::Ipv6(a),
        }
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
        Some(DataRecordType::String) => DecodedValue::String(String::from_utf8_lossy(&bytes).into_owned()),
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
    fn display_is_human_readable() {
        let cases = [
            (DecodedValue::Unsigned(42), "42"),
            (DecodedValue::Bytes(vec![0x0a, 0xff]), "0x0aff"),
            (DecodedValue::Mac([0, 1, 2, 0xaa, 0xbb, 0xcc]), "00:01:02:aa:bb:cc"),
            (DecodedValue::Ipv4(Ipv4Addr::new(192, 0, 2, 1)), "192.0.2.1"),
            (DecodedValue::Seconds(86_400), "1970-01-02T00:00:00Z"),
            (DecodedValue::Milliseconds(1_500), "1970-01-01T00:00:01.500Z"),
            (DecodedValue::Nanoseconds(7), "1970-01-01T00:00:00.000000007Z"),
        ];
        for (value, text) in cases {
            assert_eq!(value.to_string(), text);
        }
    }
}

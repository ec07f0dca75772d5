//! Encoding of single values into record bytes (RFC 7011 §6).

use crate::fields::FieldKind;
use crate::time::unix_ns_to_ntp;
use crate::values::FieldValue;

const NANOS_PER_SEC: u64 = 1_000_000_000;
const NANOS_PER_MILLI: u64 = 1_000_000;

/// Appends `value` big-endian in `len` bytes. A value too large for `len`
/// bytes is saturated to the largest value of that length (all ones); lengths
/// above 8 are padded with leading zeros.
pub fn put_unsigned(out: &mut Vec<u8>, value: u64, len: u16) {
    let len = usize::from(len);
    if len >= 8 {
        out.resize(out.len() + (len - 8), 0);
        out.extend_from_slice(&value.to_be_bytes());
        return;
    }
    let max = (1u64 << (8 * len)) - 1;
    let bytes = value.min(max).to_be_bytes();
    out.extend_from_slice(bytes.get(8 - len..).unwrap_or_default());
}

/// Appends `value` encoded as a field of `kind` and `len` bytes.
///
/// See [`FieldValue`] for how a value of another shape than the field is
/// converted; the result always has exactly `len` bytes.
pub fn put_value(out: &mut Vec<u8>, kind: FieldKind, len: u16, value: FieldValue) {
    match (kind, value) {
        (FieldKind::Ipv4Address | FieldKind::Ipv6Address, FieldValue::Address(addr)) => put_address(out, &addr, len),
        (FieldKind::Ipv4Address | FieldKind::Ipv6Address, FieldValue::Unsigned(v)) => put_unsigned(out, v, len),
        (FieldKind::Ipv4Address | FieldKind::Ipv6Address, FieldValue::Nanoseconds(_)) => put_unsigned(out, 0, len),
        (FieldKind::Unsigned, FieldValue::Unsigned(v) | FieldValue::Nanoseconds(v)) => put_unsigned(out, v, len),
        (FieldKind::Unsigned, FieldValue::Address(addr)) => put_unsigned(out, address_low_u64(&addr), len),
        (_, FieldValue::Address(_)) => put_unsigned(out, 0, len),
        (FieldKind::DateTimeSeconds, FieldValue::Nanoseconds(ns)) => put_unsigned(out, ns / NANOS_PER_SEC, len),
        (FieldKind::DateTimeMilliseconds, FieldValue::Nanoseconds(ns)) => put_unsigned(out, ns / NANOS_PER_MILLI, len),
        (FieldKind::DateTimeSeconds | FieldKind::DateTimeMilliseconds, FieldValue::Unsigned(v)) => {
            put_unsigned(out, v, len)
        }
        (FieldKind::DateTimeNanoseconds, FieldValue::Nanoseconds(ns) | FieldValue::Unsigned(ns)) => {
            put_unsigned(out, unix_ns_to_ntp(ns), len)
        }
    }
}

/// Appends the last `len` bytes of a 16-byte key-form address (IPv4 fields
/// take the last 4), padded with leading zeros if `len` exceeds 16.
fn put_address(out: &mut Vec<u8>, addr: &[u8; 16], len: u16) {
    let len = usize::from(len);
    if len > addr.len() {
        out.resize(out.len() + (len - addr.len()), 0);
    }
    let start = addr.len().saturating_sub(len);
    out.extend_from_slice(addr.get(start..).unwrap_or_default());
}

/// The last 8 bytes of an address as a big-endian integer.
fn address_low_u64(addr: &[u8; 16]) -> u64 {
    let mut low = [0u8; 8];
    low.copy_from_slice(addr.get(8..).unwrap_or(&[0; 8]));
    u64::from_be_bytes(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(kind: FieldKind, len: u16, value: FieldValue) -> Vec<u8> {
        let mut out = Vec::new();
        put_value(&mut out, kind, len, value);
        out
    }

    #[test]
    fn unsigned_values_are_big_endian_and_saturate() {
        let mut out = Vec::new();
        put_unsigned(&mut out, 0x0102, 2);
        put_unsigned(&mut out, 0x1_0000, 2);
        put_unsigned(&mut out, 300, 1);
        put_unsigned(&mut out, 7, 0);
        put_unsigned(&mut out, u64::MAX, 8);
        assert_eq!(
            out,
            [1, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            encode(FieldKind::Unsigned, 10, FieldValue::Unsigned(1)),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn every_combination_has_the_field_length() {
        let kinds = [
            FieldKind::Unsigned,
            FieldKind::Ipv4Address,
            FieldKind::Ipv6Address,
            FieldKind::DateTimeSeconds,
            FieldKind::DateTimeMilliseconds,
            FieldKind::DateTimeNanoseconds,
        ];
        let values = [
            FieldValue::Unsigned(u64::MAX),
            FieldValue::Address([0xab; 16]),
            FieldValue::Nanoseconds(u64::MAX),
        ];
        for kind in kinds {
            for value in values {
                for len in [0u16, 1, 2, 3, 4, 8, 16, 17] {
                    assert_eq!(
                        encode(kind, len, value).len(),
                        usize::from(len),
                        "{kind:?} {value:?} {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn ipv4_fields_take_the_last_four_bytes() {
        let addr = flowctl_common::key_addr("192.0.2.9".parse().unwrap());
        assert_eq!(
            encode(FieldKind::Ipv4Address, 4, FieldValue::Address(addr)),
            [192, 0, 2, 9]
        );
        assert_eq!(encode(FieldKind::Ipv6Address, 16, FieldValue::Address(addr)), addr);
    }
}

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
    write_unsigned(grow(out, len), value);
}

/// Extends `out` by `len` zero bytes and returns them.
fn grow(out: &mut Vec<u8>, len: u16) -> &mut [u8] {
    let start = out.len();
    out.resize(start + usize::from(len), 0);
    out.get_mut(start..).unwrap_or_default()
}

/// Writes `value` encoded as a field of `kind` into `dst`, which has the
/// field's length: every byte of `dst` is written.
///
/// See [`FieldValue`] for how a value of another shape than the field is
/// converted.
#[inline]
pub fn write_value(dst: &mut [u8], kind: FieldKind, value: FieldValue) {
    match (kind, value) {
        (FieldKind::Ipv4Address | FieldKind::Ipv6Address, FieldValue::Address(addr)) => write_address(dst, &addr),
        (FieldKind::Ipv4Address | FieldKind::Ipv6Address, FieldValue::Unsigned(v)) => write_unsigned(dst, v),
        (FieldKind::Ipv4Address | FieldKind::Ipv6Address, FieldValue::Nanoseconds(_)) => write_unsigned(dst, 0),
        (FieldKind::Unsigned | FieldKind::OctetArray, FieldValue::Unsigned(v) | FieldValue::Nanoseconds(v)) => {
            write_unsigned(dst, v)
        }
        (FieldKind::Unsigned | FieldKind::OctetArray, FieldValue::Address(addr)) => {
            write_unsigned(dst, address_low_u64(&addr))
        }
        (_, FieldValue::Address(_)) => write_unsigned(dst, 0),
        (FieldKind::DateTimeSeconds, FieldValue::Nanoseconds(ns)) => write_unsigned(dst, ns / NANOS_PER_SEC),
        (FieldKind::DateTimeMilliseconds, FieldValue::Nanoseconds(ns)) => write_unsigned(dst, ns / NANOS_PER_MILLI),
        (FieldKind::DateTimeSeconds | FieldKind::DateTimeMilliseconds, FieldValue::Unsigned(v)) => {
            write_unsigned(dst, v)
        }
        (FieldKind::DateTimeNanoseconds, FieldValue::Nanoseconds(ns) | FieldValue::Unsigned(ns)) => {
            write_unsigned(dst, unix_ns_to_ntp(ns))
        }
    }
}

/// Writes `value` big-endian into all of `dst`, saturated to its length
/// (see [`put_unsigned`]). The usual lengths 1, 2, 4 and 8 are fixed-size
/// stores.
#[inline]
pub fn write_unsigned(dst: &mut [u8], value: u64) {
    if let Ok(d) = <&mut [u8; 8]>::try_from(&mut *dst) {
        *d = value.to_be_bytes();
    } else if let Ok(d) = <&mut [u8; 4]>::try_from(&mut *dst) {
        *d = u32::try_from(value).unwrap_or(u32::MAX).to_be_bytes();
    } else if let Ok(d) = <&mut [u8; 2]>::try_from(&mut *dst) {
        *d = u16::try_from(value).unwrap_or(u16::MAX).to_be_bytes();
    } else if let [b] = dst {
        *b = u8::try_from(value).unwrap_or(u8::MAX);
    } else if dst.len() > 8 {
        let (pad, low) = dst.split_at_mut(dst.len() - 8);
        pad.fill(0);
        low.copy_from_slice(&value.to_be_bytes());
    } else {
        let len = dst.len();
        let max = (1u64 << (8 * len)) - 1;
        dst.copy_from_slice(value.min(max).to_be_bytes().get(8 - len..).unwrap_or_default());
    }
}

/// Writes the last `dst.len()` bytes of a 16-byte key-form address (IPv4
/// fields take the last 4), padded with leading zeros if `dst` is longer
/// than 16 bytes.
#[inline]
fn write_address(dst: &mut [u8], addr: &[u8; 16]) {
    if let Ok(d) = <&mut [u8; 16]>::try_from(&mut *dst) {
        *d = *addr;
    } else if let Ok(d) = <&mut [u8; 4]>::try_from(&mut *dst) {
        d.copy_from_slice(addr.last_chunk::<4>().unwrap_or(&[0; 4]));
    } else if dst.len() > addr.len() {
        let (pad, tail) = dst.split_at_mut(dst.len() - addr.len());
        pad.fill(0);
        tail.copy_from_slice(addr);
    } else {
        let start = addr.len() - dst.len();
        dst.copy_from_slice(addr.get(start..).unwrap_or_default());
    }
}

/// The last 8 bytes of an address as a big-endian integer.
#[inline]
fn address_low_u64(addr: &[u8; 16]) -> u64 {
    u64::from_be_bytes(*addr.last_chunk::<8>().unwrap_or(&[0; 8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(kind: FieldKind, len: u16, value: FieldValue) -> Vec<u8> {
        let mut out = vec![0xee; usize::from(len)];
        write_value(&mut out, kind, value);
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
        let cases: [(u64, u16, &[u8]); 6] = [
            (0x0102_0304, 4, &[1, 2, 3, 4]),
            (0x1_0000_0000, 4, &[0xff; 4]),
            (0x01_0203, 3, &[1, 2, 3]),
            (0x0100_0000, 3, &[0xff; 3]),
            (0x01_0203_0405, 5, &[1, 2, 3, 4, 5]),
            (0x0102_0304_0506_0708, 7, &[0xff; 7]),
        ];
        for (value, len, expected) in cases {
            assert_eq!(
                encode(FieldKind::Unsigned, len, FieldValue::Unsigned(value)),
                expected,
                "{value:#x} {len}"
            );
        }
    }

    #[test]
    fn every_combination_writes_every_byte() {
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
            FieldValue::Unsigned(0),
            FieldValue::Address([0xab; 16]),
            FieldValue::Nanoseconds(u64::MAX),
        ];
        for kind in kinds {
            for value in values {
                for len in [0usize, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17] {
                    let mut dirty = vec![0x5a; len];
                    write_value(&mut dirty, kind, value);
                    assert_eq!(dirty, encode(kind, len as u16, value), "{kind:?} {value:?} {len}");
                }
            }
        }
    }

    #[test]
    fn put_unsigned_appends_the_field_length() {
        let mut out = vec![9];
        for len in [0u16, 1, 2, 3, 8, 10] {
            put_unsigned(&mut out, u64::MAX, len);
        }
        assert_eq!(out.len(), 1 + 24);
        assert_eq!(out[..4], [9, 0xff, 0xff, 0xff]);
        assert_eq!(
            out[out.len() - 10..],
            [0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn short_and_long_address_fields() {
        let addr: [u8; 16] = std::array::from_fn(|i| i as u8 + 1);
        assert_eq!(encode(FieldKind::Ipv6Address, 2, FieldValue::Address(addr)), [15, 16]);
        let mut long = vec![0; 2];
        long.extend_from_slice(&addr);
        assert_eq!(encode(FieldKind::Ipv6Address, 18, FieldValue::Address(addr)), long);
        assert_eq!(
            encode(FieldKind::Unsigned, 8, FieldValue::Address(addr)),
            [9, 10, 11, 12, 13, 14, 15, 16]
        );
    }

    #[test]
    fn ipv4_fields_take_the_last_four_bytes() {
        let addr = flowctl_model::key_addr("192.0.2.9".parse().unwrap());
        assert_eq!(
            encode(FieldKind::Ipv4Address, 4, FieldValue::Address(addr)),
            [192, 0, 2, 9]
        );
        assert_eq!(encode(FieldKind::Ipv6Address, 16, FieldValue::Address(addr)), addr);
    }
}

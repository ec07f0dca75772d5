//! Template fields for the generated messages: registry elements of every
//! type flowctl's decoder knows, unknown elements and enterprise elements;
//! how their values are written and what the decoder must return for them
//! (RFC 7011 §6 and the decoder's documented rules, worked out here).

use std::net::{Ipv4Addr, Ipv6Addr};

use flowctl_ipfix::DecodedValue;
use proptest::prelude::*;
use proptest::sample::select;

/// Field length meaning "variable length" (RFC 7011 §7).
pub const VARIABLE: u16 = 65535;

/// Abstract data type of a registry element (RFC 7012).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Unsigned,
    Signed,
    Float,
    Bool,
    Mac,
    Ipv4,
    Ipv6,
    Text,
    Octets,
    Seconds,
    Millis,
}

/// Registry elements used, with their IANA names.
const REGISTRY: &[(u16, &str, Kind)] = &[
    (1, "octetDeltaCount", Kind::Unsigned),
    (2, "packetDeltaCount", Kind::Unsigned),
    (4, "protocolIdentifier", Kind::Unsigned),
    (7, "sourceTransportPort", Kind::Unsigned),
    (10, "ingressInterface", Kind::Unsigned),
    (434, "mibObjectValueInteger", Kind::Signed),
    (337, "lowerCILimit", Kind::Float),
    (276, "dataRecordsReliability", Kind::Bool),
    (56, "sourceMacAddress", Kind::Mac),
    (8, "sourceIPv4Address", Kind::Ipv4),
    (27, "sourceIPv6Address", Kind::Ipv6),
    (82, "interfaceName", Kind::Text),
    (350, "virtualStationName", Kind::Text),
    (313, "ipHeaderPacketSection", Kind::Octets),
    (150, "flowStartSeconds", Kind::Seconds),
    (152, "flowStartMilliseconds", Kind::Millis),
];

/// One field specifier of a template.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub id: u16,
    pub enterprise: Option<u32>,
    /// Registry name and type; `None` for elements outside the registry,
    /// whose values are raw bytes.
    pub known: Option<(&'static str, Kind)>,
    /// Length in the template; [`VARIABLE`] for variable length.
    pub length: u16,
}

impl Field {
    /// The name the decoder gives the field.
    pub fn name(&self) -> String {
        match (self.known, self.enterprise) {
            (Some((name, _)), _) => name.to_string(),
            (None, Some(pen)) => format!("ie{pen}.{}", self.id),
            (None, None) => format!("ie{}", self.id),
        }
    }

    /// Smallest encoded size (a variable-length field takes at least 1 byte).
    pub fn min_len(&self) -> usize {
        if self.length == VARIABLE {
            1
        } else {
            usize::from(self.length)
        }
    }
}

/// Lengths a value of `kind` may be encoded in (reduced-size integers,
/// float32 for float64, variable-length strings and octet arrays).
fn lengths(kind: Kind) -> Vec<u16> {
    match kind {
        Kind::Unsigned | Kind::Signed => (1..=8).collect(),
        Kind::Float => vec![4, 8],
        Kind::Bool => vec![1],
        Kind::Mac => vec![6],
        Kind::Ipv4 | Kind::Seconds => vec![4],
        Kind::Ipv6 => vec![16],
        Kind::Millis => vec![8],
        Kind::Text | Kind::Octets => vec![0, 1, 2, 5, 16, VARIABLE, VARIABLE, VARIABLE],
    }
}

/// A field: a registry element, an unassigned element or an enterprise one.
pub fn field() -> impl Strategy<Value = Field> {
    let raw_length = select(vec![0u16, 1, 2, 3, 4, 7, 8, 16, VARIABLE, VARIABLE]);
    prop_oneof![
        4 => select(REGISTRY).prop_flat_map(|(id, name, kind)| {
            select(lengths(kind)).prop_map(move |length| Field {
                id,
                enterprise: None,
                known: Some((name, kind)),
                length,
            })
        }),
        // The registry ends below 1000.
        1 => (1000u16..=32767, raw_length.clone()).prop_map(|(id, length)| Field {
            id,
            enterprise: None,
            known: None,
            length,
        }),
        1 => (0u16..=32767, 1u32.., raw_length).prop_map(|(id, pen, length)| Field {
            id,
            enterprise: Some(pen),
            known: None,
            length,
        }),
    ]
}

/// Reads value bytes from a record's random material, zeros once it is used up.
pub struct Material<'a>(pub std::slice::Iter<'a, u8>);

impl Material<'_> {
    fn byte(&mut self) -> u8 {
        self.0.next().copied().unwrap_or(0)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// Writes one value of `field` from `m` into `out`; returns what the decoder
/// must read back.
pub fn write_value(field: &Field, m: &mut Material<'_>, out: &mut Vec<u8>) -> DecodedValue {
    let content = if field.length == VARIABLE {
        let first = m.byte();
        let len = if first > 240 {
            usize::from(m.byte()) * 3
        } else {
            usize::from(first % 40)
        };
        let content = m.bytes(len);
        // The 3-byte length form is allowed for short values too.
        if len >= 255 || first.is_multiple_of(7) {
            out.push(255);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(len as u8);
        }
        content
    } else {
        m.bytes(usize::from(field.length))
    };
    let mut content = content;
    sanitize(field, &mut content);
    out.extend_from_slice(&content);
    expected(field, content)
}

/// Keeps generated values comparable (no NaN, booleans 1 or 2) and makes
/// most strings valid UTF-8 of the same byte length.
fn sanitize(field: &Field, content: &mut [u8]) {
    match field.known.map(|k| k.1) {
        Some(Kind::Text) if content.first().is_some_and(|b| b % 4 != 0) => {
            let palette = ["é", "日", "💥", "\u{0}", "\n"];
            let mut text = String::new();
            for b in content.iter() {
                let c = palette[usize::from(*b) % palette.len()];
                if text.len() + c.len() <= content.len() && b % 3 == 0 {
                    text.push_str(c);
                } else if text.len() < content.len() {
                    text.push(char::from(b'a' + b % 26));
                }
            }
            while text.len() < content.len() {
                text.push('a');
            }
            content.copy_from_slice(text.as_bytes());
        }
        Some(Kind::Float) => {
            let nan = match content.len() {
                4 => f32::from_be_bytes(content.try_into().expect("4 bytes")).is_nan(),
                _ => f64::from_be_bytes(content.try_into().expect("8 bytes")).is_nan(),
            };
            if nan {
                content.fill(0);
            }
        }
        Some(Kind::Bool) => content[0] = 1 + content[0] % 2,
        _ => {}
    }
}

fn unsigned(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, b| (acc << 8) | u64::from(*b))
}

/// What the decoder returns for `content` in `field`.
fn expected(field: &Field, content: Vec<u8>) -> DecodedValue {
    let Some((_, kind)) = field.known else {
        return DecodedValue::Bytes(content);
    };
    let n = content.len();
    match kind {
        Kind::Unsigned if (1..=8).contains(&n) => DecodedValue::Unsigned(unsigned(&content)),
        Kind::Signed if (1..=8).contains(&n) => {
            let shift = 64 - 8 * n as u32;
            DecodedValue::Signed(((unsigned(&content) << shift) as i64) >> shift)
        }
        Kind::Float if n == 4 => DecodedValue::Float(f32::from_bits(unsigned(&content) as u32).into()),
        Kind::Float if n == 8 => DecodedValue::Float(f64::from_bits(unsigned(&content))),
        Kind::Bool if n == 1 => DecodedValue::Bool(content[0] == 1),
        Kind::Mac if n == 6 => DecodedValue::Mac(content.try_into().expect("6 bytes")),
        Kind::Ipv4 if n == 4 => DecodedValue::Ipv4(Ipv4Addr::from(unsigned(&content) as u32)),
        Kind::Ipv6 if n == 16 => DecodedValue::Ipv6(Ipv6Addr::from(<[u8; 16]>::try_from(content).expect("16 bytes"))),
        Kind::Seconds if n == 4 => DecodedValue::Seconds(unsigned(&content) as u32),
        Kind::Millis if n == 8 => DecodedValue::Milliseconds(unsigned(&content)),
        // NULs padding a fixed-length string are not part of it.
        Kind::Text => DecodedValue::String(String::from_utf8_lossy(&content).trim_end_matches('\0').to_string()),
        _ => DecodedValue::Bytes(content),
    }
}

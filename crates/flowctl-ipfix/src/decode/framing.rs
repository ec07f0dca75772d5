//! Structural checks done before any bytes reach ipfixrw: the message header,
//! set headers, and template records (RFC 7011 §3).

use super::DecodeError;

/// Message header length.
pub const HEADER_LEN: usize = 16;
/// Set header length.
pub const SET_HEADER_LEN: usize = 4;

/// A validated message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub export_time: u32,
    pub sequence_number: u32,
    pub observation_domain_id: u32,
}

/// One set: its id, its offset in the message and its whole bytes (header
/// included).
#[derive(Clone, Copy, Debug)]
pub struct RawSet<'a> {
    pub id: u16,
    pub offset: usize,
    pub bytes: &'a [u8],
}

impl<'a> RawSet<'a> {
    /// The set content after the header.
    pub fn body(&self) -> &'a [u8] {
        self.bytes.get(SET_HEADER_LEN..).unwrap_or_default()
    }
}

/// One template or options template record of a template set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateItem {
    /// A definition; `raw` is its bytes within the set body.
    Define {
        id: u16,
        scope_count: u16,
        raw: std::ops::Range<usize>,
    },
    /// Withdrawal of one template.
    Withdraw(u16),
    /// Withdrawal of all templates of the set's kind (id 2 or 3).
    WithdrawAll,
}

pub fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

pub fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some((u32::from(read_u16(bytes, at)?) << 16) | u32::from(read_u16(bytes, at.checked_add(2)?)?))
}

/// Checks version, length and size of the header of `msg`.
pub fn header(msg: &[u8]) -> Result<Header, DecodeError> {
    if msg.len() < HEADER_LEN {
        return Err(DecodeError::TooShort(msg.len()));
    }
    let field = |at| read_u32(msg, at).ok_or(DecodeError::TooShort(msg.len()));
    let version = read_u16(msg, 0).ok_or(DecodeError::TooShort(msg.len()))?;
    if version != 10 {
        return Err(DecodeError::BadVersion(version));
    }
    let length = read_u16(msg, 2).ok_or(DecodeError::TooShort(msg.len()))?;
    if usize::from(length) != msg.len() {
        return Err(DecodeError::LengthMismatch {
            header: length,
            actual: msg.len(),
        });
    }
    Ok(Header {
        export_time: field(4)?,
        sequence_number: field(8)?,
        observation_domain_id: field(12)?,
    })
}

/// Splits the sets of `msg` (whose header is valid), checking that each set
/// is at least 4 bytes long and ends within the message.
pub fn sets(msg: &[u8]) -> Result<Vec<RawSet<'_>>, DecodeError> {
    let mut sets = Vec::new();
    let mut offset = HEADER_LEN;
    while offset < msg.len() {
        let (Some(id), Some(length)) = (read_u16(msg, offset), read_u16(msg, offset + 2)) else {
            return Err(DecodeError::TruncatedSetHeader { offset });
        };
        let length = usize::from(length);
        if length < SET_HEADER_LEN {
            return Err(DecodeError::SetTooShort { offset, length });
        }
        let bytes = msg.get(offset..offset + length).ok_or(DecodeError::SetOverrun {
            offset,
            length,
            remaining: msg.len() - offset,
        })?;
        sets.push(RawSet { id, offset, bytes });
        offset += length;
    }
    Ok(sets)
}

/// Parses the records of a template set (`options` = Set ID 3). Trailing
/// bytes shorter than a record header, or all zero, are padding.
pub fn template_items(set: &RawSet<'_>, options: bool) -> Result<Vec<TemplateItem>, DecodeError> {
    let body = set.body();
    let mut items = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let rest = body.get(at..).unwrap_or_default();
        if rest.len() < 4 || rest.iter().all(|b| *b == 0) {
            break;
        }
        let bad = |reason: &'static str| DecodeError::BadTemplate {
            offset: set.offset + SET_HEADER_LEN + at,
            reason,
        };
        let id = read_u16(rest, 0).ok_or(bad("truncated record header"))?;
        let field_count = read_u16(rest, 2).ok_or(bad("truncated record header"))?;
        if field_count == 0 {
            items.push(match id {
                2 | 3 if id == if options { 3 } else { 2 } => TemplateItem::WithdrawAll,
                256.. => TemplateItem::Withdraw(id),
                _ => return Err(bad("withdrawal of a reserved template id")),
            });
            at += 4;
            continue;
        }
        if id < 256 {
            return Err(bad("template id below 256"));
        }
        let mut len = 4;
        let mut scope_count = 0;
        if options {
            scope_count = read_u16(rest, 4).ok_or(bad("truncated options template header"))?;
            if scope_count == 0 {
                return Err(bad("options template without scope fields"));
            }
            if scope_count > field_count {
                return Err(bad("more scope fields than fields"));
            }
            len = 6;
        }
        for _ in 0..field_count {
            let raw_id = read_u16(rest, len).ok_or(bad("field specifiers run past the set"))?;
            len += if raw_id & 0x8000 != 0 { 8 } else { 4 };
        }
        if len > rest.len() {
            return Err(bad("field specifiers run past the set"));
        }
        items.push(TemplateItem::Define {
            id,
            scope_count,
            raw: at..at + len,
        });
        at += len;
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(bytes: &[u8]) -> RawSet<'_> {
        RawSet {
            id: 2,
            offset: 16,
            bytes,
        }
    }

    #[test]
    fn template_sets_parse_definitions_withdrawals_and_padding() {
        let body = [
            0, 2, 0, 4, // set header (length not checked here)
            1, 0, 0, 2, 0, 1, 0, 8, 0x80, 2, 0, 4, 0, 0, 0, 9, // template 256: 2 fields, one enterprise
            1, 1, 0, 0, // withdraw 257
            0, 2, 0, 0, // withdraw all
            0, 0, // padding
        ];
        let items = template_items(&set(&body), false).unwrap();
        assert_eq!(
            items,
            vec![
                TemplateItem::Define {
                    id: 256,
                    scope_count: 0,
                    raw: 0..16
                },
                TemplateItem::Withdraw(257),
                TemplateItem::WithdrawAll,
            ]
        );
    }

    #[test]
    fn malformed_template_records_are_errors() {
        let overrun = [0, 2, 0, 0, 1, 0, 0, 2, 0, 1, 0, 8];
        assert!(matches!(
            template_items(&set(&overrun), false),
            Err(DecodeError::BadTemplate { offset: 20, .. })
        ));
        let low_id = [0, 2, 0, 0, 0, 9, 0, 1, 0, 1, 0, 8];
        assert!(template_items(&set(&low_id), false).is_err());
        let no_scope = [0, 3, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 8];
        assert!(template_items(&set(&no_scope), true).is_err());
    }
}

//! Splitting a TCP byte stream into whole IPFIX messages.

use super::framing::{read_u16, HEADER_LEN};
use super::DecodeError;

/// Splits the start of a stream buffer into whole messages by the length in
/// their headers.
///
/// Returns the complete messages and the number of bytes they take; the rest
/// of `buf` is an incomplete message to keep until more bytes arrive. A
/// version other than 10 or a length below 16 means the stream is out of
/// step and is an error (close the connection).
pub fn split_stream(buf: &[u8]) -> Result<(Vec<&[u8]>, usize), DecodeError> {
    let mut messages = Vec::new();
    let mut consumed = 0;
    loop {
        let rest = buf.get(consumed..).unwrap_or_default();
        let (Some(version), Some(length)) = (read_u16(rest, 0), read_u16(rest, 2)) else {
            break;
        };
        if version != 10 {
            return Err(DecodeError::BadVersion(version));
        }
        let length = usize::from(length);
        if length < HEADER_LEN {
            return Err(DecodeError::BadLength(length as u16));
        }
        let Some(message) = rest.get(..length) else {
            break;
        };
        messages.push(message);
        consumed += length;
    }
    Ok((messages, consumed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: u16, fill: u8) -> Vec<u8> {
        let mut m = vec![fill; usize::from(len)];
        m[..4].copy_from_slice(&[0, 10, (len >> 8) as u8, len as u8]);
        m
    }

    #[test]
    fn whole_messages_are_split_and_partial_ones_kept() {
        let (a, b, c) = (message(16, 1), message(40, 2), message(30, 3));
        let mut stream = [a.clone(), b.clone(), c.clone()].concat();
        stream.truncate(a.len() + b.len() + 5);
        let (messages, consumed) = split_stream(&stream).unwrap();
        assert_eq!(messages, vec![&a[..], &b[..]]);
        assert_eq!(consumed, a.len() + b.len());
        for cut in 0..a.len() {
            assert_eq!(split_stream(&a[..cut]).unwrap(), (vec![], 0));
        }
    }

    #[test]
    fn a_stream_out_of_step_is_an_error() {
        assert_eq!(split_stream(&[0, 9, 0, 16]), Err(DecodeError::BadVersion(9)));
        assert!(split_stream(&[0, 10, 0, 15]).is_err());
    }
}

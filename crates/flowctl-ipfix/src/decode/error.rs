//! Why a message cannot be decoded.

/// Why a message cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than a message header.
    #[error("IPFIX message of {0} bytes is shorter than its 16-byte header")]
    TooShort(usize),
    /// Not IPFIX.
    #[error("IPFIX version {0} is not 10")]
    BadVersion(u16),
    /// A header length below the header size (in a stream).
    #[error("IPFIX header length {0} is below 16")]
    BadLength(u16),
    /// The header length disagrees with the bytes received.
    #[error("IPFIX header length {header} does not match the {actual} bytes received")]
    LengthMismatch {
        /// Length in the header.
        header: u16,
        /// Bytes received.
        actual: usize,
    },
    /// Fewer than 4 bytes left for a set header.
    #[error("set header at offset {offset} is truncated")]
    TruncatedSetHeader {
        /// Offset of the set in the message.
        offset: usize,
    },
    /// A set length below 4.
    #[error("set at offset {offset} has length {length}, below its 4-byte header")]
    SetTooShort {
        /// Offset of the set in the message.
        offset: usize,
        /// Its length.
        length: usize,
    },
    /// A set running past the end of the message.
    #[error("set at offset {offset} has length {length} but only {remaining} bytes remain")]
    SetOverrun {
        /// Offset of the set in the message.
        offset: usize,
        /// Its length.
        length: usize,
        /// Bytes left in the message from the set on.
        remaining: usize,
    },
    /// A malformed template or options template record.
    #[error("template record at offset {offset}: {reason}")]
    BadTemplate {
        /// Offset of the record in the message.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// ipfixrw rejected a set.
    #[error("set {set_id} at offset {offset}: {message}")]
    Parse {
        /// The set id.
        set_id: u16,
        /// Offset of the set in the message.
        offset: usize,
        /// ipfixrw's error.
        message: String,
    },
    /// ipfixrw panicked on a set (caught).
    #[error("set {set_id} at offset {offset}: the IPFIX parser failed unexpectedly")]
    ParserPanicked {
        /// The set id.
        set_id: u16,
        /// Offset of the set in the message.
        offset: usize,
    },
    /// A template set for a new domain past the decoder's limit.
    #[error("observation domain {domain} refused: this exporter already has templates in {limit} domains, the limit")]
    TooManyDomains {
        /// The domain.
        domain: u32,
        /// Domains allowed.
        limit: usize,
    },
    /// A template past the decoder's limit on template fields.
    #[error("template {template_id} of observation domain {domain} refused: this exporter's templates would have more than {limit} fields, the limit")]
    TooManyTemplateFields {
        /// The template.
        template_id: u16,
        /// Its domain.
        domain: u32,
        /// Template fields allowed per exporter.
        limit: usize,
    },
}

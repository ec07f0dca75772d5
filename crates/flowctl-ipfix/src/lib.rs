//! IPFIX (RFC 7011) for flowctl: the information elements flowctl exports,
//! validated templates, message building within a size limit, and a
//! never-panicking decoder backed by ipfixrw.
//!
//! - [`fields`]: the information elements and where their values come from.
//! - [`template`]: data templates built from field names.
//! - [`options`]: options templates for exporter statistics and sampling.
//! - [`encode`]: [`MessageBuilder`] and record values.
//! - [`split`]: [`MessageSplitter`], items over as many messages as they need.
//! - [`decode`]: [`Decoder`] and [`split_stream`].
//! - [`netflow9`]: the same templates and records as NetFlow v9 (RFC 3954).
//!
//! ```
//! use flowctl_ipfix::{Decoder, FieldValue, MessageBuilder, Strictness, SyntheticValues, Template};
//!
//! let template = Template::new(256, &["sourceIPv4Address", "OctetDeltaCount"], Strictness::Agent)?;
//! let mut message = MessageBuilder::new(512, 1)?;
//! message.check(&template)?; // the template and a record fit in one message
//! message.push_template(&template)?;
//! let values = SyntheticValues([(1, FieldValue::Unsigned(1500))].into());
//! message.push_record(&template, &values)?;
//! let bytes = message.finish(1_700_000_000, 0);
//!
//! let decoded = Decoder::new().decode(&bytes)?;
//! assert_eq!(decoded.records[0].unsigned("octetDeltaCount"), Some(1500));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod decode;
pub mod encode;
pub mod fields;
pub mod netflow9;
pub mod options;
pub mod split;
mod suggest;
pub mod template;
pub mod time;
mod values;
mod wire;

pub use decode::{
    split_stream, DecodeError, DecodedField, DecodedMessage, DecodedRecord, DecodedValue, Decoder, DecoderLimits,
    SkipReason, SkippedSet,
};
pub use encode::{EncodeError, FieldValue, FieldValues, Full, MessageBuilder, RecordValues, SyntheticValues};
pub use fields::{ContextField, FieldDef, FieldKind, RecordField, Source};
pub use options::{
    exporter_stats_template, interface_names_template, sampling_template, ExporterStats, InterfaceInfo, OptionValue,
    OptionsTemplate,
};
pub use split::{FinishedMessages, MessageSplitter};
pub use template::{Strictness, Template, TemplateError};

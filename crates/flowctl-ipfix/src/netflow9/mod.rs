//! NetFlow version 9 (RFC 3954) for collectors that lack IPFIX: flowctl's
//! templates in v9 form, and v9 export packets built within a size limit.
//!
//! v9 is IPFIX's predecessor: the same template and record layout, with a
//! 20-byte header (record count, sysUptime, unix_secs, a sequence number
//! counting packets, a Source ID in place of the observation domain),
//! FlowSet 0 for templates and 1 for options templates, options scopes of
//! five types instead of information elements, and only the field types
//! up to 127.
//!
//! - [`fields`]: which elements v9 carries, under which type and length.
//! - [`template`]: data templates in v9 form ([`V9Template`]).
//! - [`options`]: options templates in v9 form ([`V9OptionsTemplate`]).
//! - [`uptime`]: the sysUptime clock flow times are written against.
//! - [`message`]: one packet ([`V9MessageBuilder`]).
//! - [`split`]: items over as many packets as they need ([`V9Splitter`]).
//!
//! ```
//! use flowctl_ipfix::netflow9::{Uptime, V9MessageBuilder, V9Template};
//! use flowctl_ipfix::{FieldValue, Strictness, SyntheticValues, Template};
//!
//! let t = Template::new(256, &["sourceIPv4Address", "octetDeltaCount", "flowEndReason"], Strictness::Agent)?;
//! let (v9, dropped) = V9Template::lenient(&t);
//! assert_eq!(dropped[0].name, "flowEndReason");
//! let mut packet = V9MessageBuilder::new(512, 1)?;
//! packet.check(&v9)?;
//! packet.push_template(&v9)?;
//! packet.push_record(&v9, &SyntheticValues([(1, FieldValue::Unsigned(1500))].into()))?;
//! let bytes = packet.finish(1_700_000_000, 0, &mut Uptime::default());
//! assert_eq!(bytes[..4], [0, 9, 0, 2]); // version 9, a template and a record
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod fields;
pub mod message;
pub mod options;
pub mod split;
pub mod template;
pub mod uptime;

pub use fields::{v9_field, Encoding, NotInV9, V9Field};
pub use message::V9MessageBuilder;
pub use options::V9OptionsTemplate;
pub use split::V9Splitter;
pub use template::{V9Template, V9TemplateError};
pub use uptime::Uptime;

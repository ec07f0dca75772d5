//! Data templates: an id and an ordered list of fields, validated.

use crate::fields::{self, FieldDef, FieldKind, Source};
use crate::suggest;

/// The largest data record that fits in a 65535-byte message
/// (message header 16 and set header 4 bytes).
pub const MAX_RECORD_LEN: usize = 65535 - 16 - 4;

/// Whether fields flowctl cannot fill are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strictness {
    /// For the agent: reject [`Source::Unavailable`] fields.
    Agent,
    /// For synthetic export: accept them, their values come from a flows file.
    Synthetic,
}

/// Why a template is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Template ids 0..=255 are reserved for set ids.
    #[error("template id {0} is reserved: use 256..=65535")]
    IdTooLow(u16),
    /// No such field.
    #[error("template field {name:?} is unknown{}", suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
    UnknownField {
        /// The name as given.
        name: String,
        /// The closest known name, if one is close.
        suggestion: Option<String>,
    },
    /// A field flowctl cannot fill, in an agent template.
    #[error("template field {name:?} is not available: {reason}")]
    Unavailable {
        /// The name as given.
        name: String,
        /// Why flowctl cannot fill it.
        reason: &'static str,
    },
    /// A template without fields.
    #[error("template {0} has no fields")]
    Empty(u16),
    /// The same information element twice (possibly under two names).
    #[error("template field {name:?} appears twice")]
    DuplicateField {
        /// The name of the second occurrence, as given.
        name: String,
    },
    /// Both IPv4 and IPv6 address fields.
    #[error("template {0} has both IPv4 and IPv6 address fields: use one template per IP version")]
    MixedIpVersions(u16),
    /// A record that cannot fit in any message.
    #[error("template {id} records are {bytes} bytes, more than an IPFIX message can carry")]
    TooLong {
        /// The template id.
        id: u16,
        /// The record length.
        bytes: usize,
    },
}

/// A validated data template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// Template id, 256..=65535.
    pub id: u16,
    /// Fields in record order.
    pub fields: Vec<&'static FieldDef>,
}

impl Template {
    /// Builds a template from field names (IANA names or aliases, exact case).
    pub fn new(id: u16, names: &[impl AsRef<str>], strictness: Strictness) -> Result<Template, TemplateError> {
        if id < 256 {
            return Err(TemplateError::IdTooLow(id));
        }
        if names.is_empty() {
            return Err(TemplateError::Empty(id));
        }
        let mut fields: Vec<&'static FieldDef> = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_ref();
            let def = fields::lookup(name).ok_or_else(|| TemplateError::UnknownField {
                name: name.to_string(),
                suggestion: suggest::closest(name, fields::all_names()).map(str::to_string),
            })?;
            if let (Source::Unavailable(reason), Strictness::Agent) = (def.source, strictness) {
                return Err(TemplateError::Unavailable {
                    name: name.to_string(),
                    reason,
                });
            }
            if fields.iter().any(|f| f.id == def.id) {
                return Err(TemplateError::DuplicateField { name: name.to_string() });
            }
            fields.push(def);
        }
        let template = Template { id, fields };
        if template.has_kind(FieldKind::Ipv4Address) && template.has_kind(FieldKind::Ipv6Address) {
            return Err(TemplateError::MixedIpVersions(id));
        }
        let bytes = template.record_length();
        if bytes > MAX_RECORD_LEN {
            return Err(TemplateError::TooLong { id, bytes });
        }
        Ok(template)
    }

    /// Length in bytes of one data record.
    pub fn record_length(&self) -> usize {
        self.fields.iter().map(|f| usize::from(f.length)).sum()
    }

    /// Length in bytes of the template record (header and field specifiers).
    pub fn template_record_length(&self) -> usize {
        4 + 4 * self.fields.len()
    }

    /// 4 if it has IPv4 address fields, 6 if IPv6 ones, None if neither
    /// (then it can carry flows of both versions). [`Template::new`] rejects
    /// templates with both.
    pub fn ip_version(&self) -> Option<u8> {
        if self.has_kind(FieldKind::Ipv4Address) {
            Some(4)
        } else if self.has_kind(FieldKind::Ipv6Address) {
            Some(6)
        } else {
            None
        }
    }

    /// Whether every field can be filled by the agent.
    pub fn is_available(&self) -> bool {
        self.fields.iter().all(|f| f.is_available())
    }

    /// Whether a field of the flow (not of the exporter, such as
    /// `exporterIPv4Address`) is of `kind`.
    fn has_kind(&self, kind: FieldKind) -> bool {
        self.fields
            .iter()
            .any(|f| f.kind == kind && !matches!(f.source, Source::Context(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_below_256_are_rejected() {
        for id in [0u16, 2, 3, 255] {
            assert_eq!(
                Template::new(id, &["octetDeltaCount"], Strictness::Agent),
                Err(TemplateError::IdTooLow(id))
            );
        }
        assert!(Template::new(256, &["octetDeltaCount"], Strictness::Agent).is_ok());
        assert!(Template::new(u16::MAX, &["octetDeltaCount"], Strictness::Agent).is_ok());
    }

    #[test]
    fn empty_and_duplicate_fields_are_rejected() {
        let none: [&str; 0] = [];
        assert_eq!(
            Template::new(300, &none, Strictness::Agent),
            Err(TemplateError::Empty(300))
        );
        let err = Template::new(300, &["vlanId", "octetDeltaCount", "VlanId"], Strictness::Agent);
        assert_eq!(err, Err(TemplateError::DuplicateField { name: "VlanId".into() }));
    }

    #[test]
    fn unknown_fields_get_a_suggestion() {
        let cases = [
            ("sourceipv4address", "sourceIPv4Address"),
            ("octetDeltaCont", "octetDeltaCount"),
        ];
        for (typo, expected) in cases {
            match Template::new(300, &[typo], Strictness::Agent) {
                Err(TemplateError::UnknownField { name, suggestion }) => {
                    assert_eq!(name, typo);
                    assert_eq!(suggestion.as_deref(), Some(expected));
                }
                other => panic!("{typo}: {other:?}"),
            }
        }
        match Template::new(300, &["completelyBogus"], Strictness::Agent) {
            Err(TemplateError::UnknownField { suggestion: None, .. }) => {}
            other => panic!("{other:?}"),
        }
        let message = Template::new(300, &["VlanID"], Strictness::Agent)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("VlanID") && message.contains("did you mean \"VlanId\""),
            "{message}"
        );
    }

    #[test]
    fn unavailable_fields_depend_on_strictness() {
        let unavailable: Vec<&FieldDef> = fields::all().iter().filter(|f| !f.is_available()).collect();
        assert!(!unavailable.is_empty());
        for def in unavailable {
            let Source::Unavailable(reason) = def.source else {
                unreachable!()
            };
            assert_eq!(
                Template::new(400, &[def.name], Strictness::Agent),
                Err(TemplateError::Unavailable {
                    name: def.name.into(),
                    reason
                })
            );
            let t = Template::new(400, &[def.name], Strictness::Synthetic).unwrap();
            assert!(!t.is_available());
            assert_eq!(t.record_length(), usize::from(def.length));
        }
    }

    #[test]
    fn ip_versions_are_detected_and_not_mixed() {
        let v4 = Template::new(300, &["sourceIPv4Address", "octetDeltaCount"], Strictness::Agent).unwrap();
        assert_eq!(v4.ip_version(), Some(4));
        let v6 = Template::new(300, &["destinationIPv6Address"], Strictness::Agent).unwrap();
        assert_eq!(v6.ip_version(), Some(6));
        let any = Template::new(
            300,
            &["packetDeltaCount", "icmpTypeCodeIPv4", "icmpTypeCodeIPv6"],
            Strictness::Agent,
        );
        assert_eq!(any.unwrap().ip_version(), None);
        assert_eq!(
            Template::new(301, &["sourceIPv4Address", "sourceIPv6Address"], Strictness::Agent),
            Err(TemplateError::MixedIpVersions(301))
        );
        assert_eq!(
            Template::new(
                302,
                &["ipNextHopIPv4Address", "sourceIPv6Address"],
                Strictness::Synthetic
            ),
            Err(TemplateError::MixedIpVersions(302))
        );
    }

    #[test]
    fn exporter_addresses_do_not_make_a_template_ip_version_specific() {
        let v6 = Template::new(
            300,
            &["sourceIPv6Address", "exporterIPv4Address", "exporterIPv6Address"],
            Strictness::Agent,
        )
        .unwrap();
        assert_eq!(v6.ip_version(), Some(6));
        let any = Template::new(301, &["exporterIPv4Address", "packetDeltaCount"], Strictness::Agent).unwrap();
        assert_eq!(any.ip_version(), None);
    }

    #[test]
    fn record_length_is_the_sum_of_field_lengths() {
        let names = [
            "octetDeltaCount",
            "sourceIPv6Address",
            "protocolIdentifier",
            "tcpControlBits",
        ];
        let t = Template::new(300, &names, Strictness::Agent).unwrap();
        let expected: usize = names
            .iter()
            .map(|n| usize::from(fields::lookup(n).unwrap().length))
            .sum();
        assert_eq!(t.record_length(), expected);
        assert_eq!(t.template_record_length(), 4 + 4 * names.len());
    }

    #[test]
    fn errors_are_one_line_and_name_the_item() {
        let errors = [
            Template::new(7, &["vlanId"], Strictness::Agent).unwrap_err(),
            Template::new(300, &["bgpSourceAsNumber"], Strictness::Agent).unwrap_err(),
            Template::new(300, &["vlanId", "vlanId"], Strictness::Agent).unwrap_err(),
        ];
        for (err, item) in errors.iter().zip(["7", "bgpSourceAsNumber", "vlanId"]) {
            let text = err.to_string();
            assert!(!text.contains('\n') && text.contains(item), "{text}");
        }
    }
}

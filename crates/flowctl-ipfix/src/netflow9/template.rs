//! Data templates in NetFlow v9 form: flowctl's templates, each field at its
//! v9 type and length (RFC 3954 §5.2).

use super::fields::{v9_field, NotInV9, V9Field};
use crate::fields::FieldDef;
use crate::template::Template;

/// Why a template cannot go over NetFlow v9 as it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum V9TemplateError {
    /// A field v9 has no type for.
    #[error(transparent)]
    NotInV9(#[from] NotInV9),
    /// Two fields that become the same v9 field type.
    #[error("{:?} and {:?} are both v9 field type {field_type} in NetFlow v9: keep one of them", .first.name, .second.name)]
    SameType {
        /// The field kept.
        first: &'static FieldDef,
        /// The field that repeats its type.
        second: &'static FieldDef,
        /// The v9 field type both map to.
        field_type: u16,
    },
}

/// A data template as NetFlow v9 sends it: same id, v9 fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V9Template {
    /// Template id, 256..=65535 (the IPFIX template's).
    pub id: u16,
    /// Fields in record order.
    pub fields: Vec<V9Field>,
}

impl V9Template {
    /// Every field of `t` in v9 form, or the first one v9 cannot carry (for
    /// templates a configuration names: `config check` refuses them).
    pub fn strict(t: &Template) -> Result<V9Template, V9TemplateError> {
        let mut fields: Vec<V9Field> = Vec::with_capacity(t.fields.len());
        for def in &t.fields {
            let f = v9_field(def)?;
            if let Some(first) = fields.iter().find(|g| g.field_type == f.field_type) {
                return Err(V9TemplateError::SameType {
                    first: first.def,
                    second: def,
                    field_type: f.field_type,
                });
            }
            fields.push(f);
        }
        Ok(V9Template { id: t.id, fields })
    }

    /// The fields of `t` that v9 can carry, and the ones it drops (fields
    /// without a v9 type, and a second field of the same v9 type): for the
    /// built-in templates, whose `flowEndReason` v9 lacks.
    pub fn lenient(t: &Template) -> (V9Template, Vec<&'static FieldDef>) {
        let mut fields: Vec<V9Field> = Vec::with_capacity(t.fields.len());
        let mut dropped = Vec::new();
        for def in &t.fields {
            match v9_field(def) {
                Ok(f) if !fields.iter().any(|g| g.field_type == f.field_type) => fields.push(f),
                _ => dropped.push(*def),
            }
        }
        (V9Template { id: t.id, fields }, dropped)
    }

    /// Length in bytes of one data record.
    pub fn record_length(&self) -> usize {
        self.fields.iter().map(|f| usize::from(f.length)).sum()
    }

    /// Length in bytes of the template record (id, count, field specifiers).
    pub fn template_record_length(&self) -> usize {
        4 + 4 * self.fields.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netflow9::fields::{FIRST_SWITCHED, ICMP_TYPE, LAST_SWITCHED, TCP_FLAGS};
    use crate::template::Strictness;

    fn template(names: &[&str]) -> Template {
        Template::new(300, names, Strictness::Agent).unwrap()
    }

    #[test]
    fn a_template_of_shared_fields_converts_with_v9_lengths() {
        let t = template(&[
            "sourceIPv6Address",
            "icmpTypeCodeIPv6",
            "octetDeltaCount",
            "flowStartMilliseconds",
            "flowEndMilliseconds",
            "tcpControlBits",
        ]);
        let v9 = V9Template::strict(&t).unwrap();
        let types: Vec<(u16, u16)> = v9.fields.iter().map(|f| (f.field_type, f.length)).collect();
        assert_eq!(
            types,
            [
                (27, 16),
                (ICMP_TYPE, 2),
                (1, 8),
                (FIRST_SWITCHED, 4),
                (LAST_SWITCHED, 4),
                (TCP_FLAGS, 1)
            ]
        );
        assert_eq!(v9.record_length(), 16 + 2 + 8 + 4 + 4 + 1);
        assert_eq!(v9.template_record_length(), 4 + 4 * 6);
        assert_eq!(V9Template::lenient(&t), (v9, vec![]));
    }

    #[test]
    fn fields_v9_lacks_are_refused_or_dropped() {
        let t = template(&["sourceIPv4Address", "flowEndReason", "packetDeltaCount"]);
        let err = V9Template::strict(&t).unwrap_err();
        assert!(
            matches!(err, V9TemplateError::NotInV9(ref e) if e.def.name == "flowEndReason"),
            "{err}"
        );
        let (v9, dropped) = V9Template::lenient(&t);
        assert_eq!(v9.fields.len(), 2);
        assert_eq!(dropped.iter().map(|d| d.name).collect::<Vec<_>>(), ["flowEndReason"]);

        let both = template(&["icmpTypeCodeIPv4", "icmpTypeCodeIPv6", "packetDeltaCount"]);
        let err = V9Template::strict(&both).unwrap_err().to_string();
        assert_eq!(
            err,
            "\"icmpTypeCodeIPv4\" and \"icmpTypeCodeIPv6\" are both v9 field type 32 in NetFlow v9: keep one of them"
        );
        let (v9, dropped) = V9Template::lenient(&both);
        assert_eq!(v9.fields.len(), 2);
        assert_eq!(dropped[0].name, "icmpTypeCodeIPv6");
    }
}

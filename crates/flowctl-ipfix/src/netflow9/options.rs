//! Options templates in NetFlow v9 form (RFC 3954 §6.1): a v9 scope is one
//! of five types (System, Interface, Line Card, Cache, Template), not an
//! information element, and options fields are v9 field types.
//!
//! flowctl's options templates become:
//! - exporter statistics: scope System (the observation domain, 4 bytes),
//!   `TOTAL_PKTS_EXP` (41) and `TOTAL_FLOWS_EXP` (42); the not-sent and
//!   ignored counters (164..=168) and the exporter addresses (130, 131) are
//!   IPFIX's only and are dropped;
//! - sampling: scope System, `SAMPLING_INTERVAL` (34), `SAMPLING_ALGORITHM` (35);
//! - interface names: scope Interface (the ifindex), `IF_NAME` (82),
//!   `IF_DESC` (83).

use super::fields::LAST_SHARED_TYPE;
use crate::options::{OptionValue, OptionsTemplate, IE_INGRESS_INTERFACE, IE_OBSERVATION_DOMAIN_ID};

/// Scope type System: the exporting device (here, its observation domain).
pub const SCOPE_SYSTEM: u16 = 1;
/// Scope type Interface: an ifindex.
pub const SCOPE_INTERFACE: u16 = 2;

/// An options template as NetFlow v9 sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V9OptionsTemplate {
    /// Template id (the IPFIX options template's).
    pub id: u16,
    /// Scope fields `(scope type, length)`.
    pub scope: Vec<(u16, u16)>,
    /// Options fields `(field type, length)`.
    pub fields: Vec<(u16, u16)>,
    /// For each scope field then each options field, the index of its
    /// value among the IPFIX template's values (scope values, then fields).
    picks: Vec<usize>,
}

impl V9OptionsTemplate {
    /// The v9 form of `t`, or `None` if v9 can express neither its scope
    /// nor any of its fields. Fields above 127 are dropped.
    pub fn from_ipfix(t: &OptionsTemplate) -> Option<V9OptionsTemplate> {
        let mut picks = Vec::new();
        let mut scope = Vec::new();
        for (i, &(ie, len)) in t.scope.iter().enumerate() {
            let scope_type = match ie {
                IE_OBSERVATION_DOMAIN_ID => SCOPE_SYSTEM,
                IE_INGRESS_INTERFACE => SCOPE_INTERFACE,
                _ => return None,
            };
            scope.push((scope_type, len));
            picks.push(i);
        }
        let mut fields = Vec::new();
        for (i, &(ie, len)) in t.fields.iter().enumerate() {
            if ie <= LAST_SHARED_TYPE {
                fields.push((ie, len));
                picks.push(t.scope.len() + i);
            }
        }
        (!scope.is_empty() && !fields.is_empty()).then_some(V9OptionsTemplate {
            id: t.id,
            scope,
            fields,
            picks,
        })
    }

    /// The values of a record, in this template's order, from the values
    /// of the IPFIX template's record (missing ones are zeros).
    pub fn pick<'a>(&'a self, values: &'a [OptionValue]) -> impl Iterator<Item = Option<&'a OptionValue>> + 'a {
        self.picks.iter().map(move |&i| values.get(i))
    }

    /// Scope fields then options fields, in record order.
    pub fn all_fields(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        self.scope.iter().chain(self.fields.iter()).copied()
    }

    /// Length in bytes of one options data record.
    pub fn record_length(&self) -> usize {
        self.all_fields().map(|(_, len)| usize::from(len)).sum()
    }

    /// Length in bytes of the options template record (id, the two lengths,
    /// field specifiers), without padding.
    pub fn template_record_length(&self) -> usize {
        6 + 4 * (self.scope.len() + self.fields.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{exporter_stats_template, interface_names_template, sampling_template};

    #[test]
    fn flowctl_options_templates_keep_what_v9_can_express() {
        let stats = V9OptionsTemplate::from_ipfix(&exporter_stats_template(65000)).unwrap();
        assert_eq!(stats.scope, [(SCOPE_SYSTEM, 4)]);
        assert_eq!(stats.fields, [(41, 8), (42, 8)]);
        let values: Vec<OptionValue> = (0..10).map(OptionValue::Unsigned).collect();
        let picked: Vec<_> = stats.pick(&values).map(|v| v.cloned()).collect();
        assert_eq!(
            picked,
            [0, 1, 2].map(|v| Some(OptionValue::Unsigned(v))),
            "scope, then the two kept counters"
        );
        let sampling = V9OptionsTemplate::from_ipfix(&sampling_template(65001)).unwrap();
        assert_eq!(
            (sampling.scope.clone(), sampling.fields.clone()),
            (vec![(1, 4)], vec![(34, 4), (35, 1)])
        );
        assert_eq!(sampling.record_length(), 9);
        assert_eq!(sampling.template_record_length(), 6 + 12);
        let names = V9OptionsTemplate::from_ipfix(&interface_names_template(65002)).unwrap();
        assert_eq!(names.scope, [(SCOPE_INTERFACE, 4)]);
        assert_eq!(names.fields, [(82, 16), (83, 64)]);
    }

    #[test]
    fn templates_v9_cannot_express_are_left_out() {
        let unknown_scope = OptionsTemplate {
            id: 400,
            scope: vec![(143, 4)],
            fields: vec![(41, 8)],
        };
        assert_eq!(V9OptionsTemplate::from_ipfix(&unknown_scope), None);
        let only_ipfix_fields = OptionsTemplate {
            id: 401,
            scope: vec![(IE_OBSERVATION_DOMAIN_ID, 4)],
            fields: vec![(166, 8), (130, 4)],
        };
        assert_eq!(V9OptionsTemplate::from_ipfix(&only_ipfix_fields), None);
    }
}

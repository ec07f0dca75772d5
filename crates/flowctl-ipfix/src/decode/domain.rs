//! The templates known in one observation domain: ipfixrw's copy, and the
//! decoder's own view of each (field order, scope, registry types).

use std::collections::HashMap;

use ipfixrw::parser::{DataRecordKey, DataRecordType};
use ipfixrw::template_store::{ExpandedFieldSpecifier, Template};

use super::bridge::Store;

/// Field length meaning "variable length" (RFC 7011 §7).
const VARIABLE_LENGTH: u16 = 65535;

/// One field of a known template.
#[derive(Clone, Debug)]
pub struct FieldInfo {
    pub id: u16,
    pub enterprise: Option<u32>,
    /// The key of its value in ipfixrw's data records.
    pub key: DataRecordKey,
    /// The registry type, for elements in the registry.
    pub ty: Option<DataRecordType>,
    /// IANA name, or `ie<N>` (`ie<PEN>.<N>` for enterprise elements).
    pub name: String,
}

/// A known template.
#[derive(Clone, Debug)]
pub struct TemplateInfo {
    pub options: bool,
    pub scope_count: u16,
    pub fields: Vec<FieldInfo>,
    /// Smallest possible record length (a variable-length field takes at
    /// least 1 byte); 0 means records cannot be delimited.
    pub min_record_len: usize,
}

/// The templates of one observation domain.
#[derive(Debug, Default)]
pub struct Domain {
    /// ipfixrw's templates, with field types it cannot read at their length
    /// replaced by raw bytes.
    pub store: Store,
    /// The decoder's view of the same templates.
    pub known: HashMap<u16, TemplateInfo>,
}

impl Domain {
    /// Records the template `id` that ipfixrw has just stored, and makes every
    /// field of it readable by ipfixrw.
    pub fn learn(&mut self, id: u16, options: bool, scope_count: u16) {
        let Some(template) = self.store.get_mut(&id) else {
            self.known.remove(&id);
            return;
        };
        let specs = match template {
            Template::Template(specs) | Template::OptionsTemplate(specs) => specs,
        };
        let fields = specs.iter().map(field_info).collect();
        let min_record_len = specs
            .iter()
            .map(|s| {
                if s.field_length == VARIABLE_LENGTH {
                    1
                } else {
                    usize::from(s.field_length)
                }
            })
            .sum();
        for spec in specs.iter_mut() {
            if !readable(spec.ty, spec.field_length) {
                spec.ty = DataRecordType::Bytes;
            }
        }
        self.known.insert(
            id,
            TemplateInfo {
                options,
                scope_count,
                fields,
                min_record_len,
            },
        );
    }

    /// Fields of every template of the domain.
    pub fn field_count(&self) -> usize {
        self.known.values().map(|t| t.fields.len()).sum()
    }

    /// Drops from ipfixrw's store what the decoder has not learnt.
    pub fn forget_unknown(&mut self) {
        let known = &self.known;
        self.store.retain(|id, _| known.contains_key(id));
    }

    /// Forgets template `id`.
    pub fn withdraw(&mut self, id: u16) {
        self.store.remove(&id);
        self.known.remove(&id);
    }

    /// Forgets all templates (`options` false) or all options templates.
    pub fn withdraw_all(&mut self, options: bool) {
        self.known.retain(|_, t| t.options != options);
        let known = &self.known;
        self.store.retain(|id, _| known.contains_key(id));
    }
}

fn field_info(spec: &ExpandedFieldSpecifier) -> FieldInfo {
    let id = spec.information_element_identifier;
    let (ty, name) = match &spec.name {
        // The registry type: `spec.ty` may already be the raw-bytes stand-in
        // `Domain::learn` puts in, when one set defines the template twice.
        DataRecordKey::Str(name) => {
            let registry = super::bridge::formatter()
                .get(&(spec.enterprise_number.unwrap_or(0), id))
                .map(|e| e.1);
            (Some(registry.unwrap_or(spec.ty)), (*name).to_string())
        }
        _ => (
            None,
            match spec.enterprise_number {
                Some(pen) => format!("ie{pen}.{id}"),
                None => format!("ie{id}"),
            },
        ),
    };
    FieldInfo {
        id,
        enterprise: spec.enterprise_number,
        key: spec.name.clone(),
        ty,
        name,
    }
}

/// Whether ipfixrw reads a field of this type and length without error
/// (strings are read as bytes, so that invalid UTF-8 is not an error).
fn readable(ty: DataRecordType, length: u16) -> bool {
    match ty {
        DataRecordType::UnsignedInt | DataRecordType::SignedInt => matches!(length, 1 | 2 | 4 | 8),
        DataRecordType::Float => matches!(length, 4 | 8),
        DataRecordType::Bool => length == 1,
        DataRecordType::MacAddress => length == 6,
        DataRecordType::Bytes => true,
        DataRecordType::String => false,
        DataRecordType::DateTimeSeconds | DataRecordType::Ipv4Addr => length == 4,
        DataRecordType::DateTimeMilliseconds
        | DataRecordType::DateTimeMicroseconds
        | DataRecordType::DateTimeNanoseconds => length == 8,
        DataRecordType::Ipv6Addr => length == 16,
    }
}

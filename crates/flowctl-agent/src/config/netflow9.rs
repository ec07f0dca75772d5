//! The configuration checks of NetFlow v9 collectors (`protocol: netflow9`).
//!
//! Templates are shared by every collector. Configured templates must be
//! sendable over v9 as they are: a field v9 has no type for is refused,
//! naming the template, the field and the reason. The built-in templates
//! go to v9 collectors without the fields v9 lacks (`flowEndReason`).

use flowctl_ipfix::{
    netflow9::{V9MessageBuilder, V9Template, V9TemplateError},
    template::Template,
};

use super::CollectorSpec;

/// Checks that `templates` can go to collector `index`, a v9 one: each
/// configured template whole (`configured`), each template and a record
/// within its packet size. Errors are (key, problem).
pub fn check(
    index: usize,
    c: &CollectorSpec,
    templates: &[Template],
    configured: bool,
) -> Result<(), (String, String)> {
    let size_key = || format!("collectors[{index}].maxMessageSize");
    let builder =
        V9MessageBuilder::new(c.max_message_size, c.observation_domain_id).map_err(|e| (size_key(), e.to_string()))?;
    for (j, t) in templates.iter().enumerate() {
        let v9 = if configured {
            V9Template::strict(t).map_err(|e| (format!("templates[{j}].fields"), problem(index, &e)))?
        } else {
            V9Template::lenient(t).0
        };
        builder.check(&v9).map_err(|e| (size_key(), e.to_string()))?;
    }
    Ok(())
}

/// `e` told for collector `index`.
fn problem(index: usize, e: &V9TemplateError) -> String {
    let protocol = format!("NetFlow v9 (the protocol of collectors[{index}])");
    match e {
        V9TemplateError::NotInV9(e) => format!(
            "{:?} (IPFIX IE {}) cannot go over {protocol}: {}",
            e.def.name, e.def.id, e.reason
        ),
        V9TemplateError::SameType {
            first,
            second,
            field_type,
        } => format!(
            "{:?} and {:?} are both field type {field_type} in {protocol}: keep one of them",
            first.name, second.name
        ),
    }
}

/// The fields the built-in templates lose over v9, each named once.
pub fn dropped_fields(templates: &[Template]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for t in templates {
        for def in V9Template::lenient(t).1 {
            if !names.contains(&def.name) {
                names.push(def.name);
            }
        }
    }
    names
}

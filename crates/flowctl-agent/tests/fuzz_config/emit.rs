//! A small YAML writer for the generated trees, in block or flow style. A
//! string wrapped in [`MARK`]s is written as raw YAML text instead (huge
//! numbers, tags, aliases, nesting that no tree value can express).

use serde_yaml_ng::Value;

/// Wraps raw YAML text in a string value.
const MARK: char = '\u{1}';

/// A value written as the raw YAML `text`.
pub fn raw(text: &str) -> Value {
    Value::String(format!("{MARK}{text}{MARK}"))
}

/// `v` as a YAML document.
pub fn document(v: &Value, flow: bool) -> String {
    let mut out = String::new();
    match v {
        Value::Mapping(m) if !flow && !m.is_empty() => entries(v, 0, &mut out),
        Value::Sequence(s) if !flow && !s.is_empty() => entries(v, 0, &mut out),
        _ => {
            inline(v, &mut out);
            out.push('\n');
        }
    }
    out
}

/// The entries of a non-empty mapping or sequence, one per line at `indent`.
fn entries(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                out.push_str(&pad);
                inline(k, out);
                out.push(':');
                after_indicator(v, indent + 2, out);
            }
        }
        Value::Sequence(s) => {
            for v in s {
                out.push_str(&pad);
                out.push('-');
                after_indicator(v, indent + 2, out);
            }
        }
        _ => unreachable!("only collections have entries"),
    }
}

/// A value after `key:` or `-`: inline, or its entries on the next lines.
fn after_indicator(v: &Value, indent: usize, out: &mut String) {
    let nested = match v {
        Value::Mapping(m) => !m.is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        _ => false,
    };
    if nested {
        out.push('\n');
        entries(v, indent, out);
    } else {
        out.push(' ');
        inline(v, out);
        out.push('\n');
    }
}

/// `v` on one line (flow style for collections).
fn inline(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push('~'),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => match s.strip_prefix(MARK).and_then(|s| s.strip_suffix(MARK)) {
            Some(text) => out.push_str(text),
            None => string(s, out),
        },
        Value::Sequence(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                inline(item, out);
            }
            out.push(']');
        }
        Value::Mapping(m) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                inline(k, out);
                out.push_str(": ");
                inline(v, out);
            }
            out.push('}');
        }
        Value::Tagged(t) => {
            out.push_str(&format!("{} ", t.tag));
            inline(&t.value, out);
        }
    }
}

/// A string: plain when it cannot be read as anything else, else double-quoted.
fn string(s: &str, out: &mut String) {
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.:/@-".contains(c))
        && !s.ends_with(':')
        && !["true", "false", "null", "yes", "no", "on", "off", "y", "n"].contains(&s.to_lowercase().as_str())
        && s.parse::<f64>().is_err();
    if plain {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if !printable(c) || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04X}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08X}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// YAML's printable characters (YAML 1.2 §5.1).
fn printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

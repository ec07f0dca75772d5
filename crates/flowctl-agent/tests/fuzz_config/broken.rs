//! Breaking valid configurations: edits of the YAML tree (wrong types,
//! unknown, misspelt and missing keys, odd values) and of the text.

use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde_yaml_ng::Value;

use crate::emit::{self, raw};
use crate::valid::{s, ConfigGen};

/// Strings that are hard on parsers and on one-line error messages.
pub fn weird_string() -> BoxedStrategy<String> {
    let fixed = select(vec![
        "",
        " ",
        "\t",
        "a\nb",
        "line\r\nbreak",
        "\u{0}",
        "nul\u{0}inside",
        "\u{1b}[31mred\u{1b}[0m",
        "\u{202e}txet desrever",
        "\u{feff}bom",
        "\u{2028}sep\u{2029}",
        "\u{85}next line",
        "e\u{301}\u{301}\u{301}",
        "💥🦀",
        "日本語",
        "`backtick`",
        "\"quoted\"",
        "'single'",
        "key: value",
        "- item",
        "&anchor",
        "*alias",
        "!!str",
        "#comment",
        "{a: 1}",
        "[1, 2]",
        "127.0.0.1",
        "[::1]",
        "127.0.0.1:99999",
        "egress\n",
        "30 parsecs",
        "0s",
        "-5s",
        "18446744073709551616s",
        "sourceIPv4Adress",
        "octetDeltaCount\noctetDeltaCount",
    ])
    .prop_map(str::to_string);
    let random = prop::collection::vec(
        prop_oneof![
            4 => any::<char>(),
            4 => select("abz09:-_ .{}[]&*!#|>'\"%@`,?\\\n\r\t".chars().collect::<Vec<_>>()),
        ],
        0..24,
    )
    .prop_map(|c| c.into_iter().collect::<String>());
    let long = (select(vec!["a", "é", "💥", "\n"]), 300usize..1000).prop_map(|(c, n)| c.repeat(n));
    prop_oneof![6 => fixed, 6 => random, 1 => long].boxed()
}

/// Raw YAML put in place of a value: numbers too large for any type, tags,
/// aliases, odd scalars.
const RAW_YAML: &[&str] = &[
    "18446744073709551616",
    "-9223372036854775809",
    "340282366920938463463374607431768211456",
    "1e400",
    "-1e-400",
    ".nan",
    "-.inf",
    "0x_ff",
    "0o777",
    "0b101",
    "+12",
    "1_000",
    "~",
    "!!binary aGVsbG8=",
    "!!str 12",
    "!!int x",
    "!custom {a: 1}",
    "!!map [1]",
    "*undefined",
    "&a [*a]",
    "&x 5",
    "{a: &b [1, 2], c: *b, d: *b}",
    "? [complex, key]\n  : value",
    "\"unterminated",
    "'unterminated",
    "{",
    "]",
    "|\n  literal\n  block",
    ">-\n  folded",
    "- - - -",
    "\"\\u0000\\x1b\\N\"",
    "\"\\ud800\"",
];

/// A value of any type, odd ones first.
fn weird_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        select(vec![
            0u64,
            1,
            255,
            256,
            65535,
            65536,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            u64::MAX
        ])
        .prop_map(Value::from),
        select(vec![-1i64, i64::MIN, -65536]).prop_map(Value::from),
        select(vec![f64::NAN, f64::INFINITY, -0.0, 1.5, 1e300, f64::MIN_POSITIVE]).prop_map(Value::from),
        weird_string().prop_map(Value::String),
        select(RAW_YAML).prop_map(raw),
        (0usize..300).prop_map(|depth| raw(&format!("{}1{}", "[".repeat(depth), "]".repeat(depth)))),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            prop::collection::vec((weird_key(), inner), 0..4).prop_map(|kv| Value::Mapping(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Bad values of the right type for each key, as raw YAML.
const BAD_VALUES: &[(&str, &[&str])] = &[
    (
        "name",
        &[
            "\"\"",
            "a/b",
            "\"with space\"",
            "sixteen-chars-xx",
            "\"tab\\tname\"",
            "\"nl\\nname\"",
        ],
    ),
    ("netns", &["\"\"", "\"../../etc\""]),
    ("direction", &["up", "Egress", "\"both \"", "\"\"", "\"in\\ngress\""]),
    ("maxFlows", &["0", "1", "4294967295", "4294967296", "-1"]),
    ("detachOnExit", &["yes", "1", "\"true\""]),
    (
        "address",
        &[
            "nowhere",
            "\"127.0.0.1\"",
            "\"[::1]\"",
            "\"1.2.3.4:99999\"",
            "\"\"",
            "\"[::1]:-1\"",
            "\":4739\"",
        ],
    ),
    (
        "localAddress",
        &["\"[::1]:0\"", "\"127.0.0.1:0\"", "nowhere", "\"0.0.0.0:65536\""],
    ),
    ("transport", &["sctp", "UDP", "\"\"", "\"tcp\\n\""]),
    ("observationDomainId", &["4294967296", "-1", "0"]),
    (
        "maxMessageSize",
        &["0", "255", "256", "300", "65535", "65536", "4294967295"],
    ),
    ("idleTimeout", DURATIONS),
    ("tcp", DURATIONS),
    ("udp", DURATIONS),
    ("icmp", DURATIONS),
    ("other", DURATIONS),
    ("activeTimeout", DURATIONS),
    ("tcpEndGrace", DURATIONS),
    ("templateRefresh", DURATIONS),
    ("scanInterval", DURATIONS),
    (
        "id",
        &["0", "2", "255", "256", "65000", "65001", "65535", "65536", "-1"],
    ),
    ("fields", FIELD_LISTS),
    ("template", FIELD_LISTS),
    ("interfaces", &["[]", "~"]),
    ("collectors", &["[]", "~", "{}"]),
    ("templates", &["[]", "~"]),
    ("timers", &["~", "{}"]),
    ("idleTimeouts", &["~", "{}"]),
];

/// Bad durations.
const DURATIONS: &[&str] = &[
    "0s",
    "\"\"",
    "5 parsecs",
    "\"1\"",
    "-1s",
    "99999999999999999999999d",
    "18446744073709551615s",
    "584942417355y",
    "1e3s",
    "1h 0m",
    "0ns",
    "1ns",
    "500 ms",
    "\"1s\\n\"",
];

/// Bad field lists.
const FIELD_LISTS: &[&str] = &[
    "[]",
    "[octetDeltaCounts]",
    "[bgpSourceAsNumber]",
    "[BgpSourceAsNumber]",
    "[octetDeltaCount, OctetDeltaCount]",
    "[sourceIPv4Address, sourceIPv6Address]",
    "[sourceIPv4Address]",
    "[sourceIPv6Address]",
    "[{name: octetDeltaCount, extra: 1}]",
    "[{}]",
    "[[octetDeltaCount]]",
    "[\"\"]",
    "[\"octetDeltaCount\\n\"]",
    "[ipv4Address]",
];

/// Mapping keys: real ones (misplaced or misspelt), odd strings, non-strings.
fn weird_key() -> BoxedStrategy<Value> {
    let real = select(vec![
        "interfaces",
        "name",
        "netns",
        "direction",
        "maxFlows",
        "detachOnExit",
        "collectors",
        "address",
        "transport",
        "localAddress",
        "observationDomainId",
        "maxMessageSize",
        "timers",
        "idleTimeout",
        "idleTimeouts",
        "tcp",
        "udp",
        "icmp",
        "other",
        "activeTimeout",
        "tcpEndGrace",
        "templateRefresh",
        "scanInterval",
        "templates",
        "id",
        "fields",
        "template",
    ]);
    let misspelt = (real.clone(), 0usize..4).prop_map(|(k, how)| match how {
        0 => k.to_lowercase(),
        1 => k.to_uppercase(),
        2 => format!("{k}s"),
        _ => k.replace(|c: char| c.is_uppercase(), "_"),
    });
    prop_oneof![
        3 => real.prop_map(s),
        3 => misspelt.prop_map(Value::String),
        3 => weird_string().prop_map(Value::String),
        1 => any::<i64>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Sequence(vec![s("complex")])),
    ]
    .boxed()
}

/// One change to the YAML tree; indices pick nodes.
#[derive(Clone, Debug)]
pub enum TreeEdit {
    /// Replaces the value of one `key` entry by raw YAML of the right type
    /// but a bad value.
    SetKey(&'static str, &'static str, Index),
    Replace(Index, Value),
    AddKey(Index, Value, Value),
    RemoveKey(Index, Index),
    Wrap(Index, bool),
    DuplicateItem(Index),
}

fn tree_edit() -> impl Strategy<Value = TreeEdit> {
    let bad = select(
        BAD_VALUES
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (*k, *v)))
            .collect::<Vec<_>>(),
    );
    prop_oneof![
        6 => (bad, any::<Index>()).prop_map(|((k, v), i)| TreeEdit::SetKey(k, v, i)),
        4 => (any::<Index>(), weird_value()).prop_map(|(i, v)| TreeEdit::Replace(i, v)),
        2 => (any::<Index>(), weird_key(), weird_value()).prop_map(|(i, k, v)| TreeEdit::AddKey(i, k, v)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(i, k)| TreeEdit::RemoveKey(i, k)),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(i, seq)| TreeEdit::Wrap(i, seq)),
        1 => any::<Index>().prop_map(TreeEdit::DuplicateItem),
    ]
}

/// Number of nodes in `v`.
fn node_count(v: &Value) -> usize {
    1 + match v {
        Value::Sequence(s) => s.iter().map(node_count).sum(),
        Value::Mapping(m) => m.values().map(node_count).sum(),
        _ => 0,
    }
}

/// The node numbered `n` in pre-order (counting down `n`).
fn walk<'a>(v: &'a mut Value, n: &mut usize) -> Option<&'a mut Value> {
    if *n == 0 {
        return Some(v);
    }
    *n -= 1;
    match v {
        Value::Sequence(s) => s.iter_mut().find_map(|c| walk(c, n)),
        Value::Mapping(m) => m.values_mut().find_map(|c| walk(c, n)),
        _ => None,
    }
}

/// The node `index` picks among all nodes of `root`.
fn nth_node<'a>(root: &'a mut Value, index: &Index) -> &'a mut Value {
    let mut n = index.index(node_count(root));
    walk(root, &mut n).expect("the index is below the node count")
}

/// The values of every mapping entry named `key`, in pre-order.
fn entries_named<'a>(v: &'a mut Value, key: &str, out: &mut Vec<&'a mut Value>) {
    match v {
        Value::Sequence(s) => s.iter_mut().for_each(|c| entries_named(c, key, out)),
        Value::Mapping(m) => {
            for (k, c) in m.iter_mut() {
                if k.as_str() == Some(key) {
                    out.push(c);
                } else {
                    entries_named(c, key, out);
                }
            }
        }
        _ => {}
    }
}

fn apply_tree_edit(root: &mut Value, edit: &TreeEdit) {
    match edit {
        TreeEdit::SetKey(key, value, i) => {
            let mut found = Vec::new();
            entries_named(root, key, &mut found);
            if !found.is_empty() {
                let n = i.index(found.len());
                *found.swap_remove(n) = raw(value);
            }
        }
        TreeEdit::Replace(i, value) => *nth_node(root, i) = value.clone(),
        TreeEdit::AddKey(i, key, value) => match nth_node(root, i) {
            Value::Mapping(m) => {
                m.insert(key.clone(), value.clone());
            }
            other => *other = Value::Mapping([(key.clone(), value.clone())].into_iter().collect()),
        },
        TreeEdit::RemoveKey(i, k) => match nth_node(root, i) {
            Value::Mapping(m) if !m.is_empty() => {
                let key = m.keys().nth(k.index(m.len())).cloned();
                if let Some(key) = key {
                    m.remove(&key);
                }
            }
            Value::Sequence(s) if !s.is_empty() => {
                s.remove(k.index(s.len()));
            }
            _ => {}
        },
        TreeEdit::Wrap(i, seq) => {
            let node = nth_node(root, i);
            let inner = std::mem::take(node);
            *node = if *seq {
                Value::Sequence(vec![inner])
            } else {
                Value::Mapping([(s("value"), inner)].into_iter().collect())
            };
        }
        TreeEdit::DuplicateItem(i) => {
            if let Value::Sequence(s) = nth_node(root, i) {
                if let Some(first) = s.first().cloned() {
                    s.push(first);
                }
            }
        }
    }
}

/// One change to the YAML text; indices pick character positions or lines.
#[derive(Clone, Debug)]
pub enum TextEdit {
    Truncate(Index),
    Delete(Index, usize),
    Insert(Index, &'static str),
    DuplicateLine(Index),
    Indent(Index, &'static str),
}

fn text_edit() -> impl Strategy<Value = TextEdit> {
    let snippet = select(vec![
        ":",
        ": ",
        "- ",
        "-",
        "\t",
        "\n",
        "  ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "\"",
        "'",
        "&a ",
        "*a",
        "!!",
        "!",
        "%YAML 1.2\n---\n",
        "---\n",
        "\n...\n",
        "#",
        " #",
        "\u{feff}",
        "\r",
        "\u{0}",
        "|",
        ">",
        "?",
        "@",
        "`",
        "\u{85}",
        "\u{2028}",
        "💥",
    ]);
    prop_oneof![
        1 => any::<Index>().prop_map(TextEdit::Truncate),
        1 => (any::<Index>(), 1usize..20).prop_map(|(i, n)| TextEdit::Delete(i, n)),
        3 => (any::<Index>(), snippet).prop_map(|(i, s)| TextEdit::Insert(i, s)),
        1 => any::<Index>().prop_map(TextEdit::DuplicateLine),
        1 => (any::<Index>(), select(vec![" ", "\t", "    "])).prop_map(|(i, s)| TextEdit::Indent(i, s)),
    ]
}

fn apply_text_edit(text: &mut String, edit: &TextEdit) {
    let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
    let at = |i: &Index| boundaries[i.index(boundaries.len())];
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    match edit {
        TextEdit::Truncate(i) => text.truncate(at(i)),
        TextEdit::Delete(i, n) => {
            let k = i.index(boundaries.len());
            let end = boundaries[(k + n).min(boundaries.len() - 1)];
            text.replace_range(boundaries[k]..end, "");
        }
        TextEdit::Insert(i, snippet) => text.insert_str(at(i), snippet),
        TextEdit::DuplicateLine(i) if !lines.is_empty() => {
            let k = i.index(lines.len());
            let mut out: Vec<&str> = lines.clone();
            out.insert(k, lines[k]);
            *text = out.concat();
        }
        TextEdit::Indent(i, prefix) if !lines.is_empty() => {
            let k = i.index(lines.len());
            *text = lines
                .iter()
                .enumerate()
                .map(|(j, l)| if j == k { format!("{prefix}{l}") } else { l.to_string() })
                .collect();
        }
        _ => {}
    }
}

/// A valid configuration's YAML tree with some edits, then text edits.
#[derive(Clone, Debug)]
pub struct Broken {
    config: ConfigGen,
    tree: Vec<TreeEdit>,
    text: Vec<TextEdit>,
}

pub fn broken_config() -> impl Strategy<Value = Broken> {
    (
        crate::valid::valid_config(),
        prop::collection::vec(tree_edit(), 0..=3),
        prop::collection::vec(text_edit(), 0..=1),
    )
        .prop_filter("at least one edit", |(_, tree, text)| {
            !tree.is_empty() || !text.is_empty()
        })
        .prop_map(|(config, tree, text)| Broken { config, tree, text })
}

impl Broken {
    /// The broken configuration's text.
    pub fn text(&self) -> String {
        let mut tree = self.config.to_yaml();
        for edit in &self.tree {
            apply_tree_edit(&mut tree, edit);
        }
        let mut text = emit::document(&tree, self.config.flow);
        for edit in &self.text {
            apply_text_edit(&mut text, edit);
        }
        text
    }
}

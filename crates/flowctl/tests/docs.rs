//! The documentation says what the code does: every field of the registry is
//! in docs/configuration.md with its IE id and length, every example config
//! validates, and the built-in templates are the documented ones.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use flowctl_ipfix::{fields, template::Strictness, Source};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn every_field_is_documented_with_its_id_and_length() {
    let doc = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    for f in fields::all() {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` ", f.name)))
            .unwrap_or_else(|| panic!("{} is not in docs/configuration.md", f.name));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[2], f.id.to_string(), "IE id of {}", f.name);
        assert_eq!(cells[3], f.length.to_string(), "length of {}", f.name);
        for alias in f.aliases {
            assert!(cells[1].contains(&format!("`{alias}`")), "alias {alias} of {}", f.name);
        }
        assert_eq!(
            cells[4].contains("not available"),
            matches!(f.source, Source::Unavailable(_)),
            "availability of {}",
            f.name
        );
    }
}

#[test]
fn every_field_netflow9_refuses_is_named_in_its_section() {
    let doc = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    let section = doc
        .split("\n## NetFlow v9\n")
        .nth(1)
        .expect("docs/configuration.md has a NetFlow v9 section");
    let section = section.split("\n## ").next().unwrap();
    for f in fields::all() {
        if let Err(e) = flowctl_ipfix::netflow9::v9_field(f) {
            assert!(
                section.contains(&format!("`{}`", f.name)),
                "{e}: not in the NetFlow v9 section"
            );
        }
    }
}

#[test]
fn example_configurations_are_valid() {
    for name in ["agent.yaml", "elastiflow.yaml", "linux-flow-exporter.yaml"] {
        let path = repo().join("configs").join(name);
        flowctl_agent::config::load(&path, Strictness::Agent).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn documented_built_in_templates_match_the_code() {
    let doc = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    let flat = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    let listed = flowctl_agent::config::default_fields(4).join(", ");
    assert!(
        flat.contains(&format!("256 = `{listed}`")),
        "docs list the IPv4 built-in template: {listed}"
    );
}

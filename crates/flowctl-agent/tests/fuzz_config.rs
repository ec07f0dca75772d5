//! Bounded fuzzing of the agent configuration (`config::parse` then
//! `config::validate`) with proptest, run by `cargo test`.
//!
//! Inputs are valid configurations built here, then broken: values of the
//! wrong type, unknown and misspelt keys, missing keys, huge numbers, odd
//! unicode and raw YAML (tags, aliases, deep nesting), then text edits
//! (truncation, stray indicators, tabs, duplicated lines). Properties:
//! nothing panics; every error is one line starting with the file name; a
//! valid configuration reads back as exactly what was generated.
//!
//! Deterministic by default (fixed seed); `PROPTEST_RNG_SEED=<n>` and
//! `PROPTEST_CASES=<n>` explore further.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fuzz_config/broken.rs"]
mod broken;
#[path = "fuzz_config/emit.rs"]
mod emit;
#[path = "fuzz_config/valid.rs"]
mod valid;

use std::cell::Cell;
use std::net::SocketAddr;

use flowctl_agent::config::{self, ConfigError};
use flowctl_ipfix::Strictness;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestRunner};
use serde_yaml_ng::Value;

/// The name errors must start with.
const FILE: &str = "fuzz/agent.yaml";
/// Cases per property (10,000 take a few seconds in a debug build).
const CASES: u32 = 10_000;

fn runner(seed: u64) -> TestRunner {
    let mut config = Config {
        cases: CASES,
        failure_persistence: None,
        // ChaCha (the default) dominates the run time in a debug build.
        rng_algorithm: RngAlgorithm::XorShift,
        // Bounds the time a failure takes to shrink (milliseconds).
        max_shrink_time: 60_000,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_some() {
        config.cases = Config::default().cases;
    }
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(seed);
    }
    TestRunner::new(config)
}

// ---------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------

/// Exactly one line (no control character at all: no line break, no
/// terminal escape), starting with the file name, with a problem.
fn check_error(e: &ConfigError) -> Result<(), TestCaseError> {
    let text = e.to_string();
    prop_assert!(
        !text.contains(char::is_control),
        "error is not one plain line: {text:?}"
    );
    prop_assert!(
        text.starts_with(&format!("{FILE}: ")),
        "error does not name the file: {text:?}"
    );
    prop_assert!(!e.problem.is_empty(), "{e:?}");
    Ok(())
}

/// Whether validating `text` could resolve a host name (DNS): some string
/// in it looks like `host:port` without an IP address. A test sends no
/// traffic, so such configurations are only parsed.
fn may_resolve(text: &str) -> bool {
    fn lookup(s: &str) -> bool {
        s.parse::<SocketAddr>().is_err() && s.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    }
    fn any_lookup(v: &Value) -> bool {
        match v {
            Value::String(s) => lookup(s),
            Value::Sequence(items) => items.iter().any(any_lookup),
            Value::Mapping(m) => m.iter().any(|(k, v)| any_lookup(k) || any_lookup(v)),
            Value::Tagged(t) => any_lookup(&t.value),
            _ => false,
        }
    }
    serde_yaml_ng::from_str::<Value>(text).map_or(true, |v| any_lookup(&v))
}

/// What the text led to.
#[derive(Debug, PartialEq)]
enum Outcome {
    ParseError,
    /// Parsed; not validated because it could resolve a host name.
    NotValidated,
    Invalid,
    Valid,
}

/// Parses and validates `text`, checking every error. Returns the outcome
/// under `Strictness::Agent`.
fn parse_and_validate(text: &str) -> Result<Outcome, TestCaseError> {
    let file = match config::parse(text, FILE) {
        Ok(file) => file,
        Err(e) => {
            check_error(&e)?;
            return Ok(Outcome::ParseError);
        }
    };
    if may_resolve(text) {
        return Ok(Outcome::NotValidated);
    }
    let mut outcome = Outcome::Valid;
    for strictness in [Strictness::Agent, Strictness::Synthetic] {
        if let Err(e) = config::validate(&file, FILE, strictness) {
            check_error(&e)?;
            if strictness == Strictness::Agent {
                outcome = Outcome::Invalid;
            }
        }
    }
    Ok(outcome)
}

#[test]
fn valid_configurations_read_back_as_generated() {
    runner(0x0c0f_1600)
        .run(&valid::valid_config(), |g| {
            let text = g.text();
            let file = config::parse(&text, FILE).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            let c = config::validate(&file, FILE, Strictness::Agent)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            g.check(&c)
        })
        .unwrap();
}

#[test]
fn broken_configurations_never_panic_and_errors_are_one_line() {
    let counts = Cell::new([0u32; 4]);
    runner(0x0bad_c0f1)
        .run(&broken::broken_config(), |b| {
            let outcome = parse_and_validate(&b.text())?;
            let mut c = counts.get();
            c[outcome as usize] += 1;
            counts.set(c);
            Ok(())
        })
        .unwrap();
    let [parse_errors, not_validated, invalid, valid] = counts.get();
    println!(
        "broken configurations: {parse_errors} parse errors, {invalid} refused by validation, \
         {valid} still valid, {not_validated} not validated (host names)"
    );
    // The cases reach the parser's errors, the validator's, and success.
    let total = parse_errors + not_validated + invalid + valid;
    assert!(
        parse_errors > total / 10 && invalid > total / 20 && valid > 0 && not_validated < total / 20,
        "{:?}",
        counts.get()
    );
}

#[test]
fn random_text_never_panics() {
    let text = prop::collection::vec(
        prop_oneof![
            any::<char>(),
            select(":-{}[],&*!|>'\"#%@?\n\t ".chars().collect::<Vec<_>>())
        ],
        0..200,
    )
    .prop_map(|c| c.into_iter().collect::<String>());
    runner(0x7e47).run(&text, |t| parse_and_validate(&t).map(drop)).unwrap();
}

/// Found by this fuzzing: a key with a tab or line break was quoted raw in
/// both the key path and serde's "unknown field" message.
#[test]
fn a_key_with_control_characters_gives_a_one_line_error() {
    for (yaml, quoted) in [
        ("\"a\\nb\": 1\n", "a\\nb"),
        ("collectors:\n  - \"x\\ty\": 1\n", "x\\ty"),
    ] {
        let e = config::parse(yaml, FILE).unwrap_err();
        let text = e.to_string();
        assert!(!text.contains(char::is_control), "{text:?}");
        assert!(text.contains(&format!("unknown field `{quoted}`")), "{text}");
    }
}

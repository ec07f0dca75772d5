//! Bounded fuzzing of the IPFIX decoder behind `flowctl collect` (`Decoder`
//! and `split_stream`) with proptest, run by `cargo test`.
//!
//! Inputs are sessions of valid messages built here (templates and options
//! templates redefined and withdrawn, reduced-size, variable-length,
//! unknown and enterprise fields, padding, data before its template), then
//! broken field by field (set ids and lengths, template field counts, scope
//! counts, field lengths, the enterprise bit, variable-length prefixes),
//! truncated, spliced and bit-flipped. Properties: a valid message decodes
//! to exactly what was encoded; nothing panics, and the decoder's own
//! `catch_unwind` around ipfixrw never fires (`DecodeError::ParserPanicked`);
//! every error is one line; a TCP stream cut anywhere is split back into
//! the messages it carried.
//!
//! Deterministic by default (fixed seed); `PROPTEST_RNG_SEED=<n>` and
//! `PROPTEST_CASES=<n>` explore further.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fuzz_decoder/fields.rs"]
mod fields;
#[path = "fuzz_decoder/mutate.rs"]
mod mutate;
#[path = "fuzz_decoder/session.rs"]
mod session;

use std::cell::Cell;

use flowctl_ipfix::{split_stream, DecodeError, DecodedMessage, Decoder};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestRunner};

/// Cases per property.
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

/// An error must be one line, and never the caught panic of ipfixrw.
fn check_error(e: &DecodeError, msg: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(
        !matches!(e, DecodeError::ParserPanicked { .. }),
        "ipfixrw panicked (caught by the decoder) on {msg:02x?}"
    );
    let text = e.to_string();
    prop_assert!(!text.is_empty() && !text.contains(char::is_control), "{text:?}");
    Ok(())
}

/// What a successful decoding of `msg` must at least satisfy.
fn check_decoded(d: &DecodedMessage, msg: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(d.records.iter().all(|r| r.template_id >= 256));
    prop_assert!(d
        .skipped_sets
        .iter()
        .all(|s| s.offset >= 16 && s.offset + 4 <= msg.len()));
    Ok(())
}

#[test]
fn valid_messages_decode_to_what_was_encoded() {
    let records = Cell::new(0usize);
    runner(0x1f1f_0001)
        .run(&session::session(), |s| {
            let mut decoder = Decoder::new();
            for (i, m) in s.encode().iter().enumerate() {
                let got = decoder.decode(&m.bytes);
                prop_assert_eq!(got.as_ref(), Ok(&m.expected), "message {} ({:02x?})", i, m.bytes);
                records.set(records.get() + m.expected.records.len());
            }
            Ok(())
        })
        .unwrap();
    println!("valid sessions: {} records decoded and compared", records.get());
}

#[test]
fn mutated_messages_never_panic_and_errors_are_one_line() {
    // Outcomes by kind, to show that mutations reach every layer.
    let counts = std::cell::RefCell::new(std::collections::BTreeMap::<&str, u32>::new());
    let count = |what: &'static str| *counts.borrow_mut().entry(what).or_default() += 1;
    runner(0x1f1f_0002)
        .run(&(session::session(), mutate::session_mutation()), |(s, m)| {
            let mut messages = s.encode();
            mutate::apply(&mut messages, &m);
            let mut decoder = Decoder::new();
            for msg in &messages {
                match decoder.decode(&msg.bytes) {
                    Ok(d) => {
                        check_decoded(&d, &msg.bytes)?;
                        count(if !d.records.is_empty() {
                            "decoded with records"
                        } else if !d.skipped_sets.is_empty() {
                            "decoded with skipped sets"
                        } else {
                            "decoded, other"
                        });
                    }
                    Err(e) => {
                        check_error(&e, &msg.bytes)?;
                        count(match e {
                            DecodeError::TooShort(_)
                            | DecodeError::BadVersion(_)
                            | DecodeError::LengthMismatch { .. } => "header errors",
                            DecodeError::TruncatedSetHeader { .. }
                            | DecodeError::SetTooShort { .. }
                            | DecodeError::SetOverrun { .. } => "set errors",
                            DecodeError::BadTemplate { .. } => "template errors",
                            _ => "ipfixrw errors",
                        });
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    let counts = counts.into_inner();
    println!("mutated sessions, messages: {counts:?}");
    for what in [
        "decoded with records",
        "decoded with skipped sets",
        "header errors",
        "set errors",
        "template errors",
    ] {
        assert!(
            counts.get(what).copied().unwrap_or(0) > 200,
            "few cases reach {what:?}: {counts:?}"
        );
    }
}

/// Feeds `stream` to `split_stream` in chunks of the given sizes, as a TCP
/// reader does; returns the messages and the bytes left over.
fn split_in_chunks(stream: &[u8], chunks: &[usize]) -> Result<(Vec<Vec<u8>>, usize), DecodeError> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut fed = 0;
    let mut sizes = chunks.iter().cycle();
    while fed < stream.len() {
        let n = (*sizes.next().unwrap_or(&1)).max(1).min(stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        let (messages, consumed) = split_stream(&buf)?;
        assert!(consumed <= buf.len());
        let joined: Vec<u8> = messages.concat();
        assert_eq!(joined, buf[..consumed], "messages are the consumed bytes, in order");
        for m in &messages {
            assert!(m.len() >= 16 && m[..2] == [0, 10]);
            assert_eq!(usize::from(u16::from_be_bytes([m[2], m[3]])), m.len());
        }
        out.extend(messages.into_iter().map(<[u8]>::to_vec));
        buf.drain(..consumed);
    }
    Ok((out, buf.len()))
}

#[test]
fn streams_cut_anywhere_split_into_their_messages() {
    let chunks = prop::collection::vec(prop_oneof![1usize..20, 1usize..2000], 1..8);
    runner(0x1f1f_0003)
        .run(&(session::session(), chunks), |(s, chunks)| {
            let messages: Vec<Vec<u8>> = s.encode().into_iter().map(|m| m.bytes).collect();
            let (got, left) =
                split_in_chunks(&messages.concat(), &chunks).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(got, messages);
            prop_assert_eq!(left, 0);
            Ok(())
        })
        .unwrap();
}

#[test]
fn broken_streams_never_panic() {
    let chunks = prop::collection::vec(1usize..300, 1..8);
    runner(0x1f1f_0004)
        .run(
            &(session::session(), mutate::session_mutation(), chunks),
            |(s, m, chunks)| {
                let mut messages = s.encode();
                mutate::apply(&mut messages, &m);
                let stream: Vec<u8> = messages.iter().flat_map(|m| m.bytes.iter().copied()).collect();
                if let Err(e) = split_in_chunks(&stream, &chunks) {
                    check_error(&e, &stream)?;
                }
                Ok(())
            },
        )
        .unwrap();
}

/// Found by this fuzzing: a template defined twice in one template set lost
/// the registry type of its reduced-size fields (read back as raw bytes).
#[test]
fn a_template_defined_twice_in_one_set_keeps_its_field_types() {
    let template = [1, 0, 0, 1, 0, 1, 0, 5]; // 256: octetDeltaCount in 5 bytes
    let mut msg = vec![0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    msg.extend_from_slice(&[0, 2, 0, 20]);
    msg.extend_from_slice(&template);
    msg.extend_from_slice(&template);
    msg.extend_from_slice(&[1, 0, 0, 9, 0, 0, 0, 1, 2]);
    let len = msg.len() as u16;
    msg[2..4].copy_from_slice(&len.to_be_bytes());
    let decoded = Decoder::new().decode(&msg).unwrap();
    assert_eq!(decoded.templates, [256, 256]);
    assert_eq!(decoded.records[0].unsigned("octetDeltaCount"), Some(0x0102));
}

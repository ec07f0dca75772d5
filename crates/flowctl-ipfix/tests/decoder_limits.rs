//! The decoder's memory is bounded: domains and template fields are capped,
//! data for unknown domains leaves nothing behind, and what is withdrawn
//! makes room again.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{raw_message, template_record, Rng};
use flowctl_ipfix::{DecodeError, Decoder, DecoderLimits};

/// A template of `fields` fields (all packetDeltaCount, 8 bytes).
fn template(id: u16, fields: usize) -> (u16, Vec<u8>) {
    (2, template_record(id, &vec![(2, 8, None); fields]))
}

#[test]
fn data_for_unknown_domains_leaves_nothing_behind() {
    let mut d = Decoder::new();
    let mut rng = Rng(7);
    for _ in 0..10_000 {
        let domain = rng.next() as u32;
        let decoded = d.decode(&raw_message(domain, 0, &[(256, vec![0; 8])])).unwrap();
        assert_eq!(decoded.skipped_sets.len(), 1);
    }
    assert_eq!((d.domains(), d.template_fields()), (0, 0));
}

#[test]
fn templates_in_random_domains_stop_at_the_domain_limit() {
    let limits = DecoderLimits::default();
    let mut d = Decoder::new();
    let mut rng = Rng(11);
    let mut refused = 0;
    for _ in 0..10_000 {
        let domain = rng.next() as u32;
        let id = 256 + (rng.below(1000) as u16);
        match d.decode(&raw_message(domain, 0, &[template(id, 4)])) {
            Ok(_) => {}
            Err(DecodeError::TooManyDomains { limit, .. }) => {
                assert_eq!(limit, limits.max_domains);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(d.domains() <= limits.max_domains);
    }
    assert_eq!(d.domains(), limits.max_domains);
    assert_eq!(refused, 10_000 - limits.max_domains);
}

#[test]
fn template_fields_stop_at_the_limit_and_withdrawals_make_room() {
    let mut d = Decoder::with_limits(DecoderLimits {
        max_domains: 4,
        max_template_fields: 100,
    });
    // Two domains share the budget: 40 + 40 fit, 30 more do not.
    d.decode(&raw_message(1, 0, &[template(256, 40)])).unwrap();
    d.decode(&raw_message(2, 0, &[template(256, 40)])).unwrap();
    let message = raw_message(1, 1, &[template(257, 10), template(258, 30)]);
    let error = d.decode(&message).unwrap_err();
    assert_eq!(
        error.to_string(),
        "template 258 of observation domain 1 refused: this exporter's templates would have more than 100 fields, the limit"
    );
    // The first template of that message was kept, the refused one is unknown.
    assert_eq!(d.template_fields(), 90);
    let data = d
        .decode(&raw_message(1, 2, &[(257, vec![0; 80]), (258, vec![0; 240])]))
        .unwrap();
    assert_eq!((data.records.len(), data.skipped_sets.len()), (1, 1));
    // Redefining a template with fewer fields frees the difference.
    d.decode(&raw_message(2, 1, &[template(256, 10)])).unwrap();
    assert_eq!(d.template_fields(), 60);
    d.decode(&raw_message(1, 3, &[template(258, 30)])).unwrap();
    assert_eq!(d.template_fields(), 90);
    // Withdrawing all of a domain's templates frees it entirely.
    d.decode(&raw_message(1, 4, &[(2, vec![0, 2, 0, 0])])).unwrap();
    assert_eq!((d.domains(), d.template_fields()), (1, 10));
}

//! Messages within a size limit, sequence numbers, and options records.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::Rng;
use flowctl_ipfix::fields;
use flowctl_ipfix::options::{sampling_values, IE_OBSERVATION_DOMAIN_ID};
use flowctl_ipfix::{
    exporter_stats_template, sampling_template, Decoder, EncodeError, ExporterStats, FieldValue, Full, MessageBuilder,
    Strictness, SyntheticValues, Template,
};

/// What a simple exporter does: fill messages, start a new one (with the
/// templates again) on `Full`, and advance the sequence number by the data
/// records of each message.
struct Exporter {
    max_size: usize,
    odid: u32,
    template: Template,
    builder: MessageBuilder,
    sequence: u32,
    sent: Vec<(u32, u32, Vec<u8>)>,
}

impl Exporter {
    fn new(max_size: usize, template: Template) -> Self {
        let mut e = Exporter {
            max_size,
            odid: 5,
            template,
            builder: MessageBuilder::new(max_size, 5).unwrap(),
            sequence: u32::MAX - 3, // wraps during the test
            sent: Vec::new(),
        };
        e.builder.push_template(&e.template).unwrap();
        e
    }

    fn flush(&mut self) {
        let fresh = MessageBuilder::new(self.max_size, self.odid).unwrap();
        let full = std::mem::replace(&mut self.builder, fresh);
        let count = full.data_record_count();
        assert!(
            count > 0 || self.sent.is_empty(),
            "no progress: a message with only the template"
        );
        let msg = full.finish(1_700_000_000, self.sequence);
        self.sent.push((self.sequence, count, msg));
        self.sequence = self.sequence.wrapping_add(count);
        self.builder.push_template(&self.template).unwrap();
    }

    fn push(&mut self, values: &SyntheticValues) {
        loop {
            match self.builder.push_record(&self.template, values) {
                Ok(()) => return,
                Err(Full) => {
                    let needed = self.template.record_length() + 4;
                    assert!(self.builder.len() + needed > self.max_size, "Full although it fitted");
                    self.flush();
                }
            }
        }
    }
}

fn numbered(i: u64) -> SyntheticValues {
    SyntheticValues(HashMap::from([
        (2, FieldValue::Unsigned(i)),
        (1, FieldValue::Unsigned(i * 1000)),
    ]))
}

fn small_template() -> Template {
    Template::new(256, &["packetDeltaCount", "octetDeltaCount"], Strictness::Agent).unwrap()
}

fn big_template() -> Template {
    let names: Vec<&str> = fields::all()
        .iter()
        .filter(|f| f.is_available() && f.kind != fields::FieldKind::Ipv6Address)
        .map(|f| f.name)
        .collect();
    Template::new(1004, &names, Strictness::Agent).unwrap()
}

#[test]
fn many_records_split_across_messages_within_the_limit() {
    let mut rng = Rng(99);
    for max_size in [64, 65, 100, 200, 512, 1400, 9000, 65535] {
        let probe = MessageBuilder::new(max_size, 5).unwrap();
        let template = if probe.check(&big_template()).is_ok() {
            big_template()
        } else {
            small_template()
        };
        probe.check(&template).unwrap();
        let total = 500 + rng.below(3000);
        let mut exporter = Exporter::new(max_size, template);
        for i in 0..total {
            exporter.push(&numbered(i));
        }
        exporter.flush();

        let mut decoder = Decoder::new();
        let mut next = 0u64;
        let mut expected_sequence = u32::MAX - 3;
        for (sequence, count, msg) in &exporter.sent {
            assert!(msg.len() <= max_size, "{} > {max_size}", msg.len());
            let decoded = decoder.decode(msg).unwrap();
            assert_eq!(decoded.sequence_number, *sequence);
            assert_eq!(decoded.sequence_number, expected_sequence);
            assert_eq!(decoded.observation_domain_id, 5);
            assert_eq!(decoded.records.len() as u32, *count);
            assert!(decoded.skipped_sets.is_empty());
            for r in &decoded.records {
                assert_eq!(r.unsigned("packetDeltaCount"), Some(next));
                assert_eq!(r.unsigned("octetDeltaCount"), Some(next * 1000));
                next += 1;
            }
            expected_sequence = expected_sequence.wrapping_add(*count);
        }
        assert_eq!(next, total, "records add up at max_size {max_size}");
        let (last_seq, last_count, _) = exporter.sent.last().unwrap();
        assert_eq!(
            last_seq.wrapping_add(*last_count),
            (u32::MAX - 3).wrapping_add(total as u32)
        );
    }
}

#[test]
fn items_that_never_fit_are_errors_not_endless_fulls() {
    let big = big_template();
    let m = MessageBuilder::new(64, 0).unwrap();
    match m.check(&big) {
        Err(EncodeError::TooLarge {
            id,
            bytes,
            max_size,
            room,
        }) => {
            assert_eq!((id, max_size, room), (1004, 64, 64 - 16));
            assert_eq!(bytes, 4 + big.template_record_length() + 4 + big.record_length());
        }
        other => panic!("{other:?}"),
    }
    let text = m.check(&big).unwrap_err().to_string();
    assert!(text.contains("1004") && !text.contains('\n'), "{text}");
    // A message just large enough for the template and one record.
    let size = 16 + 4 + big.template_record_length() + 4 + big.record_length();
    let mut exact = MessageBuilder::new(size, 0).unwrap();
    exact.check(&big).unwrap();
    exact.push_template(&big).unwrap();
    exact.push_record(&big, &numbered(1)).unwrap();
    assert_eq!(exact.len(), exact.max_size());
    assert!(matches!(
        MessageBuilder::new(size - 1, 0).unwrap().check(&big),
        Err(EncodeError::TooLarge { .. })
    ));
}

#[test]
fn options_templates_and_records_round_trip() {
    let stats_t = exporter_stats_template(500);
    let sampling_t = sampling_template(501);
    let stats = ExporterStats {
        exported_messages: 12,
        exported_records: 3456,
        not_sent_records: 7,
        not_sent_packets: 70,
        not_sent_octets: u64::MAX,
        ignored_packets: 1 << 40,
        ignored_octets: 99,
    };
    let odid = 0xfeed;
    let mut m = MessageBuilder::new(1500, odid).unwrap();
    m.check_options(&stats_t).unwrap();
    m.push_options_template(&stats_t).unwrap();
    m.push_options_template(&sampling_t).unwrap();
    let exporter: std::net::IpAddr = "2001:db8::5".parse().unwrap();
    m.push_options_values(&stats_t, &stats.values(odid, Some(exporter)))
        .unwrap();
    m.push_options_record(&sampling_t, &sampling_values(odid, flowctl_model::Sampling::NONE))
        .unwrap();
    m.push_options_record(&sampling_t, &[1, 2, 300]).unwrap();
    assert_eq!(m.data_record_count(), 3, "options data records count");
    let decoded = Decoder::new().decode(&m.finish(1, 2)).unwrap();
    assert_eq!(decoded.options_templates, [500, 501]);
    assert!(decoded.templates.is_empty());
    assert_eq!(decoded.records.len(), 3);
    assert_eq!(decoded.data_records().count(), 0);

    let r = &decoded.records[0];
    assert!(r.options);
    assert_eq!(r.template_id, 500);
    let scope: Vec<(u16, bool)> = r.fields.iter().map(|f| (f.id, f.scope)).collect();
    let mut shape = vec![(IE_OBSERVATION_DOMAIN_ID, true)];
    shape.extend(stats_t.fields.iter().map(|(ie, _)| (*ie, false)));
    assert_eq!(scope, shape);
    let counters: Vec<flowctl_ipfix::OptionValue> = r
        .fields
        .iter()
        .filter_map(|f| f.value.as_unsigned())
        .map(flowctl_ipfix::OptionValue::Unsigned)
        .collect();
    assert_eq!(counters[..], stats.values(odid, None)[..8]);
    assert_eq!(
        r.get("exporterIPv4Address").map(|a| a.to_string()),
        Some("0.0.0.0".into())
    );
    assert_eq!(
        r.get("exporterIPv6Address").map(|a| a.to_string()),
        Some("2001:db8::5".into())
    );
    assert_eq!(r.unsigned("exportedMessageTotalCount"), Some(12));
    assert_eq!(r.unsigned("notSentOctetTotalCount"), Some(u64::MAX));
    assert_eq!(r.unsigned("ignoredPacketTotalCount"), Some(1 << 40));

    let s = &decoded.records[1];
    assert_eq!(s.unsigned("observationDomainId"), Some(odid.into()));
    assert_eq!(s.unsigned("samplingInterval"), Some(1));
    assert_eq!(s.unsigned("samplingAlgorithm"), Some(1));
    let saturated = &decoded.records[2];
    assert_eq!(
        saturated.unsigned("samplingAlgorithm"),
        Some(255),
        "300 saturates in 1 byte"
    );
}

#[test]
fn missing_options_values_are_zero() {
    let t = sampling_template(600);
    let mut m = MessageBuilder::new(100, 1).unwrap();
    m.push_options_template(&t).unwrap();
    m.push_options_record(&t, &[7]).unwrap();
    let decoded = Decoder::new().decode(&m.finish(0, 0)).unwrap();
    let r = &decoded.records[0];
    assert_eq!(r.unsigned("observationDomainId"), Some(7));
    assert_eq!(r.unsigned("samplingInterval"), Some(0));
}

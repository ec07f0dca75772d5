//! The decoder on unusual, malformed and random input: it skips what it
//! cannot decode, reports errors, and never panics or hangs.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{random_record, raw_message, template_record, Rng};
use flowctl_ipfix::fields;
use flowctl_ipfix::{
    DecodeError, DecodedValue, Decoder, MessageBuilder, RecordValues, SkipReason, Strictness, Template,
};

fn template_set(records: &[Vec<u8>]) -> (u16, Vec<u8>) {
    (2, records.concat())
}

/// Data record of template 256: packetDeltaCount, protocolIdentifier.
fn small_record(packets: u64, protocol: u8) -> Vec<u8> {
    let mut r = packets.to_be_bytes().to_vec();
    r.push(protocol);
    r
}

fn small_template_set() -> (u16, Vec<u8>) {
    template_set(&[template_record(256, &[(2, 8, None), (4, 1, None)])])
}

#[test]
fn a_data_set_before_its_template_is_skipped_not_fatal() {
    let mut d = Decoder::new();
    let msg = raw_message(
        1,
        0,
        &[
            (256, small_record(5, 6)),
            small_template_set(),
            (256, small_record(7, 17)),
        ],
    );
    let decoded = d.decode(&msg).unwrap();
    assert_eq!(decoded.skipped_sets.len(), 1);
    assert_eq!(decoded.skipped_sets[0].set_id, 256);
    assert_eq!(decoded.skipped_sets[0].offset, 16);
    assert_eq!(decoded.skipped_sets[0].reason, SkipReason::UnknownTemplate);
    assert_eq!(decoded.templates, [256]);
    assert_eq!(decoded.records.len(), 1);
    assert_eq!(decoded.records[0].unsigned("packetDeltaCount"), Some(7));
    // Later messages of the domain use the template; other domains do not.
    let later = d.decode(&raw_message(1, 1, &[(256, small_record(9, 1))])).unwrap();
    assert_eq!(later.records[0].unsigned("protocolIdentifier"), Some(1));
    let other = d.decode(&raw_message(2, 0, &[(256, small_record(9, 1))])).unwrap();
    assert!(other.records.is_empty());
    assert_eq!(other.skipped_sets.len(), 1);
}

#[test]
fn withdrawals_forget_templates() {
    let mut d = Decoder::new();
    d.decode(&raw_message(1, 0, &[small_template_set()])).unwrap();
    let withdraw = raw_message(1, 0, &[(2, vec![1, 0, 0, 0]), (256, small_record(1, 1))]);
    let decoded = d.decode(&withdraw).unwrap();
    assert_eq!(decoded.withdrawn, [256]);
    assert_eq!(decoded.skipped_sets.len(), 1);
    // Redefine and withdraw all in one set: withdrawal comes after.
    let mut body = template_record(256, &[(2, 8, None), (4, 1, None)]);
    body.extend_from_slice(&[0, 2, 0, 0]);
    let decoded = d
        .decode(&raw_message(1, 0, &[(2, body), (256, small_record(1, 1))]))
        .unwrap();
    assert_eq!(
        (decoded.templates.as_slice(), decoded.withdrawn.as_slice()),
        (&[256][..], &[2][..])
    );
    assert_eq!(decoded.skipped_sets.len(), 1);
}

#[test]
fn reserved_sets_and_padding_are_tolerated() {
    let mut d = Decoder::new();
    let mut padded = small_record(3, 6);
    padded.extend_from_slice(&small_record(4, 6));
    padded.extend_from_slice(&[0, 0, 0]); // padding shorter than a record
    let msg = raw_message(
        1,
        0,
        &[small_template_set(), (5, vec![1, 2, 3]), (256, padded), (300, vec![])],
    );
    let decoded = d.decode(&msg).unwrap();
    assert_eq!(decoded.records.len(), 2);
    assert_eq!(decoded.skipped_sets.len(), 1);
    assert_eq!(decoded.skipped_sets[0].reason, SkipReason::ReservedSetId);
}

#[test]
fn unknown_enterprise_reduced_size_and_variable_length_fields_decode() {
    let mut d = Decoder::new();
    let fields = [
        (32767, 2, None),    // not in the registry
        (7, 3, Some(29305)), // enterprise-specific
        (1, 3, None),        // octetDeltaCount, reduced to 3 bytes
        (82, 65535, None),   // interfaceName, variable length
        (83, 65535, None),   // interfaceDescription, variable length
        (8, 4, None),        // sourceIPv4Address
        (152, 8, None),      // flowStartMilliseconds
        (156, 7, None),      // flowStartNanoseconds with an unusable length
    ];
    let mut record = vec![0xab, 0xcd, 1, 2, 3, 0x01, 0x00, 0x00];
    record.extend_from_slice(&[4, b'e', b't', b'h', b'0']);
    record.extend_from_slice(&[255, 0, 2, 0xff, b'x']);
    record.extend_from_slice(&[192, 0, 2, 1]);
    record.extend_from_slice(&1_700_000_000_123u64.to_be_bytes());
    record.extend_from_slice(&[9; 7]);
    let msg = raw_message(3, 0, &[template_set(&[template_record(999, &fields)]), (999, record)]);
    let decoded = d.decode(&msg).unwrap();
    let r = &decoded.records[0];
    let names: Vec<&str> = r.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ie32767",
            "ie29305.7",
            "octetDeltaCount",
            "interfaceName",
            "interfaceDescription",
            "sourceIPv4Address",
            "flowStartMilliseconds",
            "flowStartNanoseconds"
        ]
    );
    assert_eq!(r.fields[1].enterprise, Some(29305));
    assert_eq!(r.get("ie32767"), Some(&DecodedValue::Bytes(vec![0xab, 0xcd])));
    assert_eq!(r.unsigned("octetDeltaCount"), Some(0x01_0000));
    assert_eq!(r.get("interfaceName"), Some(&DecodedValue::String("eth0".into())));
    assert_eq!(
        r.get("interfaceDescription"),
        Some(&DecodedValue::String("\u{fffd}x".into()))
    );
    assert_eq!(
        r.get("sourceIPv4Address").map(ToString::to_string).as_deref(),
        Some("192.0.2.1")
    );
    assert_eq!(
        r.get("flowStartMilliseconds"),
        Some(&DecodedValue::Milliseconds(1_700_000_000_123))
    );
    assert_eq!(r.get("flowStartNanoseconds"), Some(&DecodedValue::Bytes(vec![9; 7])));
}

#[test]
fn templates_with_empty_records_are_skipped() {
    let mut d = Decoder::new();
    let t = template_set(&[template_record(400, &[(32767, 0, None)])]);
    let decoded = d.decode(&raw_message(1, 0, &[t, (400, vec![1, 2, 3])])).unwrap();
    assert_eq!(decoded.skipped_sets[0].reason, SkipReason::EmptyRecords);
}

#[test]
fn malformed_headers_and_sets_are_one_line_errors() {
    let good = raw_message(1, 0, &[small_template_set()]);
    let mut bad_version = good.clone();
    bad_version[1] = 9;
    let mut bad_length = good.clone();
    bad_length[3] += 1;
    let mut short_set = good.clone();
    short_set[18..20].copy_from_slice(&[0, 3]);
    let mut long_set = good.clone();
    long_set[18..20].copy_from_slice(&[0, 200]);
    let trailing = {
        let mut m = good.clone();
        m.extend_from_slice(&[0, 2]);
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    };
    let cases: [(&[u8], DecodeError); 6] = [
        (&good[..10], DecodeError::TooShort(10)),
        (&bad_version, DecodeError::BadVersion(9)),
        (
            &bad_length,
            DecodeError::LengthMismatch {
                header: good.len() as u16 + 1,
                actual: good.len(),
            },
        ),
        (&short_set, DecodeError::SetTooShort { offset: 16, length: 3 }),
        (
            &long_set,
            DecodeError::SetOverrun {
                offset: 16,
                length: 200,
                remaining: good.len() - 16,
            },
        ),
        (&trailing, DecodeError::TruncatedSetHeader { offset: good.len() }),
    ];
    for (msg, want) in cases {
        let err = Decoder::new().decode(msg).unwrap_err();
        assert_eq!(err, want);
        assert!(!err.to_string().contains('\n'), "{err}");
    }
    let low_id = raw_message(1, 0, &[template_set(&[template_record(12, &[(1, 8, None)])])]);
    assert!(matches!(
        Decoder::new().decode(&low_id),
        Err(DecodeError::BadTemplate { offset: 20, .. })
    ));
}

/// Valid messages of many shapes, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let mut rng = Rng(0x5eed);
    let mut seeds = Vec::new();
    for (id, version, src, dst, proto) in [
        (300, 4, "192.0.2.1", "192.0.2.2", 6),
        (301, 6, "2001:db8::1", "2001:db8::2", 58),
    ] {
        let other = if version == 4 {
            fields::FieldKind::Ipv6Address
        } else {
            fields::FieldKind::Ipv4Address
        };
        let names: Vec<&str> = fields::all()
            .iter()
            .filter(|f| f.is_available() && f.kind != other)
            .map(|f| f.name)
            .collect();
        let t = Template::new(id, &names, Strictness::Agent).unwrap();
        let mut m = MessageBuilder::new(1500, 1).unwrap();
        m.push_template(&t).unwrap();
        for _ in 0..3 {
            let rec = random_record(&mut rng, src, dst, proto);
            m.push_record(
                &t,
                &RecordValues {
                    record: &rec,
                    observation_domain_id: 1,
                    exporter_address: None,
                },
            )
            .unwrap();
        }
        seeds.push(m.finish(1, 2));
    }
    let stats = flowctl_ipfix::exporter_stats_template(500);
    let mut m = MessageBuilder::new(512, 1).unwrap();
    m.push_options_template(&stats).unwrap();
    m.push_options_record(&stats, &[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    seeds.push(m.finish(3, 4));
    let odd = [
        (32767, 2, None),
        (7, 3, Some(29305)),
        (1, 3, None),
        (82, 65535, None),
        (83, 65535, None),
    ];
    let record = [
        0xab, 0xcd, 1, 2, 3, 1, 0, 0, 4, b'e', b't', b'h', b'0', 255, 0, 2, 0xff, b'x',
    ];
    seeds.push(raw_message(
        1,
        0,
        &[template_set(&[template_record(999, &odd)]), (999, record.to_vec())],
    ));
    seeds.push(raw_message(
        1,
        0,
        &[small_template_set(), (256, small_record(1, 2)), (2, vec![1, 0, 0, 0])],
    ));
    seeds
}

fn patch_length(msg: &mut [u8]) {
    if msg.len() >= 4 && msg.len() <= 65535 {
        let len = msg.len() as u16;
        msg[2..4].copy_from_slice(&len.to_be_bytes());
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut msg = seed.to_vec();
    if msg.is_empty() {
        return msg;
    }
    match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(msg.len() as u64) as usize;
                msg[at] = rng.byte();
            }
        }
        1 => {
            let at = rng.below(msg.len() as u64 * 8) as usize;
            msg[at / 8] ^= 1 << (at % 8);
        }
        2 => {
            let at = rng.below(msg.len() as u64) as usize;
            let n = 1 + rng.below(16) as usize;
            msg.drain(at..(at + n).min(msg.len()));
        }
        3 => {
            let at = rng.below(msg.len() as u64) as usize;
            let extra: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.byte()).collect();
            msg.splice(at..at, extra);
        }
        4 => {
            // A set length or a template field count/length.
            let at = 16 + rng.below(msg.len().saturating_sub(16) as u64 / 2) as usize * 2;
            let value = [0u16, 1, 3, 4, 5, 255, 256, 65535, rng.next() as u16][rng.below(9) as usize];
            if at + 2 <= msg.len() {
                msg[at..at + 2].copy_from_slice(&value.to_be_bytes());
            }
        }
        _ => msg.truncate(rng.below(msg.len() as u64) as usize),
    }
    if rng.below(4) != 0 {
        patch_length(&mut msg);
    }
    msg
}

#[test]
fn random_and_mutated_input_never_panics() {
    let seeds = seeds();
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut decoder = Decoder::new();
    let (mut ok, mut errors) = (0, 0);
    let mut check = |decoder: &mut Decoder, msg: &[u8]| match decoder.decode(msg) {
        Ok(_) => ok += 1,
        Err(DecodeError::ParserPanicked { .. }) => panic!("ipfixrw panicked on {msg:02x?}"),
        Err(e) => {
            assert!(!e.to_string().contains('\n'));
            errors += 1;
        }
    };
    for seed in &seeds {
        check(&mut decoder, seed);
        for cut in 0..seed.len() {
            let mut truncated = seed[..cut].to_vec();
            check(&mut decoder, &truncated);
            patch_length(&mut truncated);
            check(&mut decoder, &truncated);
        }
    }
    for i in 0..6000 {
        if i % 500 == 0 {
            decoder = Decoder::new();
        }
        let msg = match rng.below(5) {
            0 => {
                let mut m: Vec<u8> = (0..rng.below(300)).map(|_| rng.byte()).collect();
                if m.len() >= 4 && rng.below(2) == 0 {
                    m[..2].copy_from_slice(&[0, 10]);
                    patch_length(&mut m);
                }
                m
            }
            1 => {
                // Two messages spliced, or a seed followed by a mutated one.
                let a = &seeds[rng.below(seeds.len() as u64) as usize];
                let pick = rng.below(seeds.len() as u64) as usize;
                let b = mutate(&mut rng, &seeds[pick]);
                let mut m = [a.as_slice(), b.get(16..).unwrap_or_default()].concat();
                patch_length(&mut m);
                m
            }
            _ => {
                let seed = &seeds[rng.below(seeds.len() as u64) as usize];
                // Teach the decoder the templates first, so that mutated data
                // sets reach the record parser.
                if rng.below(2) == 0 {
                    check(&mut decoder, seed);
                }
                let mut m = mutate(&mut rng, seed);
                if rng.below(3) == 0 {
                    m = mutate(&mut rng, &m);
                }
                m
            }
        };
        check(&mut decoder, &msg);
    }
    assert!(
        ok > 500 && errors > 500,
        "ok {ok}, errors {errors}: the cases reach both outcomes"
    );
}

#[test]
fn random_templates_of_every_registry_type_decode_random_records() {
    let mut rng = Rng(0xfeed_f00d);
    let lengths = [0u16, 1, 2, 3, 4, 5, 6, 8, 16, 65535];
    let mut decoder = Decoder::new();
    let mut decoded_records = 0;
    for case in 0..2000 {
        let id = 256 + (case % 50) as u16;
        let fields: Vec<(u16, u16, Option<u32>)> = (0..1 + rng.below(8))
            .map(|_| {
                let len = if rng.below(4) == 0 {
                    rng.below(40) as u16
                } else {
                    lengths[rng.below(10) as usize]
                };
                let pen = (rng.below(8) == 0).then(|| rng.next() as u32);
                (1 + rng.below(520) as u16, len, pen)
            })
            .collect();
        let data: Vec<u8> = (0..rng.below(200)).map(|_| rng.byte()).collect();
        let msg = raw_message(1, 0, &[template_set(&[template_record(id, &fields)]), (id, data)]);
        match decoder.decode(&msg) {
            Ok(m) => decoded_records += m.records.len(),
            Err(e) => panic!("{e} for template {fields:?}"),
        }
    }
    assert!(decoded_records > 2000, "{decoded_records}");
}

#[test]
fn decoder_and_builder_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<Decoder>();
    send::<MessageBuilder>();
}

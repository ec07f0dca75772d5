//! Export sessions without I/O: what goes on the wire, checked by decoding it.

use std::collections::VecDeque;

use flowctl_ipfix::{template::Strictness, Decoder, Template};
use flowctl_model::{key_addr, FlowKey};
use flowctl_model::{EndReason, FlowRecord};

use crate::{session::ExportSession, TemplateSet};

fn templates() -> TemplateSet {
    let v4 = Template::new(
        256,
        &["sourceIPv4Address", "packetDeltaCount", "octetDeltaCount"],
        Strictness::Agent,
    );
    let v6 = Template::new(
        257,
        &["sourceIPv6Address", "packetDeltaCount", "octetDeltaCount"],
        Strictness::Agent,
    );
    TemplateSet::new(vec![v4.unwrap(), v6.unwrap()])
}

fn record(i: u64, v6: bool) -> FlowRecord {
    let ip = if v6 {
        format!("2001:db8::{i}")
    } else {
        format!("10.0.0.{}", i % 250)
    };
    FlowRecord {
        key: FlowKey {
            src_addr: key_addr(ip.parse().unwrap()),
            ip_version: if v6 { 6 } else { 4 },
            ..Default::default()
        },
        stats: flowctl_model::FlowStats {
            packets: i + 1,
            octets: 100 * (i + 1),
            min_ttl: 64,
            max_ttl: 64,
            ..Default::default()
        },
        total_packets: i + 1,
        total_octets: 100 * (i + 1),
        start_unix_ns: 1_700_000_000_000_000_000,
        end_unix_ns: 1_700_000_001_000_000_000,
        reason: EndReason::IdleTimeout,
    }
}

#[test]
fn templates_then_data_with_contiguous_sequence_numbers_within_the_size_limit() {
    let t = templates();
    let mut session = ExportSession::new(9, 512).unwrap();
    let mut decoder = Decoder::new();
    let mut wire = Vec::new();
    for (m, _) in session.template_messages(&t, 1) {
        wire.push(m);
        session.sent(0, 0);
    }
    let interfaces = [flowctl_ipfix::InterfaceInfo {
        ifindex: 3,
        name: "veth0".into(),
        description: "to the lab".into(),
    }];
    session.set_exporter_address(Some("192.0.2.9".parse().unwrap()));
    let options = session.options_messages(&t, (5, 500), &interfaces, &[], 1);
    assert_eq!(options.len(), 1);
    let (m, n) = options.into_iter().next().unwrap();
    assert_eq!(n, 3, "statistics, sampling and interface names records");
    wire.push(m);
    session.sent(n, 0);

    let mut pending: VecDeque<FlowRecord> = (0..300).map(|i| record(i, i % 3 == 0)).collect();
    while let Some((msg, records, used)) = session.next_data_message(&t, &pending, 2) {
        assert!(msg.len() <= 512, "message of {} bytes", msg.len());
        wire.push(msg);
        session.sent(records, records);
        pending.drain(..used);
    }

    let mut expected_seq = 0u32;
    let (mut packets, mut flows) = (0u64, 0u64);
    for (i, m) in wire.iter().enumerate() {
        let d = decoder.decode(m).unwrap();
        assert_eq!(d.observation_domain_id, 9);
        assert_eq!(d.sequence_number, expected_seq, "message {i}");
        assert!(d.skipped_sets.is_empty(), "every data set has its template before it");
        expected_seq += d.records.len() as u32;
        for r in d.data_records() {
            packets += r.unsigned("packetDeltaCount").unwrap();
            flows += 1;
        }
        if i == 1 {
            let stats = &d.records[0];
            assert_eq!(stats.unsigned("ignoredPacketTotalCount"), Some(5));
            assert_eq!(
                stats.unsigned("exportedMessageTotalCount"),
                Some(2),
                "this message included"
            );
            assert_eq!(
                stats.get("exporterIPv4Address").map(|a| a.to_string()),
                Some("192.0.2.9".into())
            );
            let names = &d.records[2];
            assert_eq!(names.unsigned("ingressInterface"), Some(3));
            assert_eq!(names.get("interfaceName").map(|n| n.to_string()), Some("veth0".into()));
            assert_eq!(
                names.get("interfaceDescription").map(|n| n.to_string()),
                Some("to the lab".into())
            );
        }
    }
    assert_eq!(flows, 300);
    assert_eq!(packets, (1..=300).sum::<u64>());
    assert_eq!(session.sequence(), expected_seq);
    assert_eq!(session.stats().exported_records, 300);
}

#[test]
fn records_given_up_on_advance_the_sequence_number_and_count_as_not_sent() {
    let mut session = ExportSession::new(1, 1472).unwrap();
    session.lost(&[record(1, false), record(2, false)]);
    assert_eq!(session.sequence(), 2, "collectors see the loss as a gap");
    let s = session.stats();
    assert_eq!((s.not_sent_records, s.not_sent_packets, s.not_sent_octets), (2, 5, 500));
}

#[test]
fn each_flow_takes_the_first_template_of_its_ip_version() {
    let mut t = templates();
    assert_eq!(t.for_flow(&record(0, false).key).unwrap().id, 256);
    assert_eq!(t.for_flow(&record(0, true).key).unwrap().id, 257);
    t.data
        .insert(0, Template::new(300, &["packetDeltaCount"], Strictness::Agent).unwrap());
    assert_eq!(
        t.for_flow(&record(0, true).key).unwrap().id,
        300,
        "a template without addresses carries both"
    );
}

#[test]
fn a_reload_withdraws_the_templates_it_drops_or_redefines() {
    let t = |id, fields: &[&str]| Template::new(id, fields, Strictness::Agent).unwrap();
    let old = TemplateSet::new(vec![
        t(256, &["sourceIPv4Address", "octetDeltaCount"]),
        t(257, &["sourceIPv6Address", "octetDeltaCount"]),
        t(258, &["protocolIdentifier"]),
    ]);
    let new = TemplateSet::new(vec![
        t(256, &["sourceIPv4Address", "octetDeltaCount"]),
        t(257, &["sourceIPv6Address", "packetDeltaCount"]),
        t(259, &["protocolIdentifier"]),
    ]);
    assert_eq!(old.redefined_in(&new), vec![(257, false), (258, false)]);
    assert!(old.redefined_in(&old).is_empty());

    let session = ExportSession::new(1, 512).unwrap();
    let msgs = session.withdrawal_messages(&old.redefined_in(&new), 7);
    let mut decoder = Decoder::new();
    let decoded = decoder.decode(&msgs[0].0).unwrap();
    assert_eq!(decoded.withdrawn, vec![257, 258]);
    assert_eq!(
        msgs.iter().map(|(_, n)| n).sum::<u32>(),
        0,
        "withdrawals are not data records"
    );
}

#[test]
fn each_sampling_in_use_gets_a_selector_record_and_flows_name_theirs() {
    use flowctl_model::{SampleMode, Sampling};
    let data = Template::new(
        256,
        &[
            "sourceIPv4Address",
            "packetDeltaCount",
            "selectorId",
            "samplingPacketInterval",
            "samplingPacketSpace",
            "samplingInterval",
        ],
        Strictness::Agent,
    )
    .unwrap();
    let t = TemplateSet::new(vec![data]);
    let mut session = ExportSession::new(1, 1472).unwrap();
    let mut decoder = Decoder::new();
    for (m, _) in session.template_messages(&t, 1) {
        decoder.decode(&m).unwrap();
        session.sent(0, 0);
    }
    let random = Sampling::new(100, SampleMode::Random).unwrap();
    let count = Sampling::new(10, SampleMode::Deterministic).unwrap();
    let (m, n) = session
        .options_messages(&t, (0, 0), &[], &[random, count], 1)
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(n, 3, "statistics and two selectors");
    session.sent(n, 0);
    let d = decoder.decode(&m).unwrap();
    let selectors: Vec<Vec<Option<u64>>> = d.records[1..]
        .iter()
        .map(|r| {
            [
                "selectorId",
                "selectorAlgorithm",
                "samplingPacketInterval",
                "samplingPacketSpace",
                "samplingInterval",
                "samplingAlgorithm",
            ]
            .iter()
            .map(|f| r.unsigned(f))
            .collect()
        })
        .collect();
    let s = |v: [u64; 6]| v.map(Some).to_vec();
    assert_eq!(
        selectors,
        [s([(1 << 31) + 100, 3, 1, 99, 100, 2]), s([10, 1, 1, 9, 10, 1])]
    );

    let mut flow = record(1, false);
    flow.stats.sampling = random.word();
    let pending: VecDeque<FlowRecord> = [flow, record(2, false)].into_iter().collect();
    let (msg, _, _) = session.next_data_message(&t, &pending, 2).unwrap();
    let d = decoder.decode(&msg).unwrap();
    let got: Vec<[Option<u64>; 4]> = d
        .data_records()
        .map(|r| {
            [
                r.unsigned("selectorId"),
                r.unsigned("samplingPacketInterval"),
                r.unsigned("samplingPacketSpace"),
                r.unsigned("samplingInterval"),
            ]
        })
        .collect();
    assert_eq!(
        got,
        [
            [Some((1 << 31) + 100), Some(1), Some(99), Some(100)],
            [Some(1), Some(1), Some(0), Some(1)]
        ],
        "the sampled flow, then an unsampled one"
    );
}

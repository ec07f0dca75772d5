//! NetFlow v9 sessions without I/O, and a v9 collector task over UDP: what
//! goes on the wire, read back from the packet headers and FlowSets.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use flowctl_ipfix::{template::Strictness, Template};
use flowctl_model::{key_addr, EndReason, FlowKey, FlowRecord};

use crate::{
    collector::{spawn, CollectorSettings, Command},
    format::Session,
    netflow9::V9Session,
    transport::{Endpoint, Protocol},
    ExportFormat, TemplateSet,
};

/// The built-in templates' shape: flowEndReason is dropped in v9.
fn templates() -> TemplateSet {
    let t = |id, names: &[&str]| Template::new(id, names, Strictness::Agent).unwrap();
    TemplateSet::new(vec![
        t(
            256,
            &[
                "sourceIPv4Address",
                "packetDeltaCount",
                "flowStartMilliseconds",
                "flowEndReason",
            ],
        ),
        t(
            257,
            &[
                "sourceIPv6Address",
                "packetDeltaCount",
                "flowStartMilliseconds",
                "flowEndReason",
            ],
        ),
    ])
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
            ..Default::default()
        },
        start_unix_ns: 1_700_000_000_123_000_000 + i * 1_000_000,
        end_unix_ns: 1_700_000_001_000_000_000,
        reason: EndReason::IdleTimeout,
        ..Default::default()
    }
}

/// (count, sysUptime, unix_secs, sequence, source id) of a v9 packet.
fn header(p: &[u8]) -> (u16, u32, u32, u32, u32) {
    assert_eq!(p[..2], [0, 9], "version 9");
    let u32_at = |at: usize| u32::from_be_bytes(p[at..at + 4].try_into().unwrap());
    (
        u16::from_be_bytes([p[2], p[3]]),
        u32_at(4),
        u32_at(8),
        u32_at(12),
        u32_at(16),
    )
}

/// The FlowSet ids of a packet.
fn flowsets(p: &[u8]) -> Vec<u16> {
    let mut ids = Vec::new();
    let mut at = 20;
    while at < p.len() {
        ids.push(u16::from_be_bytes([p[at], p[at + 1]]));
        at += usize::from(u16::from_be_bytes([p[at + 2], p[at + 3]]));
    }
    ids
}

#[test]
fn the_sequence_counts_packets_and_losses_stay_in_the_statistics() {
    let t = templates();
    let mut session = V9Session::new(9, 256).unwrap();
    let mut wire = Vec::new();
    for (m, n) in session.template_messages(&t, 1_700_000_002) {
        assert_eq!(n, 0);
        wire.push(m);
        session.sent(0, 0);
    }
    for (m, n) in session.options_messages(&t, (5, 500), &[], &[], 1_700_000_002) {
        assert_eq!(n, 2, "statistics and sampling");
        wire.push(m);
        session.sent(n, 0);
    }
    let mut pending: VecDeque<FlowRecord> = (0..60).map(|i| record(i, i % 3 == 0)).collect();
    while let Some((m, n, used)) = session.next_data_message(&t, &pending, 1_700_000_002) {
        assert!(m.len() <= 256);
        wire.push(m);
        session.sent(n, n);
        pending.drain(..used);
    }
    assert!(wire.len() > 5, "{} packets", wire.len());
    for (i, m) in wire.iter().enumerate() {
        let (_, _, unix_secs, sequence, source_id) = header(m);
        assert_eq!((unix_secs, sequence, source_id), (1_700_000_002, i as u32, 9));
    }
    assert_eq!(
        flowsets(&wire[0]),
        [0, 1, 1, 1],
        "templates, then one options template per FlowSet"
    );
    assert_eq!(session.sequence(), wire.len() as u32);
    assert_eq!(session.stats().exported_records, 60);
    assert_eq!(session.stats().exported_messages, wire.len() as u64);
    // The boot time is a second before the earliest record's start: no
    // flow time is negative or 0.
    assert_eq!(session.boot_ms(), Some(1_699_999_999_123));

    session.lost(&[record(1, false), record(2, false)]);
    assert_eq!(
        session.sequence(),
        wire.len() as u32,
        "a packet count: records given up on are no packets"
    );
    let s = session.stats();
    assert_eq!((s.not_sent_records, s.not_sent_packets, s.not_sent_octets), (2, 5, 500));
}

#[test]
fn a_reload_converts_the_new_templates() {
    let mut session = Session::new(ExportFormat::NetflowV9, 1, 1472).unwrap();
    let first = session.template_messages(&templates(), 1);
    let other = TemplateSet::new(vec![
        Template::new(300, &["packetDeltaCount"], Strictness::Agent).unwrap()
    ]);
    let second = session.template_messages(&other, 2);
    let template_ids = |p: &[u8]| u16::from_be_bytes([p[24], p[25]]);
    assert_eq!((template_ids(&first[0].0), template_ids(&second[0].0)), (256, 300));
    assert!(
        session.withdrawal_messages(&[(256, false)], 3).is_empty(),
        "v9 withdraws nothing"
    );
    let record = record(1, false);
    let (m, n, used) = session.next_data_message_from(&other, [&record], 4).unwrap();
    assert_eq!((n, used, flowsets(&m)), (1, 1, vec![300]));
}

#[tokio::test]
async fn a_netflow9_collector_task_sends_v9_packets_numbered_one_by_one() {
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let settings = CollectorSettings {
        endpoint: Endpoint {
            address: sink.local_addr().unwrap(),
            protocol: Protocol::Udp,
            local_address: None,
            tls: None,
        },
        observation_domain_id: 77,
        max_message_size: 512,
        template_refresh: Duration::from_secs(60),
        queue_limit: crate::collector::DEFAULT_QUEUE_LIMIT,
        format: ExportFormat::NetflowV9,
        exporter_address: None,
    };
    let handle = spawn(settings, Arc::new(templates())).unwrap();
    let records: Vec<FlowRecord> = (0..40).map(|i| record(i, i % 2 == 0)).collect();
    assert!(handle.send(Command::Records(Arc::new(records))).await);
    let stopped = handle
        .stop(Duration::from_secs(5), tokio::sync::watch::channel(false).1)
        .await
        .unwrap();
    assert!(stopped.unsent.is_empty());
    let mut buf = [0u8; 2048];
    let mut sequences = Vec::new();
    let mut data_sets = 0;
    while let Ok(n) = sink.recv(&mut buf) {
        let (_, _, _, sequence, source_id) = header(&buf[..n]);
        assert_eq!(source_id, 77);
        sequences.push(sequence);
        data_sets += flowsets(&buf[..n]).iter().filter(|id| **id >= 256).count();
    }
    assert_eq!(
        sequences,
        (0..sequences.len() as u32).collect::<Vec<_>>(),
        "one number per packet"
    );
    assert!(data_sets >= 2, "records of both templates");
    assert_eq!(stopped.status.records, 40);
    assert_eq!(stopped.status.sequence, sequences.len() as u32);
}

#[test]
fn v9_sampling_records_carry_the_interval_and_algorithm_of_each_sampling() {
    use flowctl_model::{SampleMode, Sampling};
    let t = templates();
    let mut session = V9Session::new(9, 1400).unwrap();
    let random = Sampling::new(10, SampleMode::Random).unwrap();
    let (m, n) = session
        .options_messages(&t, (0, 0), &[], &[random], 1_700_000_002)
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(n, 2, "statistics and one sampling record");
    // The sampling options data FlowSet (id 65001): scope System (the Source
    // ID, 4 bytes), SAMPLING_INTERVAL (4), SAMPLING_ALGORITHM (1).
    let mut at = 20;
    let mut record = None;
    while at + 4 <= m.len() {
        let (id, len) = (
            u16::from_be_bytes([m[at], m[at + 1]]),
            usize::from(u16::from_be_bytes([m[at + 2], m[at + 3]])),
        );
        if id == crate::SAMPLING_TEMPLATE_ID {
            record = Some(m[at + 4..at + 4 + 9].to_vec());
        }
        at += len;
    }
    let r = record.expect("a sampling options data FlowSet");
    assert_eq!(
        u32::from_be_bytes(r[0..4].try_into().unwrap()),
        9,
        "scope: the Source ID"
    );
    assert_eq!(u32::from_be_bytes(r[4..8].try_into().unwrap()), 10, "SAMPLING_INTERVAL");
    assert_eq!(r[8], 2, "SAMPLING_ALGORITHM: random");
}

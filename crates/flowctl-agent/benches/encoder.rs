//! Encoder throughput (IPFIX, and NetFlow v9): flow records encoded per
//! second on one core.
//!
//! Measures the path the agent runs for each collector when a scan hands it
//! records: [`Session::template_messages`] and [`Session::options_messages`]
//! (a template refresh), then [`Session::next_data_message_from`] until the
//! queue is empty, with the templates and message size of a configuration
//! that names only a collector (the built-in IPv4 and IPv6 templates, the
//! default message size). Cases named `nf9-...` encode NetFlow v9.
//! Criterion reports records per second (`elem/s`); `misc/bench/encoder.sh`
//! compares them with the 1,000,000 records/s target.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// criterion_group! generates a public function without documentation.
#![allow(missing_docs)]

use std::{collections::VecDeque, hint::black_box, time::Duration};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use flowctl_agent::config::{self, AgentConfig};

use flowctl_export::{Session, TemplateSet};
use flowctl_ipfix::Strictness;
use flowctl_model::{EndReason, FlowKey, FlowRecord, FlowStats, DIRECTION_EGRESS, DIRECTION_INGRESS};

/// Records handed over per batch (one scan's worth).
const BATCH: usize = 10_000;
/// Export time written in the headers.
const EXPORT_TIME: u32 = 1_700_000_000;

/// The agent's configuration for a file with only a collector on 127.0.0.1
/// over `transport`, in `protocol`.
fn agent_config(transport: &str, protocol: &str) -> AgentConfig {
    let text =
        format!("collectors:\n  - address: 127.0.0.1:4739\n    transport: {transport}\n    protocol: {protocol}\n");
    let file = config::parse(&text, "bench").expect("bench configuration parses");
    config::validate(&file, "bench", Strictness::Agent).expect("bench configuration is valid")
}

/// A small deterministic generator, so every run encodes the same records.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 16
    }
}

/// `n` varied records: TCP, UDP and ICMP, both directions, of IP version 4,
/// 6, or both alternately (`None`).
fn records(n: usize, ip_version: Option<u8>) -> VecDeque<FlowRecord> {
    let mut rng = Lcg(0x5eed);
    (0..n)
        .map(|i| {
            let version = ip_version.unwrap_or(if i % 2 == 0 { 4 } else { 6 });
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            if version == 4 {
                src[10..12].copy_from_slice(&[0xff, 0xff]);
                dst[10..12].copy_from_slice(&[0xff, 0xff]);
                src[12..].copy_from_slice(&(rng.next() as u32).to_be_bytes());
                dst[12..].copy_from_slice(&(rng.next() as u32).to_be_bytes());
            } else {
                src[..8].copy_from_slice(&0x2001_0db8_0000_0000u64.to_be_bytes());
                dst[..8].copy_from_slice(&0x2001_0db8_0001_0000u64.to_be_bytes());
                src[8..].copy_from_slice(&rng.next().to_be_bytes());
                dst[8..].copy_from_slice(&rng.next().to_be_bytes());
            }
            let protocol = [6u8, 17, 6, 17, if version == 4 { 1 } else { 58 }][i % 5];
            let packets = 1 + rng.next() % 10_000;
            let start = 1_700_000_000_000_000_000 + rng.next() % 1_000_000_000_000;
            FlowRecord {
                key: FlowKey {
                    netns_ino: 4_026_531_840,
                    ingress_ifindex: 2 + (i % 3) as u32,
                    egress_ifindex: if i % 2 == 0 { 0 } else { 3 },
                    src_addr: src,
                    dst_addr: dst,
                    src_port: rng.next() as u16,
                    dst_port: rng.next() as u16,
                    vlan_id: 0,
                    inner_vlan_id: 0,
                    direction: if i % 2 == 0 {
                        DIRECTION_INGRESS
                    } else {
                        DIRECTION_EGRESS
                    },
                    ip_version: version,
                    protocol,
                    sampling_tag: 0,
                    mpls_label: 0,
                },
                stats: FlowStats {
                    packets,
                    octets: packets * (64 + rng.next() % 1400),
                    tcp_flags: if protocol == 6 { 0x1b } else { 0 },
                    min_ttl: 60,
                    max_ttl: 64,
                    ..Default::default()
                },
                total_packets: packets * 3,
                total_octets: packets * 3000,
                start_unix_ns: start,
                end_unix_ns: start + rng.next() % 90_000_000_000,
                reason: EndReason::IdleTimeout,
            }
        })
        .collect()
}

/// One collector's pump with templates due: templates, options records, then
/// data messages until `pending` is empty. Returns the bytes produced.
fn export(session: &mut Session, templates: &TemplateSet, pending: &mut VecDeque<FlowRecord>) -> usize {
    let mut bytes = 0;
    for (msg, _) in session.template_messages(templates, EXPORT_TIME) {
        bytes += black_box(msg).len();
        session.sent(0, 0);
    }
    for (msg, n) in session.options_messages(templates, (0, 0), &[], &[], EXPORT_TIME) {
        bytes += black_box(msg).len();
        session.sent(n, 0);
    }
    while let Some((msg, n, used)) = session.next_data_message_from(templates, pending.iter(), EXPORT_TIME) {
        bytes += black_box(msg).len();
        session.sent(n, n);
        pending.drain(..used);
    }
    bytes
}

fn encoder(c: &mut Criterion) {
    let cases = [
        ("udp", Some(4), "ipfix"),
        ("udp", Some(6), "ipfix"),
        ("udp", None, "ipfix"),
        ("tcp", Some(4), "ipfix"),
        ("tcp", Some(6), "ipfix"),
        ("udp", Some(4), "netflow9"),
        ("udp", None, "netflow9"),
    ];
    let mut group = c.benchmark_group("encoder");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for (transport, ip_version, protocol) in cases {
        let config = agent_config(transport, protocol);
        let c = &config.collectors[0];
        let flows = ip_version.map_or("mixed".to_string(), |v| format!("ipv{v}"));
        // For example `udp1472/ipv4`: transport, message size, flows
        // (`nf9-udp1472/ipv4` in NetFlow v9).
        let format = if protocol == "netflow9" { "nf9-" } else { "" };
        let name = format!("{format}{transport}{}/{flows}", c.max_message_size);
        let templates = TemplateSet::new(config.templates.clone());
        let input = records(BATCH, ip_version);
        let mut session = Session::new(c.format, c.observation_domain_id, c.max_message_size).unwrap();
        // Every record is encoded: none is skipped for lack of a template.
        let mut check = input.clone();
        export(&mut session, &templates, &mut check);
        assert_eq!(session.stats().not_sent_records, 0, "{name}");
        assert_eq!(session.stats().exported_records, BATCH as u64, "{name}");
        group.bench_function(&name, |b| {
            b.iter_batched_ref(
                || input.clone(),
                |pending| export(&mut session, &templates, pending),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, encoder);
criterion_main!(benches);

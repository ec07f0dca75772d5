//! NetFlow v9 packets read back by a reader written here from RFC 3954 (not
//! from the encoder): header, FlowSets and their padding, templates,
//! options templates, records, and flow times recovered as collectors do.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::Rng;
use flowctl_ipfix::netflow9::{Uptime, V9MessageBuilder, V9OptionsTemplate, V9Splitter, V9Template};
use flowctl_ipfix::options::{exporter_stats_template, interface_names_template, sampling_template, OptionValue};
use flowctl_ipfix::{RecordValues, Strictness, Template};
use flowctl_model::{key_addr, EndReason, FlowKey, FlowRecord, FlowStats};

const SOURCE_ID: u32 = 0x0a0b_0c0d;
const EXPORT_SECS: u32 = 1_750_000_000;
const NS_PER_MS: u64 = 1_000_000;

/// The built-in templates' fields (flowctl-agent's DEFAULT_FIELDS).
fn builtin(id: u16, v: &str) -> Template {
    let names = [
        format!("source{v}Address"),
        format!("destination{v}Address"),
        "sourceTransportPort".into(),
        "destinationTransportPort".into(),
        "protocolIdentifier".into(),
        format!("icmpTypeCode{v}"),
        "packetDeltaCount".into(),
        "octetDeltaCount".into(),
        "flowStartMilliseconds".into(),
        "flowEndMilliseconds".into(),
        "tcpControlBits".into(),
        "ingressInterface".into(),
        "egressInterface".into(),
        "flowDirection".into(),
        "flowEndReason".into(),
        "ipVersion".into(),
    ];
    Template::new(id, &names, Strictness::Agent).unwrap()
}

/// A packet as RFC 3954 §5.1 lays it out.
#[derive(Debug)]
struct Packet {
    count: u16,
    sys_uptime: u32,
    unix_secs: u32,
    sequence: u32,
    source_id: u32,
    /// FlowSet id and body (after the 4-byte FlowSet header).
    flowsets: Vec<(u16, Vec<u8>)>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn parse(p: &[u8]) -> Packet {
    assert_eq!(u16_at(p, 0), 9, "version");
    let mut flowsets = Vec::new();
    let mut at = 20;
    while at < p.len() {
        let (id, len) = (u16_at(p, at), usize::from(u16_at(p, at + 2)));
        assert!(
            len >= 4 && at + len <= p.len(),
            "FlowSet length {len} at {at} of {}",
            p.len()
        );
        flowsets.push((id, p[at + 4..at + len].to_vec()));
        at += len;
    }
    assert_eq!(at, p.len(), "FlowSets fill the packet");
    Packet {
        count: u16_at(p, 2),
        sys_uptime: u32_at(p, 4),
        unix_secs: u32_at(p, 8),
        sequence: u32_at(p, 12),
        source_id: u32_at(p, 16),
        flowsets,
    }
}

/// A decoded record: its template, whether it is an options record, and
/// its fields as (type, bytes), scope fields first.
#[derive(Debug, Clone)]
struct Record {
    template: u16,
    options: bool,
    fields: Vec<(u16, Vec<u8>)>,
}

impl Record {
    fn get(&self, field_type: u16) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(t, _)| *t == field_type)
            .map(|(_, v)| v.as_slice())
    }

    fn uint(&self, field_type: u16) -> u64 {
        let v = self
            .get(field_type)
            .unwrap_or_else(|| panic!("no field {field_type} in {self:?}"));
        v.iter().fold(0, |acc, b| acc << 8 | u64::from(*b))
    }
}

/// Field specifiers: (type, length).
type Specs = Vec<(u16, u16)>;

/// A collector's template cache and reader.
#[derive(Default)]
struct Reader {
    templates: HashMap<u16, Specs>,
    /// Options templates: scope (type, length) then fields (type, length).
    options: HashMap<u16, (Specs, Specs)>,
}

impl Reader {
    /// The records of a packet; checks the header's count and the padding.
    fn read(&mut self, p: &Packet) -> Vec<Record> {
        let mut out = Vec::new();
        let mut count = 0;
        for (id, body) in &p.flowsets {
            let aligned = (body.len() + 4) % 4 == 0;
            match id {
                0 => {
                    let mut at = 0;
                    while at + 4 <= body.len() {
                        let (tid, n) = (u16_at(body, at), usize::from(u16_at(body, at + 2)));
                        let fields = (0..n).map(|i| (u16_at(body, at + 4 + 4 * i), u16_at(body, at + 6 + 4 * i)));
                        self.templates.insert(tid, fields.collect());
                        at += 4 + 4 * n;
                        count += 1;
                    }
                    assert_eq!(at, body.len(), "template FlowSets need no padding");
                    assert!(aligned);
                }
                1 => {
                    let (tid, scope_len, fields_len) = (u16_at(body, 0), u16_at(body, 2), u16_at(body, 4));
                    assert_eq!((scope_len % 4, fields_len % 4), (0, 0));
                    let spec = |at: usize, len: u16| {
                        (0..usize::from(len / 4))
                            .map(|i| (u16_at(body, at + 4 * i), u16_at(body, at + 2 + 4 * i)))
                            .collect::<Vec<_>>()
                    };
                    let scope = spec(6, scope_len);
                    let fields = spec(6 + usize::from(scope_len), fields_len);
                    let end = 6 + usize::from(scope_len + fields_len);
                    assert!(body.len() - end < 4, "one options template per FlowSet, then padding");
                    assert!(body[end..].iter().all(|b| *b == 0), "zero padding");
                    assert!(aligned, "options template FlowSets are padded to 4 bytes");
                    self.options.insert(tid, (scope, fields));
                    count += 1;
                }
                id => {
                    let (specs, options) = match (self.templates.get(id), self.options.get(id)) {
                        (Some(t), _) => (t.clone(), false),
                        (None, Some((s, f))) => (s.iter().chain(f).copied().collect(), true),
                        _ => panic!("data FlowSet {id} before its template"),
                    };
                    let len: usize = specs.iter().map(|(_, l)| usize::from(*l)).sum();
                    let n = body.len() / len;
                    let pad = body.len() % len;
                    assert!(pad < 4 && pad < len, "padding {pad} of FlowSet {id}");
                    // Padded to 4 bytes, unless the padding would be taken for a record.
                    let missing = (4 - (body.len() + 4) % 4) % 4;
                    assert!(aligned || missing >= len, "FlowSet {id} is padded to 4 bytes");
                    assert!(body[n * len..].iter().all(|b| *b == 0), "zero padding");
                    for r in 0..n {
                        let mut at = r * len;
                        let mut fields = Vec::new();
                        for (t, l) in &specs {
                            fields.push((*t, body[at..at + usize::from(*l)].to_vec()));
                            at += usize::from(*l);
                        }
                        out.push(Record {
                            template: *id,
                            options,
                            fields,
                        });
                        count += 1;
                    }
                }
            }
        }
        assert_eq!(usize::from(p.count), count, "the header counts every record");
        out
    }
}

/// Records of the last hour before the export time, of every protocol kind.
fn records(n: usize) -> Vec<FlowRecord> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let now_ns = u64::from(EXPORT_SECS) * 1_000_000_000;
    (0..n)
        .map(|i| {
            // i % 6 goes through TCP, UDP and ICMP of both IP versions.
            let v6 = i % 2 == 1;
            let protocol = [6u8, 17, if v6 { 58 } else { 1 }][i % 3];
            let (src, dst): (IpAddr, IpAddr) = if v6 {
                (
                    format!("2001:db8::{i:x}").parse().unwrap(),
                    "2001:db8:ffff::1".parse().unwrap(),
                )
            } else {
                (
                    Ipv4Addr::from(0x0a00_0000 + i as u32).into(),
                    "192.0.2.1".parse().unwrap(),
                )
            };
            let start = now_ns - 3_600_000_000_000 + rng.below(3_500_000_000_000);
            let end = start + rng.below(60_000_000_000);
            let packets = 1 + rng.below(100_000);
            FlowRecord {
                key: FlowKey {
                    ingress_ifindex: rng.below(1000) as u32,
                    egress_ifindex: rng.below(1000) as u32,
                    src_addr: key_addr(src),
                    dst_addr: key_addr(dst),
                    src_port: if protocol == 1 || protocol == 58 {
                        0
                    } else {
                        rng.next() as u16
                    },
                    dst_port: rng.next() as u16,
                    direction: rng.below(2) as u8,
                    ip_version: if v6 { 6 } else { 4 },
                    protocol,
                    ..Default::default()
                },
                stats: FlowStats {
                    packets,
                    octets: packets * (40 + rng.below(1460)),
                    tcp_flags: if protocol == 6 { rng.below(0x200) as u16 } else { 0 },
                    ..Default::default()
                },
                total_packets: packets,
                total_octets: 0,
                start_unix_ns: start,
                end_unix_ns: end,
                reason: EndReason::IdleTimeout,
            }
        })
        .collect()
}

/// The absolute time of a sysUptime field, as nfdump and pmacct compute it.
fn absolute_ms(p: &Packet, field: u64) -> u64 {
    u64::from(p.unix_secs) * 1000 - u64::from(p.sys_uptime) + field
}

#[test]
fn built_in_templates_and_records_read_back_exactly_across_packets() {
    let (v4, dropped4) = V9Template::lenient(&builtin(256, "IPv4"));
    let (v6, dropped6) = V9Template::lenient(&builtin(257, "IPv6"));
    assert_eq!(
        dropped4.iter().chain(&dropped6).map(|d| d.name).collect::<Vec<_>>(),
        ["flowEndReason"; 2]
    );
    let input = records(300);
    let mut uptime = Uptime::default();
    let empty = V9MessageBuilder::new(512, SOURCE_ID).unwrap();
    empty.check(&v4).unwrap();
    empty.check(&v6).unwrap();
    let first_sequence = u32::MAX - 2;
    let mut packets = V9Splitter::starting_with(empty, EXPORT_SECS, first_sequence, &mut uptime);
    packets.push(|m| m.push_template(&v4)).unwrap();
    packets.push(|m| m.push_template(&v6)).unwrap();
    for r in &input {
        let values = RecordValues {
            record: r,
            observation_domain_id: SOURCE_ID,
            exporter_address: None,
        };
        let t = if r.key.ip_version == 4 { &v4 } else { &v6 };
        packets.push(|m| m.push_record(t, &values)).unwrap();
    }
    let out = packets.finish();
    assert!(out.len() > 10, "{} packets", out.len());

    let mut reader = Reader::default();
    let mut got = Vec::new();
    for (i, (bytes, data_records)) in out.iter().enumerate() {
        assert!(bytes.len() <= 512);
        let p = parse(bytes);
        assert_eq!(
            p.sequence,
            first_sequence.wrapping_add(i as u32),
            "the sequence counts packets"
        );
        assert_eq!((p.source_id, p.unix_secs), (SOURCE_ID, EXPORT_SECS));
        let records = reader.read(&p);
        assert_eq!(records.len(), *data_records as usize);
        got.extend(records.into_iter().map(|r| (r, absolute_ms(&p, 0))));
    }
    assert_eq!(reader.templates[&256].len(), 15, "flowEndReason dropped");
    assert_eq!(got.len(), input.len());
    for ((r, boot), rec) in got.iter().zip(&input) {
        let k = &rec.key;
        let icmp = k.protocol == 1 || k.protocol == 58;
        assert_eq!(r.template, if k.ip_version == 4 { 256 } else { 257 });
        let addr = |t4: u16, t6: u16| -> IpAddr {
            match k.ip_version {
                4 => Ipv4Addr::from(u32::try_from(r.uint(t4)).unwrap()).into(),
                _ => Ipv6Addr::from(<[u8; 16]>::try_from(r.get(t6).unwrap()).unwrap()).into(),
            }
        };
        assert_eq!(addr(8, 27), k.src_ip());
        assert_eq!(addr(12, 28), k.dst_ip());
        assert_eq!(r.uint(4), u64::from(k.protocol));
        assert_eq!(r.uint(7), u64::from(k.src_port));
        assert_eq!(r.uint(11), if icmp { 0 } else { u64::from(k.dst_port) });
        assert_eq!(
            r.uint(32),
            if icmp { u64::from(k.dst_port) } else { 0 },
            "ICMP_TYPE, v4 and v6"
        );
        assert_eq!((r.uint(2), r.uint(1)), (rec.stats.packets, rec.stats.octets));
        assert_eq!(r.get(6).unwrap().len(), 1, "TCP_FLAGS is one byte");
        assert_eq!(r.uint(6), u64::from(rec.stats.tcp_flags & 0xff));
        assert_eq!(
            (r.uint(10), r.uint(14)),
            (u64::from(k.ingress_ifindex), u64::from(k.egress_ifindex))
        );
        assert_eq!(
            (r.uint(61), r.uint(60)),
            (u64::from(k.direction), u64::from(k.ip_version))
        );
        assert_eq!(
            boot + r.uint(22),
            rec.start_unix_ns / NS_PER_MS,
            "FIRST_SWITCHED to the millisecond"
        );
        assert_eq!(
            boot + r.uint(21),
            rec.end_unix_ns / NS_PER_MS,
            "LAST_SWITCHED to the millisecond"
        );
        assert!(r.get(136).is_none());
    }
}

#[test]
fn records_older_than_the_exporter_keep_their_times_and_uptime_grows() {
    let t = V9Template::strict(
        &Template::new(
            300,
            &["flowStartMilliseconds", "flowEndMilliseconds", "packetDeltaCount"],
            Strictness::Agent,
        )
        .unwrap(),
    )
    .unwrap();
    let mut uptime = Uptime::default();
    let mut reader = Reader::default();
    let mut last_uptime = 0;
    // A fresh record, then one from a spool two days old, then a fresh one.
    for (i, age_ms) in [1_000u64, 2 * 86_400_000 + 17, 5].into_iter().enumerate() {
        let export = EXPORT_SECS + i as u32;
        let start_ms = u64::from(export) * 1000 - age_ms;
        let rec = FlowRecord {
            start_unix_ns: start_ms * NS_PER_MS + 999_999,
            end_unix_ns: (start_ms + 3) * NS_PER_MS,
            stats: FlowStats {
                packets: 1,
                ..Default::default()
            },
            ..Default::default()
        };
        let values = RecordValues {
            record: &rec,
            observation_domain_id: 1,
            exporter_address: None,
        };
        let mut m = V9MessageBuilder::new(256, 1).unwrap();
        m.push_template(&t).unwrap();
        m.push_record(&t, &values).unwrap();
        let p = parse(&m.finish(export, i as u32, &mut uptime));
        assert!(
            p.sys_uptime >= last_uptime,
            "sysUptime never goes back: {} < {last_uptime}",
            p.sys_uptime
        );
        last_uptime = p.sys_uptime;
        let r = &reader.read(&p)[0];
        assert_eq!(absolute_ms(&p, r.uint(22)), start_ms);
        assert_eq!(absolute_ms(&p, r.uint(21)), start_ms + 3);
    }
}

#[test]
fn options_records_take_the_v9_scopes_one_template_per_flowset() {
    let stats = V9OptionsTemplate::from_ipfix(&exporter_stats_template(65000)).unwrap();
    let sampling = V9OptionsTemplate::from_ipfix(&sampling_template(65001)).unwrap();
    let names = V9OptionsTemplate::from_ipfix(&interface_names_template(65002)).unwrap();
    let mut m = V9MessageBuilder::new(1472, SOURCE_ID).unwrap();
    for t in [&stats, &sampling, &names] {
        m.check_options(t).unwrap();
        m.push_options_template(t).unwrap();
    }
    let u = OptionValue::Unsigned;
    let stats_values = [u(7), u(11), u(22), u(1), u(2), u(3), u(4), u(5)];
    m.push_options_values(&stats, &stats_values).unwrap();
    m.push_options_values(&sampling, &[u(7), u(1), u(1)]).unwrap();
    let eth = [
        u(3),
        OptionValue::Text("eth0".into()),
        OptionValue::Text("uplink".into()),
    ];
    m.push_options_values(&names, &eth).unwrap();
    assert_eq!(m.data_record_count(), 3);
    let p = parse(&m.finish(EXPORT_SECS, 0, &mut Uptime::default()));
    let ids: Vec<u16> = p.flowsets.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [1, 1, 1, 65000, 65001, 65002]);
    let mut reader = Reader::default();
    let records = reader.read(&p);
    assert_eq!(reader.options[&65000], (vec![(1, 4)], vec![(41, 8), (42, 8)]));
    assert_eq!(reader.options[&65002], (vec![(2, 4)], vec![(82, 16), (83, 64)]));
    assert!(records.iter().all(|r| r.options));
    let (s, samp, n) = (&records[0], &records[1], &records[2]);
    assert_eq!(
        (s.uint(1), s.uint(41), s.uint(42)),
        (7, 11, 22),
        "scope System, then the kept counters"
    );
    assert_eq!((samp.uint(1), samp.uint(34), samp.uint(35)), (7, 1, 1));
    assert_eq!(n.uint(2), 3, "scope Interface: the ifindex");
    assert_eq!(&n.get(82).unwrap()[..5], b"eth0\0");
    assert_eq!(&n.get(83).unwrap()[..7], b"uplink\0");
}

#[test]
fn packets_stay_within_their_size_and_short_records_go_unpadded() {
    let tiny = V9Template::strict(&Template::new(300, &["protocolIdentifier"], Strictness::Agent).unwrap()).unwrap();
    let pair = V9Template::strict(
        &Template::new(
            301,
            &["protocolIdentifier", "ipVersion", "flowDirection"],
            Strictness::Agent,
        )
        .unwrap(),
    )
    .unwrap();
    let rec = FlowRecord::default();
    let values = RecordValues {
        record: &rec,
        observation_domain_id: 1,
        exporter_address: None,
    };
    for size in [64, 65, 66, 67, 100] {
        let mut uptime = Uptime::default();
        let mut packets = V9Splitter::starting_with(V9MessageBuilder::new(size, 1).unwrap(), 1, 0, &mut uptime);
        packets.push(|m| m.push_template(&tiny)).unwrap();
        packets.push(|m| m.push_template(&pair)).unwrap();
        for i in 0..50 {
            let t = if i % 7 < 4 { &tiny } else { &pair };
            packets.push(|m| m.push_record(t, &values)).unwrap();
        }
        let out = packets.finish();
        let mut reader = Reader::default();
        let mut n = 0;
        for (bytes, _) in &out {
            assert!(bytes.len() <= size, "{} > {size}", bytes.len());
            let p = parse(bytes);
            for (id, body) in &p.flowsets {
                if *id == 300 {
                    assert!(body.iter().all(|b| *b == 0));
                }
            }
            n += reader.read(&p).len();
        }
        assert_eq!(n, 50, "size {size}");
    }
    assert!(V9MessageBuilder::new(63, 1).is_err());
    let wide: Vec<&str> = flowctl_ipfix::fields::all()
        .iter()
        .filter(|f| f.is_available() && f.id <= 127 && f.kind != flowctl_ipfix::FieldKind::Ipv6Address)
        .map(|f| f.name)
        .collect();
    let wide = V9Template::strict(&Template::new(302, &wide, Strictness::Agent).unwrap()).unwrap();
    let small = V9MessageBuilder::new(64, 1).unwrap();
    assert!(small.check(&wide).is_err(), "a template that can never fit is reported");
    assert!(small.clone().push_record(&wide, &values).is_err());
}

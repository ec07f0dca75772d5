//! Every record field through MessageBuilder and the ipfixrw-backed Decoder,
//! with values computed here from the flow record.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv6Addr};

use common::{random_record, Rng};
use flowctl_ipfix::fields::{self, ContextField, FieldKind, RecordField, Source};
use flowctl_ipfix::{
    DecodedMessage, DecodedValue, Decoder, FieldValue, MessageBuilder, RecordValues, Strictness, SyntheticValues,
    Template,
};
use flowctl_model::{key_addr, FlowRecord, MplsLabel};

const NS_PER_S: u64 = 1_000_000_000;
const NS_PER_MS: u64 = 1_000_000;
const ODID: u32 = 0x0102_0304;

/// What the collector must see for `field` of `rec`, derived from the
/// definitions (not from the encoder) for every field known when it was
/// written.
fn expected(rec: &FlowRecord, field: RecordField) -> DecodedValue {
    use DecodedValue::{Ipv4, Ipv6, Milliseconds, Nanoseconds, Seconds, Unsigned};
    let k = &rec.key;
    let icmp4 = k.ip_version == 4 && k.protocol == 1;
    let icmp6 = k.ip_version == 6 && k.protocol == 58;
    let [icmp_type, icmp_code] = k.dst_port.to_be_bytes();
    let v4 = |ip: IpAddr| match ip {
        IpAddr::V4(a) => Ipv4(a),
        IpAddr::V6(a) => panic!("{a} in an IPv4 field"),
    };
    let only = |cond: bool, v: u64| Unsigned(if cond { v } else { 0 });
    match field {
        RecordField::PacketDelta => Unsigned(rec.stats.packets),
        RecordField::OctetDelta => Unsigned(rec.stats.octets),
        RecordField::PacketTotal => Unsigned(rec.total_packets),
        RecordField::OctetTotal => Unsigned(rec.total_octets),
        RecordField::Protocol => Unsigned(k.protocol.into()),
        RecordField::ClassOfService => Unsigned(rec.stats.tos.into()),
        RecordField::Dscp => Unsigned((rec.stats.tos / 4).into()),
        RecordField::TcpFlags => Unsigned(rec.stats.tcp_flags.into()),
        RecordField::SrcPort => Unsigned(k.src_port.into()),
        RecordField::DstPort => only(k.protocol != 1 && k.protocol != 58, k.dst_port.into()),
        RecordField::SrcIpv4 => v4(k.src_ip()),
        RecordField::DstIpv4 => v4(k.dst_ip()),
        RecordField::SrcIpv6 => Ipv6(Ipv6Addr::from(k.src_addr)),
        RecordField::DstIpv6 => Ipv6(Ipv6Addr::from(k.dst_addr)),
        RecordField::IngressInterface => Unsigned(k.ingress_ifindex.into()),
        RecordField::EgressInterface => Unsigned(k.egress_ifindex.into()),
        RecordField::IcmpTypeCodeV4 => only(icmp4, k.dst_port.into()),
        RecordField::IcmpTypeCodeV6 => only(icmp6, k.dst_port.into()),
        RecordField::IcmpTypeV4 => only(icmp4, icmp_type.into()),
        RecordField::IcmpCodeV4 => only(icmp4, icmp_code.into()),
        RecordField::IcmpTypeV6 => only(icmp6, icmp_type.into()),
        RecordField::IcmpCodeV6 => only(icmp6, icmp_code.into()),
        RecordField::MinTtl => Unsigned(rec.stats.min_ttl.into()),
        RecordField::MaxTtl => Unsigned(rec.stats.max_ttl.into()),
        RecordField::VlanId => Unsigned(k.vlan_id.into()),
        RecordField::InnerVlanId => Unsigned(k.inner_vlan_id.into()),
        // octetArray of 3: label, TC, S of the top entry; all 0 without MPLS.
        RecordField::MplsTopLabel => DecodedValue::MplsLabel(k.mpls_top_label().unwrap_or(MplsLabel {
            label: 0,
            tc: 0,
            bottom_of_stack: false,
        })),
        RecordField::IpVersion => Unsigned(k.ip_version.into()),
        RecordField::FlowDirection => Unsigned(k.direction.into()),
        RecordField::EndReason => Unsigned(rec.reason as u64),
        RecordField::StartSeconds => Seconds((rec.start_unix_ns / NS_PER_S) as u32),
        RecordField::EndSeconds => Seconds((rec.end_unix_ns / NS_PER_S) as u32),
        RecordField::StartMilliseconds => Milliseconds(rec.start_unix_ns / NS_PER_MS),
        RecordField::EndMilliseconds => Milliseconds(rec.end_unix_ns / NS_PER_MS),
        RecordField::StartNanoseconds => Nanoseconds(rec.start_unix_ns),
        RecordField::EndNanoseconds => Nanoseconds(rec.end_unix_ns),
        RecordField::DurationMilliseconds => {
            let ms = rec.end_unix_ns / NS_PER_MS - rec.start_unix_ns / NS_PER_MS;
            Unsigned(ms.min(u32::MAX.into()))
        }
        // A field added since: an unsigned value must arrive as the table
        // computes it; any other kind needs its own line above.
        #[allow(unreachable_patterns)]
        other => match other.value(rec) {
            FieldValue::Unsigned(v) => Unsigned(v),
            v => panic!("{other:?} ({v:?}) needs an expected value in roundtrip.rs"),
        },
    }
}

/// A template of every available field usable for `ip_version` flows.
fn full_template(id: u16, ip_version: u8) -> Template {
    let other = if ip_version == 4 {
        FieldKind::Ipv6Address
    } else {
        FieldKind::Ipv4Address
    };
    let names: Vec<&str> = fields::all()
        .iter()
        .filter(|f| f.is_available() && f.kind != other)
        .map(|f| f.name)
        .collect();
    Template::new(id, &names, Strictness::Agent).unwrap()
}

/// The exporter address given with records of IP version `v`.
fn exporter(v: u8) -> std::net::IpAddr {
    if v == 4 {
        "198.51.100.1".parse().unwrap()
    } else {
        "2001:db8:e::1".parse().unwrap()
    }
}

/// Encodes `rec` with its template in one message and decodes it.
fn round_trip(rec: &FlowRecord) -> (Template, Vec<u8>, DecodedMessage) {
    let t = full_template(300 + u16::from(rec.key.ip_version), rec.key.ip_version);
    assert_eq!(t.ip_version(), Some(rec.key.ip_version));
    let mut m = MessageBuilder::new(1500, ODID).unwrap();
    m.check(&t).unwrap();
    m.push_template(&t).unwrap();
    let values = RecordValues {
        record: rec,
        observation_domain_id: ODID,
        exporter_address: Some(exporter(rec.key.ip_version)),
    };
    m.push_record(&t, &values).unwrap();
    let msg = m.finish(1_700_000_000, 42);
    let decoded = Decoder::new().decode(&msg).unwrap();
    (t, msg, decoded)
}

fn check_record(rec: &FlowRecord) {
    let (t, _, decoded) = round_trip(rec);
    assert_eq!(decoded.templates, [t.id]);
    assert_eq!(decoded.records.len(), 1);
    let got = &decoded.records[0];
    assert_eq!(got.template_id, t.id);
    assert!(!got.options);
    assert_eq!(got.fields.len(), t.fields.len());
    for (def, field) in t.fields.iter().zip(&got.fields) {
        assert_eq!(
            (field.id, field.name.as_str(), field.enterprise),
            (def.id, def.name, None)
        );
        let want = match def.source {
            Source::Record(f) => expected(rec, f),
            Source::Context(ContextField::ObservationDomainId) => DecodedValue::Unsigned(ODID.into()),
            Source::Context(ContextField::ExporterIpv4 | ContextField::ExporterIpv6) => {
                match exporter(rec.key.ip_version) {
                    std::net::IpAddr::V4(a) => DecodedValue::Ipv4(a),
                    std::net::IpAddr::V6(a) => DecodedValue::Ipv6(a),
                }
            }
            Source::Unavailable(_) => unreachable!("agent templates have none"),
        };
        assert_eq!(field.value, want, "{} of {rec:?}", def.name);
    }
}

fn with_port(mut rec: FlowRecord, src_port: u16, dst_port: u16) -> FlowRecord {
    rec.key.src_port = src_port;
    rec.key.dst_port = dst_port;
    rec
}

#[test]
fn every_record_field_is_in_the_table_and_the_templates() {
    let v4 = full_template(300, 4);
    let v6 = full_template(301, 6);
    let used: HashSet<RecordField> = v4
        .fields
        .iter()
        .chain(&v6.fields)
        .filter_map(|f| match f.source {
            Source::Record(r) => Some(r),
            _ => None,
        })
        .collect();
    for &field in RecordField::ALL {
        assert!(used.contains(&field), "{field:?} is not exported");
    }
}

#[test]
fn ipv4_and_ipv6_flows_round_trip_exactly() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let tcp = random_record(&mut rng, "192.0.2.1", "198.51.100.7", 6);
    check_record(&tcp);
    let echo = with_port(random_record(&mut rng, "10.0.0.1", "10.0.0.2", 1), 0, 8 << 8);
    check_record(&echo);
    let unreachable = with_port(
        random_record(&mut rng, "2001:db8::1", "2001:db8::2", 58),
        0,
        (1 << 8) | 4,
    );
    check_record(&unreachable);
    let udp6 = random_record(&mut rng, "fe80::1", "ff02::fb", 17);
    check_record(&udp6);
    // The other ICMP on the other IP version: no type/code fields, port 0.
    check_record(&with_port(
        random_record(&mut rng, "192.0.2.1", "192.0.2.2", 58),
        0,
        0x8000,
    ));
    check_record(&with_port(
        random_record(&mut rng, "2001:db8::1", "2001:db8::2", 1),
        0,
        0x0303,
    ));
}

#[test]
fn random_flows_round_trip_exactly() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let addrs = [("203.0.113.9", "192.0.2.200"), ("2001:db8:1::9", "2001:db8:2::1")];
    for _ in 0..300 {
        let (src, dst) = addrs[rng.below(2) as usize];
        let protocol = [1, 6, 17, 58, 132, 47][rng.below(6) as usize];
        let mut rec = random_record(&mut rng, src, dst, protocol);
        if rng.below(4) == 0 {
            rec.end_unix_ns = rec.start_unix_ns + rng.below(u64::MAX / 4);
            rec.end_unix_ns = rec.end_unix_ns.min(4_000_000_000 * NS_PER_S);
        }
        check_record(&rec);
    }
}

#[test]
fn nanoseconds_are_ntp_on_the_wire() {
    let mut rng = Rng(77);
    let rec = random_record(&mut rng, "192.0.2.1", "192.0.2.2", 17);
    let (_, msg, _) = round_trip(&rec);
    // Read the raw NTP value with ipfixrw alone.
    let store: ipfixrw::template_store::TemplateStore = std::rc::Rc::new(std::cell::RefCell::new(HashMap::<
        u16,
        ipfixrw::template_store::Template,
    >::new()));
    let formatter = std::rc::Rc::new(ipfixrw::information_elements::get_default_formatter());
    let parsed = ipfixrw::parse_ipfix_message(&msg, store, formatter).unwrap();
    let record = parsed.iter_data_records().next().unwrap();
    let key = ipfixrw::parser::DataRecordKey::Str("flowStartNanoseconds");
    let Some(ipfixrw::parser::DataRecordValue::DateTimeNanoseconds(ntp)) = record.values.get(&key) else {
        panic!("no flowStartNanoseconds in {record:?}");
    };
    // Seconds since 1900, modulo 2^32 (NTP era 1 starts in 2036).
    assert_eq!(ntp >> 32, (rec.start_unix_ns / NS_PER_S + 2_208_988_800) % (1 << 32));
    let fraction_ns = ((ntp & 0xffff_ffff) * NS_PER_S) >> 32;
    assert_eq!(fraction_ns, rec.start_unix_ns % NS_PER_S);
}

#[test]
fn synthetic_values_fill_unavailable_fields_and_default_to_zero() {
    let names = [
        "SourceIPv4PrefixLength",
        "ipNextHopIPv4Address",
        "bgpSourceAsNumber",
        "bgpDestinationAsNumber",
        "fragmentIdentification",
        "flowStartMilliseconds",
        "octetDeltaCount",
    ];
    let t = Template::new(400, &names, Strictness::Synthetic).unwrap();
    let next_hop = "10.1.2.3".parse().unwrap();
    let start_ns = 1_700_000_000_123_456_789;
    let given = HashMap::from([
        (9, FieldValue::Unsigned(24)),
        (15, FieldValue::Address(key_addr(next_hop))),
        (16, FieldValue::Unsigned(65001)),
        (54, FieldValue::Unsigned(1 << 40)),
        (152, FieldValue::Nanoseconds(start_ns)),
    ]);
    let mut m = MessageBuilder::new(512, 7).unwrap();
    m.push_template(&t).unwrap();
    m.push_record(&t, &SyntheticValues(given)).unwrap();
    let decoded = Decoder::new().decode(&m.finish(0, 0)).unwrap();
    let r = &decoded.records[0];
    assert_eq!(r.unsigned("sourceIPv4PrefixLength"), Some(24));
    assert_eq!(
        r.get("ipNextHopIPv4Address"),
        Some(&DecodedValue::Ipv4("10.1.2.3".parse().unwrap()))
    );
    assert_eq!(r.unsigned("bgpSourceAsNumber"), Some(65001));
    assert_eq!(r.unsigned("bgpDestinationAsNumber"), Some(0), "missing values are 0");
    assert_eq!(r.unsigned("fragmentIdentification"), Some(u32::MAX.into()), "saturated");
    assert_eq!(
        r.get("flowStartMilliseconds"),
        Some(&DecodedValue::Milliseconds(start_ns / NS_PER_MS))
    );
    assert_eq!(r.unsigned("octetDeltaCount"), Some(0));
}

//! The field table against ipfixrw's copy of the IANA registry and against
//! the reference tool's field names.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use flowctl_ipfix::fields::{self, FieldKind, Source};
use flowctl_ipfix::{Strictness, Template};
use ipfixrw::parser::DataRecordType;

/// The 31 names of the reference tool (`ipfixfields` in its `editme.go`) and
/// their IE ids, from /work/shared/reference/linux-flow-exporter.md §5.2.
const REFERENCE: [(&str, u16); 31] = [
    ("FlowEndMilliseconds", 153),
    ("FlowStartMilliseconds", 152),
    ("FlowEndNanoseconds", 157),
    ("FlowStartNanoseconds", 156),
    ("OctetDeltaCount", 1),
    ("PacketDeltaCount", 2),
    ("IpVersion", 60),
    ("IngressInterface", 10),
    ("EgressInterface", 14),
    ("FlowDirection", 61),
    ("SourceIPv4Address", 8),
    ("DestinationIPv4Address", 12),
    ("SourceTransportPort", 7),
    ("DestinationTransportPort", 11),
    ("TcpControlBits", 6),
    ("ProtocolIdentifier", 4),
    ("IpClassOfService", 5),
    ("SourceIPv4PrefixLength", 9),
    ("DestinationIPv4PrefixLength", 13),
    ("IpNextHopIPv4Address", 15),
    ("BgpSourceAsNumber", 16),
    ("BgpDestinationAsNumber", 17),
    ("BgpNextHopIPv4Address", 18),
    ("IcmpTypeCodeIPv4", 32),
    ("MinimumTTL", 52),
    ("MaximumTTL", 53),
    ("FragmentIdentification", 54),
    ("VlanId", 58),
    ("FlowEndReason", 136),
    ("Dot1qVlanId", 243),
    ("Dot1qCustomerVlanId", 245),
];

fn registry_type(kind: FieldKind) -> DataRecordType {
    match kind {
        FieldKind::Unsigned => DataRecordType::UnsignedInt,
        FieldKind::Ipv4Address => DataRecordType::Ipv4Addr,
        FieldKind::Ipv6Address => DataRecordType::Ipv6Addr,
        FieldKind::DateTimeSeconds => DataRecordType::DateTimeSeconds,
        FieldKind::DateTimeMilliseconds => DataRecordType::DateTimeMilliseconds,
        FieldKind::DateTimeNanoseconds => DataRecordType::DateTimeNanoseconds,
        FieldKind::OctetArray => DataRecordType::Bytes,
    }
}

#[test]
fn every_field_matches_the_iana_registry() {
    let registry = ipfixrw::information_elements::get_default_formatter();
    for def in fields::all() {
        let Some((name, ty)) = registry.get(&(0, def.id)) else {
            panic!("IE {} ({}) is not in the IANA registry", def.id, def.name);
        };
        assert_eq!(*name, def.name, "IE {}", def.id);
        assert_eq!(*ty, registry_type(def.kind), "IE {} {}", def.id, def.name);
    }
}

#[test]
fn lengths_suit_the_kinds() {
    for def in fields::all() {
        let ok = match def.kind {
            FieldKind::Unsigned => matches!(def.length, 1 | 2 | 4 | 8),
            FieldKind::Ipv4Address | FieldKind::DateTimeSeconds => def.length == 4,
            FieldKind::Ipv6Address => def.length == 16,
            FieldKind::DateTimeMilliseconds | FieldKind::DateTimeNanoseconds => def.length == 8,
            FieldKind::OctetArray => def.length >= 1,
        };
        assert!(ok, "{} has length {} for {:?}", def.name, def.length, def.kind);
    }
}

#[test]
fn names_and_ids_are_unique_and_lookups_are_exact() {
    let mut names = HashSet::new();
    let mut ids = HashSet::new();
    for def in fields::all() {
        assert!(ids.insert(def.id), "IE {} twice", def.id);
        for name in std::iter::once(def.name).chain(def.aliases.iter().copied()) {
            assert!(names.insert(name), "{name} twice");
            assert_eq!(fields::lookup(name).map(|f| f.id), Some(def.id), "{name}");
            assert_eq!(fields::lookup(&name.to_uppercase()), None, "lookups are case-sensitive");
        }
        assert_eq!(fields::by_id(def.id), Some(def));
    }
}

#[test]
fn aliases_are_the_upper_camel_case_names() {
    for def in fields::all() {
        let mut chars = def.name.chars();
        let first = chars.next().unwrap().to_ascii_uppercase();
        let upper: String = std::iter::once(first).chain(chars).collect();
        assert_eq!(def.aliases, [upper.as_str()], "{}", def.name);
    }
}

#[test]
fn every_reference_name_is_accepted_with_its_ie() {
    for (name, id) in REFERENCE {
        let def = fields::lookup(name).unwrap_or_else(|| panic!("{name} unknown"));
        assert_eq!(def.id, id, "{name}");
        assert!(Template::new(300, &[name], Strictness::Synthetic).is_ok(), "{name}");
        let agent = Template::new(300, &[name], Strictness::Agent);
        assert_eq!(agent.is_ok(), def.is_available(), "{name}: {agent:?}");
    }
    let all = Template::new(1004, &REFERENCE.map(|(n, _)| n), Strictness::Synthetic).unwrap();
    assert_eq!(all.fields.len(), REFERENCE.len());
    assert_eq!(all.ip_version(), Some(4));
}

#[test]
fn unavailable_fields_say_why() {
    let unavailable: Vec<u16> = fields::all()
        .iter()
        .filter(|f| !f.is_available())
        .map(|f| f.id)
        .collect();
    assert_eq!(unavailable, [9, 13, 15, 16, 17, 18, 54]);
    for def in fields::all() {
        if let Source::Unavailable(reason) = def.source {
            assert!(!reason.is_empty() && !reason.contains('\n'), "{}", def.name);
        }
    }
}

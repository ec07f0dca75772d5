//! The information elements flowctl knows, in one file: the values a flow
//! record gives ([`RecordField`], each with how it is computed) and the
//! IANA table that names them. A new per-flow field is one line in
//! `record_fields!` and one row in [`FIELDS`].

use flowctl_model::{proto, FlowRecord, Sampling};

use super::ContextField as C;
use super::FieldKind::{self, *};
use super::{FieldDef, Source};
use crate::values::FieldValue::{self, Address, Nanoseconds};

/// Declares [`RecordField`] and [`RecordField::value`] from one list: each
/// variant with its documentation and the expression of its value, given
/// the record as the identifier between bars.
macro_rules! record_fields {
    (|$r:ident| $( $(#[doc = $doc:literal])* $name:ident => $value:expr, )*) => {
        /// A value derivable from a [`FlowRecord`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum RecordField {
            $( $(#[doc = $doc])* $name, )*
        }

        impl RecordField {
            /// Every record field, in declaration order.
            pub const ALL: &'static [RecordField] = &[$(RecordField::$name),*];

            /// The value of this field for a record.
            #[inline]
            pub fn value(self, $r: &FlowRecord) -> FieldValue {
                match self {
                    $( RecordField::$name => $value, )*
                }
            }
        }
    };
}

/// An unsigned value.
#[inline]
fn n(value: impl Into<u64>) -> FieldValue {
    FieldValue::Unsigned(value.into())
}

/// ICMP `type * 256 + code` when the record is ICMP over IP version
/// `version` (1 over 4, 58 over 6), else 0.
#[inline]
fn icmp(r: &FlowRecord, version: u8) -> u64 {
    let protocol = if version == 4 { proto::ICMP } else { proto::ICMPV6 };
    if r.key.ip_version == version && r.key.protocol == protocol {
        u64::from(r.key.dst_port)
    } else {
        0
    }
}

const NANOS_PER_MILLI: u64 = 1_000_000;

record_fields! { |r|
    /// Packets since the previous record of the flow.
    PacketDelta => n(r.stats.packets),
    /// Octets since the previous record of the flow.
    OctetDelta => n(r.stats.octets),
    /// Packets since the flow started.
    PacketTotal => n(r.total_packets),
    /// Octets since the flow started.
    OctetTotal => n(r.total_octets),
    /// IP protocol number.
    Protocol => n(r.key.protocol),
    /// The whole IPv4 TOS / IPv6 traffic class byte.
    ClassOfService => n(r.stats.tos),
    /// The DSCP: the TOS / traffic class byte shifted right by 2.
    Dscp => n(r.stats.tos >> 2),
    /// OR of the TCP flags (RFC 7125, 16 bits).
    TcpFlags => n(r.stats.tcp_flags),
    /// Source transport port.
    SrcPort => n(r.key.src_port),
    /// Destination transport port; 0 for ICMP and ICMPv6 flows.
    DstPort => n(if proto::is_icmp(r.key.protocol) { 0 } else { r.key.dst_port }),
    /// Source IPv4 address.
    SrcIpv4 => Address(r.key.src_addr),
    /// Destination IPv4 address.
    DstIpv4 => Address(r.key.dst_addr),
    /// Source IPv6 address.
    SrcIpv6 => Address(r.key.src_addr),
    /// Destination IPv6 address.
    DstIpv6 => Address(r.key.dst_addr),
    /// Ingress interface index.
    IngressInterface => n(r.key.ingress_ifindex),
    /// Egress interface index.
    EgressInterface => n(r.key.egress_ifindex),
    /// ICMP `type * 256 + code` for ICMP over IPv4, else 0.
    IcmpTypeCodeV4 => n(icmp(r, 4)),
    /// ICMPv6 `type * 256 + code` for ICMPv6 over IPv6, else 0.
    IcmpTypeCodeV6 => n(icmp(r, 6)),
    /// ICMP type for ICMP over IPv4, else 0.
    IcmpTypeV4 => n(icmp(r, 4) >> 8),
    /// ICMP code for ICMP over IPv4, else 0.
    IcmpCodeV4 => n(icmp(r, 4) & 0xff),
    /// ICMPv6 type for ICMPv6 over IPv6, else 0.
    IcmpTypeV6 => n(icmp(r, 6) >> 8),
    /// ICMPv6 code for ICMPv6 over IPv6, else 0.
    IcmpCodeV6 => n(icmp(r, 6) & 0xff),
    /// Minimum TTL / hop limit.
    MinTtl => n(r.stats.min_ttl),
    /// Maximum TTL / hop limit.
    MaxTtl => n(r.stats.max_ttl),
    /// Outer VLAN id.
    VlanId => n(r.key.vlan_id),
    /// Inner (customer) VLAN id.
    InnerVlanId => n(r.key.inner_vlan_id),
    /// Top MPLS label stack entry: label, TC and S in 24 bits; 0 without MPLS.
    MplsTopLabel => n(r.key.mpls_top_label().map_or(0, |l| l.section())),
    /// IP version, 4 or 6.
    IpVersion => n(r.key.ip_version),
    /// 0 ingress, 1 egress.
    FlowDirection => n(r.key.direction),
    /// Why the record was made (`flowEndReason`).
    EndReason => n(r.reason.value()),
    /// Time of the first packet, Unix seconds.
    StartSeconds => Nanoseconds(r.start_unix_ns),
    /// Time of the last packet, Unix seconds.
    EndSeconds => Nanoseconds(r.end_unix_ns),
    /// Time of the first packet, Unix milliseconds.
    StartMilliseconds => Nanoseconds(r.start_unix_ns),
    /// Time of the last packet, Unix milliseconds.
    EndMilliseconds => Nanoseconds(r.end_unix_ns),
    /// Time of the first packet, NTP timestamp.
    StartNanoseconds => Nanoseconds(r.start_unix_ns),
    /// Time of the last packet, NTP timestamp.
    EndNanoseconds => Nanoseconds(r.end_unix_ns),
    /// N of the 1-in-N sampling the flow was metered with; 1 for every packet.
    SamplingInterval => n(Sampling::from_word(r.stats.sampling).packets_per_sample()),
    /// 2 random, 1 deterministic (NetFlow v9 `samplingAlgorithm`).
    SamplingAlgorithm => n(Sampling::from_word(r.stats.sampling).sampling_algorithm()),
    /// The id of the selector options record describing the flow's sampling.
    SelectorId => n(Sampling::from_word(r.stats.sampling).selector_id()),
    /// The PSAMP `selectorAlgorithm`: 3 random n-out-of-N, 1 systematic count-based.
    SelectorAlgorithm => n(Sampling::from_word(r.stats.sampling).selector_algorithm()),
    /// Packets selected in a row: always 1.
    SamplingPacketInterval => n(Sampling::from_word(r.stats.sampling).packet_interval()),
    /// Packets passed over after each selected one: N - 1.
    SamplingPacketSpace => n(Sampling::from_word(r.stats.sampling).packet_space()),
    /// End minus start, in milliseconds: the difference of the millisecond
    /// timestamps, so that it equals flowEndMilliseconds - flowStartMilliseconds.
    DurationMilliseconds => n((r.end_unix_ns / NANOS_PER_MILLI).saturating_sub(r.start_unix_ns / NANOS_PER_MILLI)),
}

use RecordField as R;

/// One table row: IANA name, its UpperCamelCase alias, id, length, kind, source.
const fn def(
    name: &'static str,
    aliases: &'static [&'static str],
    id: u16,
    length: u16,
    kind: FieldKind,
    source: Source,
) -> FieldDef {
    FieldDef {
        name,
        aliases,
        id,
        length,
        kind,
        source,
    }
}

const fn rec(field: R) -> Source {
    Source::Record(field)
}

const NO_PREFIX: &str = "flowctl does no route lookup, so it knows no prefix length";
const NO_NEXT_HOP: &str = "flowctl does no route lookup, so it knows no next hop";
const NO_BGP: &str = "flowctl has no BGP table";
const PER_PACKET: &str = "the IP identification is per packet, not per flow";

/// All fields, ordered by information element id.
pub(crate) static FIELDS: &[FieldDef] = &[
    def(
        "octetDeltaCount",
        &["OctetDeltaCount"],
        1,
        8,
        Unsigned,
        rec(R::OctetDelta),
    ),
    def(
        "packetDeltaCount",
        &["PacketDeltaCount"],
        2,
        8,
        Unsigned,
        rec(R::PacketDelta),
    ),
    def(
        "protocolIdentifier",
        &["ProtocolIdentifier"],
        4,
        1,
        Unsigned,
        rec(R::Protocol),
    ),
    def(
        "ipClassOfService",
        &["IpClassOfService"],
        5,
        1,
        Unsigned,
        rec(R::ClassOfService),
    ),
    def("tcpControlBits", &["TcpControlBits"], 6, 2, Unsigned, rec(R::TcpFlags)),
    def(
        "sourceTransportPort",
        &["SourceTransportPort"],
        7,
        2,
        Unsigned,
        rec(R::SrcPort),
    ),
    def(
        "sourceIPv4Address",
        &["SourceIPv4Address"],
        8,
        4,
        Ipv4Address,
        rec(R::SrcIpv4),
    ),
    def(
        "sourceIPv4PrefixLength",
        &["SourceIPv4PrefixLength"],
        9,
        1,
        Unsigned,
        Source::Unavailable(NO_PREFIX),
    ),
    def(
        "ingressInterface",
        &["IngressInterface"],
        10,
        4,
        Unsigned,
        rec(R::IngressInterface),
    ),
    def(
        "destinationTransportPort",
        &["DestinationTransportPort"],
        11,
        2,
        Unsigned,
        rec(R::DstPort),
    ),
    def(
        "destinationIPv4Address",
        &["DestinationIPv4Address"],
        12,
        4,
        Ipv4Address,
        rec(R::DstIpv4),
    ),
    def(
        "destinationIPv4PrefixLength",
        &["DestinationIPv4PrefixLength"],
        13,
        1,
        Unsigned,
        Source::Unavailable(NO_PREFIX),
    ),
    def(
        "egressInterface",
        &["EgressInterface"],
        14,
        4,
        Unsigned,
        rec(R::EgressInterface),
    ),
    def(
        "ipNextHopIPv4Address",
        &["IpNextHopIPv4Address"],
        15,
        4,
        Ipv4Address,
        Source::Unavailable(NO_NEXT_HOP),
    ),
    def(
        "bgpSourceAsNumber",
        &["BgpSourceAsNumber"],
        16,
        4,
        Unsigned,
        Source::Unavailable(NO_BGP),
    ),
    def(
        "bgpDestinationAsNumber",
        &["BgpDestinationAsNumber"],
        17,
        4,
        Unsigned,
        Source::Unavailable(NO_BGP),
    ),
    def(
        "bgpNextHopIPv4Address",
        &["BgpNextHopIPv4Address"],
        18,
        4,
        Ipv4Address,
        Source::Unavailable(NO_BGP),
    ),
    def(
        "sourceIPv6Address",
        &["SourceIPv6Address"],
        27,
        16,
        Ipv6Address,
        rec(R::SrcIpv6),
    ),
    def(
        "destinationIPv6Address",
        &["DestinationIPv6Address"],
        28,
        16,
        Ipv6Address,
        rec(R::DstIpv6),
    ),
    def(
        "icmpTypeCodeIPv4",
        &["IcmpTypeCodeIPv4"],
        32,
        2,
        Unsigned,
        rec(R::IcmpTypeCodeV4),
    ),
    def(
        "samplingInterval",
        &["SamplingInterval"],
        34,
        4,
        Unsigned,
        rec(R::SamplingInterval),
    ),
    def(
        "samplingAlgorithm",
        &["SamplingAlgorithm"],
        35,
        1,
        Unsigned,
        rec(R::SamplingAlgorithm),
    ),
    def("minimumTTL", &["MinimumTTL"], 52, 1, Unsigned, rec(R::MinTtl)),
    def("maximumTTL", &["MaximumTTL"], 53, 1, Unsigned, rec(R::MaxTtl)),
    def(
        "fragmentIdentification",
        &["FragmentIdentification"],
        54,
        4,
        Unsigned,
        Source::Unavailable(PER_PACKET),
    ),
    def("vlanId", &["VlanId"], 58, 2, Unsigned, rec(R::VlanId)),
    def(
        "mplsTopLabelStackSection",
        &["MplsTopLabelStackSection"],
        70,
        3,
        OctetArray,
        rec(R::MplsTopLabel),
    ),
    def("ipVersion", &["IpVersion"], 60, 1, Unsigned, rec(R::IpVersion)),
    def(
        "flowDirection",
        &["FlowDirection"],
        61,
        1,
        Unsigned,
        rec(R::FlowDirection),
    ),
    def(
        "octetTotalCount",
        &["OctetTotalCount"],
        85,
        8,
        Unsigned,
        rec(R::OctetTotal),
    ),
    def(
        "packetTotalCount",
        &["PacketTotalCount"],
        86,
        8,
        Unsigned,
        rec(R::PacketTotal),
    ),
    def(
        "exporterIPv4Address",
        &["ExporterIPv4Address"],
        130,
        4,
        Ipv4Address,
        Source::Context(C::ExporterIpv4),
    ),
    def(
        "exporterIPv6Address",
        &["ExporterIPv6Address"],
        131,
        16,
        Ipv6Address,
        Source::Context(C::ExporterIpv6),
    ),
    def("flowEndReason", &["FlowEndReason"], 136, 1, Unsigned, rec(R::EndReason)),
    def(
        "icmpTypeCodeIPv6",
        &["IcmpTypeCodeIPv6"],
        139,
        2,
        Unsigned,
        rec(R::IcmpTypeCodeV6),
    ),
    def(
        "observationDomainId",
        &["ObservationDomainId"],
        149,
        4,
        Unsigned,
        Source::Context(C::ObservationDomainId),
    ),
    def(
        "flowStartSeconds",
        &["FlowStartSeconds"],
        150,
        4,
        DateTimeSeconds,
        rec(R::StartSeconds),
    ),
    def(
        "flowEndSeconds",
        &["FlowEndSeconds"],
        151,
        4,
        DateTimeSeconds,
        rec(R::EndSeconds),
    ),
    def(
        "flowStartMilliseconds",
        &["FlowStartMilliseconds"],
        152,
        8,
        DateTimeMilliseconds,
        rec(R::StartMilliseconds),
    ),
    def(
        "flowEndMilliseconds",
        &["FlowEndMilliseconds"],
        153,
        8,
        DateTimeMilliseconds,
        rec(R::EndMilliseconds),
    ),
    def(
        "flowStartNanoseconds",
        &["FlowStartNanoseconds"],
        156,
        8,
        DateTimeNanoseconds,
        rec(R::StartNanoseconds),
    ),
    def(
        "flowEndNanoseconds",
        &["FlowEndNanoseconds"],
        157,
        8,
        DateTimeNanoseconds,
        rec(R::EndNanoseconds),
    ),
    def(
        "flowDurationMilliseconds",
        &["FlowDurationMilliseconds"],
        161,
        4,
        Unsigned,
        rec(R::DurationMilliseconds),
    ),
    def("icmpTypeIPv4", &["IcmpTypeIPv4"], 176, 1, Unsigned, rec(R::IcmpTypeV4)),
    def("icmpCodeIPv4", &["IcmpCodeIPv4"], 177, 1, Unsigned, rec(R::IcmpCodeV4)),
    def("icmpTypeIPv6", &["IcmpTypeIPv6"], 178, 1, Unsigned, rec(R::IcmpTypeV6)),
    def("icmpCodeIPv6", &["IcmpCodeIPv6"], 179, 1, Unsigned, rec(R::IcmpCodeV6)),
    def(
        "ipDiffServCodePoint",
        &["IpDiffServCodePoint"],
        195,
        1,
        Unsigned,
        rec(R::Dscp),
    ),
    def("dot1qVlanId", &["Dot1qVlanId"], 243, 2, Unsigned, rec(R::VlanId)),
    def(
        "dot1qCustomerVlanId",
        &["Dot1qCustomerVlanId"],
        245,
        2,
        Unsigned,
        rec(R::InnerVlanId),
    ),
    def("selectorId", &["SelectorId"], 302, 8, Unsigned, rec(R::SelectorId)),
    def(
        "selectorAlgorithm",
        &["SelectorAlgorithm"],
        304,
        2,
        Unsigned,
        rec(R::SelectorAlgorithm),
    ),
    def(
        "samplingPacketInterval",
        &["SamplingPacketInterval"],
        305,
        4,
        Unsigned,
        rec(R::SamplingPacketInterval),
    ),
    def(
        "samplingPacketSpace",
        &["SamplingPacketSpace"],
        306,
        4,
        Unsigned,
        rec(R::SamplingPacketSpace),
    ),
];

//! The information elements flowctl knows: their IANA names, reference-tool
//! aliases, ids, lengths, encodings and where their values come from.

mod table;

/// How a field's value is encoded on the wire (RFC 7011 §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// Unsigned integer, big-endian, reduced to the field length.
    Unsigned,
    /// IPv4 address, 4 bytes in network order.
    Ipv4Address,
    /// IPv6 address, 16 bytes in network order.
    Ipv6Address,
    /// `dateTimeSeconds`: Unix seconds as an unsigned 32-bit integer.
    DateTimeSeconds,
    /// `dateTimeMilliseconds`: Unix milliseconds as an unsigned 64-bit integer.
    DateTimeMilliseconds,
    /// `dateTimeNanoseconds`: 64-bit NTP timestamp (seconds since 1900 in the
    /// high 32 bits, binary fraction in the low 32 bits; RFC 7011 §6.1.10).
    DateTimeNanoseconds,
}

/// Where the value of a field comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Derived from a [`FlowRecord`](flowctl_aging::FlowRecord).
    Record(RecordField),
    /// Supplied by the exporting process, not by the flow.
    Context(ContextField),
    /// flowctl has no data for it; the string says why. Such fields are only
    /// accepted in synthetic templates, whose values come from a flows file.
    Unavailable(&'static str),
}

/// A value derivable from a [`FlowRecord`](flowctl_aging::FlowRecord).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordField {
    /// Packets since the previous record of the flow.
    PacketDelta,
    /// Octets since the previous record of the flow.
    OctetDelta,
    /// Packets since the flow started.
    PacketTotal,
    /// Octets since the flow started.
    OctetTotal,
    /// IP protocol number.
    Protocol,
    /// The whole IPv4 TOS / IPv6 traffic class byte.
    ClassOfService,
    /// The DSCP: the TOS / traffic class byte shifted right by 2.
    Dscp,
    /// OR of the TCP flags (RFC 7125, 16 bits).
    TcpFlags,
    /// Source transport port.
    SrcPort,
    /// Destination transport port; 0 for ICMP and ICMPv6 flows.
    DstPort,
    /// Source IPv4 address.
    SrcIpv4,
    /// Destination IPv4 address.
    DstIpv4,
    /// Source IPv6 address.
    SrcIpv6,
    /// Destination IPv6 address.
    DstIpv6,
    /// Ingress interface index.
    IngressInterface,
    /// Egress interface index.
    EgressInterface,
    /// ICMP `type * 256 + code` for ICMP over IPv4, else 0.
    IcmpTypeCodeV4,
    /// ICMPv6 `type * 256 + code` for ICMPv6 over IPv6, else 0.
    IcmpTypeCodeV6,
    /// ICMP type for ICMP over IPv4, else 0.
    IcmpTypeV4,
    /// ICMP code for ICMP over IPv4, else 0.
    IcmpCodeV4,
    /// ICMPv6 type for ICMPv6 over IPv6, else 0.
    IcmpTypeV6,
    /// ICMPv6 code for ICMPv6 over IPv6, else 0.
    IcmpCodeV6,
    /// Minimum TTL / hop limit.
    MinTtl,
    /// Maximum TTL / hop limit.
    MaxTtl,
    /// Outer VLAN id.
    VlanId,
    /// Inner (customer) VLAN id.
    InnerVlanId,
    /// IP version, 4 or 6.
    IpVersion,
    /// 0 ingress, 1 egress.
    FlowDirection,
    /// Why the record was made (`flowEndReason`).
    EndReason,
    /// Time of the first packet, Unix seconds.
    StartSeconds,
    /// Time of the last packet, Unix seconds.
    EndSeconds,
    /// Time of the first packet, Unix milliseconds.
    StartMilliseconds,
    /// Time of the last packet, Unix milliseconds.
    EndMilliseconds,
    /// Time of the first packet, NTP timestamp.
    StartNanoseconds,
    /// Time of the last packet, NTP timestamp.
    EndNanoseconds,
    /// End minus start, in milliseconds.
    DurationMilliseconds,
}

/// A value supplied by the exporting process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContextField {
    /// The observation domain the message is sent for.
    ObservationDomainId,
    /// Always 1: flowctl does not sample.
    SamplingInterval,
}

/// One information element flowctl can put in a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDef {
    /// IANA name (lowerCamelCase).
    pub name: &'static str,
    /// Other accepted names: the UpperCamelCase form used by the reference tool.
    pub aliases: &'static [&'static str],
    /// IANA information element id (no enterprise number).
    pub id: u16,
    /// Encoded length in bytes.
    pub length: u16,
    /// Wire encoding.
    pub kind: FieldKind,
    /// Where the value comes from.
    pub source: Source,
}

impl FieldDef {
    /// Whether the field can be filled from a flow record or the exporter.
    pub fn is_available(&self) -> bool {
        !matches!(self.source, Source::Unavailable(_))
    }
}

/// Finds a field by its IANA name or an alias (exact, case-sensitive).
pub fn lookup(name: &str) -> Option<&'static FieldDef> {
    table::FIELDS
        .iter()
        .find(|f| f.name == name || f.aliases.contains(&name))
}

/// Finds a field by its information element id.
pub fn by_id(id: u16) -> Option<&'static FieldDef> {
    table::FIELDS.iter().find(|f| f.id == id)
}

/// Every field flowctl knows, available or not.
pub fn all() -> &'static [FieldDef] {
    table::FIELDS
}

/// Every accepted name: IANA names and aliases.
pub fn all_names() -> impl Iterator<Item = &'static str> {
    table::FIELDS
        .iter()
        .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
}

//! The information elements flowctl knows: their IANA names, reference-tool
//! aliases, ids, lengths, encodings and where their values come from.

mod table;

pub use table::RecordField;

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
    /// `octetArray` of the field's length, written from an integer: its low
    /// bytes, big-endian (like [`FieldKind::Unsigned`], saturated when larger).
    OctetArray,
}

/// Where the value of a field comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Derived from a [`FlowRecord`](flowctl_model::FlowRecord).
    Record(RecordField),
    /// Supplied by the exporting process, not by the flow.
    Context(ContextField),
    /// flowctl has no data for it; the string says why. Such fields are only
    /// accepted in synthetic templates, whose values come from a flows file.
    Unavailable(&'static str),
}

/// A value supplied by the exporting process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContextField {
    /// The observation domain the message is sent for.
    ObservationDomainId,
    /// The exporter's IPv4 address (0.0.0.0 when it has an IPv6 one).
    ExporterIpv4,
    /// The exporter's IPv6 address (:: when it has an IPv4 one).
    ExporterIpv6,
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

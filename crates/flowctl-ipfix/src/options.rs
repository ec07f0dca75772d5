//! Options templates (RFC 7011 §3.4.2, §4): exporter statistics (with the
//! exporter's address), sampling selectors (RFC 5476 / RFC 7014), and
//! interface names.

use std::net::IpAddr;

use flowctl_model::Sampling;

/// `observationDomainId`: the scope of flowctl's options records.
pub const IE_OBSERVATION_DOMAIN_ID: u16 = 149;
/// `samplingInterval`.
pub const IE_SAMPLING_INTERVAL: u16 = 34;
/// `samplingAlgorithm`.
pub const IE_SAMPLING_ALGORITHM: u16 = 35;
/// `selectorId`: the scope of the selector records.
pub const IE_SELECTOR_ID: u16 = 302;
/// `selectorAlgorithm`.
pub const IE_SELECTOR_ALGORITHM: u16 = 304;
/// `samplingPacketInterval`.
pub const IE_SAMPLING_PACKET_INTERVAL: u16 = 305;
/// `samplingPacketSpace`.
pub const IE_SAMPLING_PACKET_SPACE: u16 = 306;
/// `exportedMessageTotalCount`.
pub const IE_EXPORTED_MESSAGE_TOTAL_COUNT: u16 = 41;
/// `exportedFlowRecordTotalCount`.
pub const IE_EXPORTED_FLOW_RECORD_TOTAL_COUNT: u16 = 42;
/// `notSentFlowTotalCount`.
pub const IE_NOT_SENT_FLOW_TOTAL_COUNT: u16 = 166;
/// `notSentPacketTotalCount`.
pub const IE_NOT_SENT_PACKET_TOTAL_COUNT: u16 = 167;
/// `notSentOctetTotalCount`.
pub const IE_NOT_SENT_OCTET_TOTAL_COUNT: u16 = 168;
/// `ignoredPacketTotalCount`.
pub const IE_IGNORED_PACKET_TOTAL_COUNT: u16 = 164;
/// `ignoredOctetTotalCount`.
pub const IE_IGNORED_OCTET_TOTAL_COUNT: u16 = 165;

/// `exporterIPv4Address`.
pub const IE_EXPORTER_IPV4_ADDRESS: u16 = 130;
/// `exporterIPv6Address`.
pub const IE_EXPORTER_IPV6_ADDRESS: u16 = 131;
/// `ingressInterface`: the scope of the interface names records.
pub const IE_INGRESS_INTERFACE: u16 = 10;
/// `interfaceName`.
pub const IE_INTERFACE_NAME: u16 = 82;
/// `interfaceDescription`.
pub const IE_INTERFACE_DESCRIPTION: u16 = 83;
/// Bytes of `interfaceName` in the interface names records: a Linux
/// interface name (at most 15 bytes) and its NUL, as softflowd sends it.
pub const INTERFACE_NAME_LEN: u16 = 16;
/// Bytes of `interfaceDescription`: longer aliases are cut (at a character
/// boundary).
pub const INTERFACE_DESCRIPTION_LEN: u16 = 64;

/// `samplingAlgorithm` value 1: deterministic (1-in-N; N = 1 means every packet).
pub const SAMPLING_DETERMINISTIC: u64 = 1;

/// An options template: scope fields first, then the other fields. Every
/// field is an unsigned integer of IANA id and length `(ie, len)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionsTemplate {
    /// Template id, 256..=65535.
    pub id: u16,
    /// Scope fields `(ie, length)`; must not be empty (RFC 7011 §3.4.2.2).
    pub scope: Vec<(u16, u16)>,
    /// Non-scope fields `(ie, length)`.
    pub fields: Vec<(u16, u16)>,
}

impl OptionsTemplate {
    /// Length in bytes of one options data record.
    pub fn record_length(&self) -> usize {
        self.all_fields().map(|(_, len)| usize::from(len)).sum()
    }

    /// Length in bytes of the options template record.
    pub fn template_record_length(&self) -> usize {
        6 + 4 * (self.scope.len() + self.fields.len())
    }

    /// Number of values a record takes: scope fields plus fields.
    pub fn value_count(&self) -> usize {
        self.scope.len() + self.fields.len()
    }

    /// Scope fields then fields, in record order.
    pub fn all_fields(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        self.scope.iter().chain(self.fields.iter()).copied()
    }
}

/// A value of an options record, encoded per its field length: an integer
/// big-endian (saturated), an address in a 4- or 16-byte field of its
/// version (zeros in a field of the other version), text cut at a
/// character boundary and padded with NULs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OptionValue {
    /// An unsigned integer.
    Unsigned(u64),
    /// An IP address, or none (zeros).
    Address(Option<IpAddr>),
    /// A UTF-8 string (`interfaceName`, `interfaceDescription`).
    Text(String),
}

impl OptionValue {
    /// Writes the value into all of `dst`, the field's bytes.
    pub fn write(&self, dst: &mut [u8]) {
        dst.fill(0);
        match self {
            OptionValue::Unsigned(v) => crate::wire::write_unsigned(dst, *v),
            OptionValue::Address(Some(IpAddr::V4(a))) if dst.len() == 4 => dst.copy_from_slice(&a.octets()),
            OptionValue::Address(Some(IpAddr::V6(a))) if dst.len() == 16 => dst.copy_from_slice(&a.octets()),
            OptionValue::Address(_) => {}
            OptionValue::Text(text) => {
                let mut end = text.len().min(dst.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                if let (Some(d), Some(t)) = (dst.get_mut(..end), text.as_bytes().get(..end)) {
                    d.copy_from_slice(t);
                }
            }
        }
    }
}

/// An interface's index and names, as an interface names record carries them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterfaceInfo {
    /// ifindex: `ingressInterface`/`egressInterface` in flow records.
    pub ifindex: u32,
    /// `interfaceName`: the kernel's name.
    pub name: String,
    /// `interfaceDescription`: the interface's alias if set, else its name.
    pub description: String,
}

impl InterfaceInfo {
    /// The record values in [`interface_names_template`] order.
    pub fn values(&self) -> [OptionValue; 3] {
        [
            OptionValue::Unsigned(u64::from(self.ifindex)),
            OptionValue::Text(self.name.clone()),
            OptionValue::Text(self.description.clone()),
        ]
    }
}

/// Interface names, one record per interface, in the shape routers (Cisco's
/// interface table, ipt-netflow) and softflowd's v9 export use: scope
/// `ingressInterface` (the ifindex, as the flow records' `ingressInterface`
/// and `egressInterface` carry it), then `interfaceName` and
/// `interfaceDescription`, fixed-length strings. Values: [`InterfaceInfo::values`].
pub fn interface_names_template(id: u16) -> OptionsTemplate {
    OptionsTemplate {
        id,
        scope: vec![(IE_INGRESS_INTERFACE, 4)],
        fields: vec![
            (IE_INTERFACE_NAME, INTERFACE_NAME_LEN),
            (IE_INTERFACE_DESCRIPTION, INTERFACE_DESCRIPTION_LEN),
        ],
    }
}

/// Exporting and metering process statistics (RFC 7011 §4.1–4.3), scoped by
/// `observationDomainId`, and the exporter's address (`exporterIPv4Address`
/// or `exporterIPv6Address`, the other one zeros). Values: see
/// [`ExporterStats::values`].
pub fn exporter_stats_template(id: u16) -> OptionsTemplate {
    OptionsTemplate {
        id,
        scope: vec![(IE_OBSERVATION_DOMAIN_ID, 4)],
        fields: vec![
            (IE_EXPORTED_MESSAGE_TOTAL_COUNT, 8),
            (IE_EXPORTED_FLOW_RECORD_TOTAL_COUNT, 8),
            (IE_NOT_SENT_FLOW_TOTAL_COUNT, 8),
            (IE_NOT_SENT_PACKET_TOTAL_COUNT, 8),
            (IE_NOT_SENT_OCTET_TOTAL_COUNT, 8),
            (IE_IGNORED_PACKET_TOTAL_COUNT, 8),
            (IE_IGNORED_OCTET_TOTAL_COUNT, 8),
            (IE_EXPORTER_IPV4_ADDRESS, 4),
            (IE_EXPORTER_IPV6_ADDRESS, 16),
        ],
    }
}

/// Sampling configuration, scoped by `observationDomainId`: `samplingInterval`
/// and `samplingAlgorithm`, the NetFlow v9 form (v9 has no selector id). Values:
/// see [`sampling_values`].
pub fn sampling_template(id: u16) -> OptionsTemplate {
    OptionsTemplate {
        id,
        scope: vec![(IE_OBSERVATION_DOMAIN_ID, 4)],
        fields: vec![(IE_SAMPLING_INTERVAL, 4), (IE_SAMPLING_ALGORITHM, 1)],
    }
}

/// The values of a [`sampling_template`] record for `sampling`.
pub fn sampling_values(observation_domain_id: u32, sampling: Sampling) -> [u64; 3] {
    [
        u64::from(observation_domain_id),
        u64::from(sampling.packets_per_sample()),
        sampling.sampling_algorithm(),
    ]
}

/// A selector (RFC 5476 §6.5.1, the PSAMP "Selector Report Interpretation"):
/// scope `selectorId`, then `selectorAlgorithm`, `samplingPacketInterval`,
/// `samplingPacketSpace`, and the older `samplingInterval` and
/// `samplingAlgorithm` that NetFlow-era collectors (goflow2, Akvorado,
/// nfdump) read. One record per sampling in use; flow records name theirs
/// with `selectorId`. Values: see [`selector_values`].
pub fn selector_template(id: u16) -> OptionsTemplate {
    OptionsTemplate {
        id,
        scope: vec![(IE_SELECTOR_ID, 8)],
        fields: vec![
            (IE_SELECTOR_ALGORITHM, 2),
            (IE_SAMPLING_PACKET_INTERVAL, 4),
            (IE_SAMPLING_PACKET_SPACE, 4),
            (IE_SAMPLING_INTERVAL, 4),
            (IE_SAMPLING_ALGORITHM, 1),
        ],
    }
}

/// The values of a [`selector_template`] record for `sampling`: 1:N is
/// packet interval 1, packet space N - 1 (RFC 5476 / RFC 7014), interval N;
/// every packet is systematic count-based with interval 1 and space 0.
pub fn selector_values(sampling: Sampling) -> [u64; 6] {
    [
        sampling.selector_id(),
        sampling.selector_algorithm(),
        u64::from(sampling.packet_interval()),
        u64::from(sampling.packet_space()),
        u64::from(sampling.packets_per_sample()),
        sampling.sampling_algorithm(),
    ]
}

/// Totals since the exporter started, for [`exporter_stats_template`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExporterStats {
    /// IPFIX messages sent (`exportedMessageTotalCount`).
    pub exported_messages: u64,
    /// Flow records sent (`exportedFlowRecordTotalCount`).
    pub exported_records: u64,
    /// Flow records dropped before sending (`notSentFlowTotalCount`).
    pub not_sent_records: u64,
    /// Packets of those records (`notSentPacketTotalCount`).
    pub not_sent_packets: u64,
    /// Octets of those records (`notSentOctetTotalCount`).
    pub not_sent_octets: u64,
    /// Packets the metering process did not account (`ignoredPacketTotalCount`).
    pub ignored_packets: u64,
    /// Their octets (`ignoredOctetTotalCount`).
    pub ignored_octets: u64,
}

impl ExporterStats {
    /// The record values in [`exporter_stats_template`] order, scope first.
    pub fn values(&self, observation_domain_id: u32, exporter: Option<IpAddr>) -> Vec<OptionValue> {
        let counters = [
            u64::from(observation_domain_id),
            self.exported_messages,
            self.exported_records,
            self.not_sent_records,
            self.not_sent_packets,
            self.not_sent_octets,
            self.ignored_packets,
            self.ignored_octets,
        ];
        let mut values: Vec<OptionValue> = counters.into_iter().map(OptionValue::Unsigned).collect();
        values.extend([OptionValue::Address(exporter), OptionValue::Address(exporter)]);
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_the_template_shape() {
        let stats = exporter_stats_template(500);
        assert_eq!(ExporterStats::default().values(1, None).len(), stats.value_count());
        assert_eq!(stats.scope, vec![(IE_OBSERVATION_DOMAIN_ID, 4)]);
        let sampling = sampling_template(501);
        assert_eq!(sampling_values(1, Sampling::NONE).len(), sampling.value_count());
        assert_eq!(sampling.record_length(), 4 + 4 + 1);
        assert_eq!(sampling.template_record_length(), 6 + 4 * 3);
        let selector = selector_template(503);
        assert_eq!(selector_values(Sampling::NONE).len(), selector.value_count());
        assert_eq!(selector.record_length(), 8 + 2 + 4 + 4 + 4 + 1);
        let names = interface_names_template(502);
        let info = InterfaceInfo {
            ifindex: 7,
            name: "eth0".into(),
            description: "uplink".into(),
        };
        assert_eq!(info.values().len(), names.value_count());
        assert_eq!(names.scope, vec![(IE_INGRESS_INTERFACE, 4)]);
    }

    #[test]
    fn selectors_describe_one_in_n_as_psamp_and_netflow_do() {
        use flowctl_model::SampleMode;
        let random = Sampling::new(100, SampleMode::Random).unwrap();
        assert_eq!(selector_values(random), [(1 << 31) + 100, 3, 1, 99, 100, 2]);
        let count = Sampling::new(10, SampleMode::Deterministic).unwrap();
        assert_eq!(selector_values(count), [10, 1, 1, 9, 10, 1]);
        assert_eq!(selector_values(Sampling::NONE), [1, 1, 1, 0, 1, 1]);
        assert_eq!(sampling_values(7, random), [7, 100, 2]);
    }

    #[test]
    fn option_values_fill_their_fields() {
        let write = |v: OptionValue, len: usize| {
            let mut out = vec![0xee; len];
            v.write(&mut out);
            out
        };
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(write(OptionValue::Address(Some(v4)), 4), [192, 0, 2, 7]);
        assert_eq!(
            write(OptionValue::Address(Some(v4)), 16),
            [0; 16],
            "v4 in the v6 field: zeros"
        );
        assert_eq!(write(OptionValue::Address(Some(v6)), 4), [0; 4]);
        assert_eq!(write(OptionValue::Address(Some(v6)), 16)[15], 7);
        assert_eq!(write(OptionValue::Address(None), 4), [0; 4]);
        assert_eq!(write(OptionValue::Text("eth0".into()), 6), *b"eth0\0\0");
        assert_eq!(
            write(OptionValue::Text("héé".into()), 4),
            *b"h\xc3\xa9\0",
            "cut at a character boundary"
        );
        assert_eq!(write(OptionValue::Unsigned(258), 2), [1, 2]);
    }
}

//! Options templates (RFC 7011 §3.4.2, §4): exporter statistics and sampling.

/// `observationDomainId`: the scope of flowctl's options records.
pub const IE_OBSERVATION_DOMAIN_ID: u16 = 149;
/// `samplingInterval`.
pub const IE_SAMPLING_INTERVAL: u16 = 34;
/// `samplingAlgorithm`.
pub const IE_SAMPLING_ALGORITHM: u16 = 35;
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

/// Exporting and metering process statistics (RFC 7011 §4.1–4.3), scoped by
/// `observationDomainId`. Values: see [`ExporterStats::values`].
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
        ],
    }
}

/// Sampling configuration, scoped by `observationDomainId`: `samplingInterval`
/// and `samplingAlgorithm`. Values: see [`sampling_values`].
pub fn sampling_template(id: u16) -> OptionsTemplate {
    OptionsTemplate {
        id,
        scope: vec![(IE_OBSERVATION_DOMAIN_ID, 4)],
        fields: vec![(IE_SAMPLING_INTERVAL, 4), (IE_SAMPLING_ALGORITHM, 1)],
    }
}

/// The values of a [`sampling_template`] record for an unsampled exporter:
/// interval 1, deterministic.
pub fn sampling_values(observation_domain_id: u32) -> [u64; 3] {
    [u64::from(observation_domain_id), 1, SAMPLING_DETERMINISTIC]
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
    pub fn values(&self, observation_domain_id: u32) -> [u64; 8] {
        [
            u64::from(observation_domain_id),
            self.exported_messages,
            self.exported_records,
            self.not_sent_records,
            self.not_sent_packets,
            self.not_sent_octets,
            self.ignored_packets,
            self.ignored_octets,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_the_template_shape() {
        let stats = exporter_stats_template(500);
        assert_eq!(ExporterStats::default().values(1).len(), stats.value_count());
        assert_eq!(stats.scope, vec![(IE_OBSERVATION_DOMAIN_ID, 4)]);
        let sampling = sampling_template(501);
        assert_eq!(sampling_values(1).len(), sampling.value_count());
        assert_eq!(sampling.record_length(), 4 + 4 + 1);
        assert_eq!(sampling.template_record_length(), 6 + 4 * 3);
    }
}

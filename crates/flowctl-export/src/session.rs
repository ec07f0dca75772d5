//! One exporting session towards one collector and observation domain, without
//! I/O: the sequence number, the counters of the exporting-process statistics,
//! and turning templates, options and flow records into IPFIX messages.

use std::collections::VecDeque;

use flowctl_ipfix::{
    encode::{EncodeError, Full, MessageBuilder, RecordValues},
    options::{selector_values, ExporterStats, InterfaceInfo},
    split::{FinishedMessages, MessageSplitter},
};

use flowctl_model::{FlowKey, FlowRecord, Sampling};

use crate::TemplateSet;

/// The state that must survive reconnects and reloads: RFC 7011 sequence
/// numbers are never reset.
#[derive(Clone, Debug)]
pub struct ExportSession {
    /// Observation Domain ID of every message.
    pub observation_domain_id: u32,
    /// Largest message, in bytes.
    pub max_message_size: usize,
    /// Data records sent so far (or given up on), modulo 2^32.
    sequence: u32,
    /// Exporting-process statistics.
    stats: ExporterStats,
    /// An empty message of this session's size and domain, which every
    /// message starts from.
    empty: MessageBuilder,
    /// The exporter's address (configured, or the socket's local address).
    exporter_address: Option<std::net::IpAddr>,
}

/// Messages for the wire, and how many data records each carries.
pub type Messages = FinishedMessages;

impl ExportSession {
    /// A session at sequence number 0; refuses a message size
    /// [`MessageBuilder`] cannot build.
    pub fn new(observation_domain_id: u32, max_message_size: usize) -> Result<Self, EncodeError> {
        Ok(Self {
            observation_domain_id,
            max_message_size,
            sequence: 0,
            stats: ExporterStats::default(),
            empty: MessageBuilder::new(max_message_size, observation_domain_id)?,
            exporter_address: None,
        })
    }

    /// Sets the exporter address the options records and the exporter
    /// address fields carry.
    pub fn set_exporter_address(&mut self, address: Option<std::net::IpAddr>) {
        self.exporter_address = address;
    }

    /// The exporter address in use.
    pub fn exporter_address(&self) -> Option<std::net::IpAddr> {
        self.exporter_address
    }

    /// The sequence number the next message will carry.
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// Exporting-process statistics so far.
    pub fn stats(&self) -> &ExporterStats {
        &self.stats
    }

    fn builder(&self) -> MessageBuilder {
        self.empty.clone()
    }

    /// Every template and options template, in as many messages as needed.
    pub fn template_messages(&self, templates: &TemplateSet, export_time: u32) -> Messages {
        let mut messages = MessageSplitter::starting_with(self.builder(), export_time, self.sequence);
        // Templates that can never fit are refused by the configuration
        // (MessageBuilder::check); one that did not would be left out.
        for t in &templates.data {
            let _ = messages.push(|m| m.push_template(t));
        }
        for t in templates.options() {
            let _ = messages.push(|m| m.push_options_template(t));
        }
        messages.finish()
    }

    /// Withdrawals of `templates` (id, options), in as many messages as needed.
    pub fn withdrawal_messages(&self, templates: &[(u16, bool)], export_time: u32) -> Messages {
        let mut messages = MessageSplitter::starting_with(self.builder(), export_time, self.sequence);
        for &(id, options) in templates {
            let _ = messages.push(|m| m.push_withdrawal(id, options));
        }
        messages.finish()
    }

    /// The options records: exporting-process statistics (with the exporter
    /// address) and one selector record per sampling of `selectors` (the
    /// unsampled one when it is empty) in the first message, then one
    /// interface names record per interface, in as many messages as needed. `ignored` are the
    /// datapath's not-recorded packets and octets. Each message comes with
    /// its data record count.
    pub fn options_messages(
        &self,
        templates: &TemplateSet,
        ignored: (u64, u64),
        interfaces: &[InterfaceInfo],
        selectors: &[Sampling],
        export_time: u32,
    ) -> Messages {
        // The first message is included in the count it reports.
        let stats = ExporterStats {
            exported_messages: self.stats.exported_messages + 1,
            ignored_packets: ignored.0,
            ignored_octets: ignored.1,
            ..self.stats
        };
        let mut messages = MessageSplitter::starting_with(self.builder(), export_time, self.sequence);
        // Short records: they always fit the minimum message size.
        let values = stats.values(self.observation_domain_id, self.exporter_address);
        let _ = messages.push(|m| m.push_options_values(&templates.stats, &values));
        for s in selectors_or_none(selectors) {
            let _ = messages.push(|m| m.push_options_record(&templates.sampling, &selector_values(*s)));
        }
        for interface in interfaces {
            let values = interface.values();
            let _ = messages.push(|m| m.push_options_values(&templates.interfaces, &values));
        }
        messages.finish()
    }

    /// The next data message from the front of `pending` (records without a
    /// template for their IP version are skipped as not sent). Returns the
    /// message and how many records of `pending` it used; `None` when
    /// `pending` is empty.
    pub fn next_data_message(
        &mut self,
        templates: &TemplateSet,
        pending: &VecDeque<FlowRecord>,
        export_time: u32,
    ) -> Option<(Vec<u8>, u32, usize)> {
        self.next_data_message_from(templates, pending, export_time)
    }

    /// [`Self::next_data_message`] from any sequence of queued records,
    /// oldest first (the collector task's shared batches).
    pub fn next_data_message_from<'a>(
        &mut self,
        templates: &TemplateSet,
        pending: impl IntoIterator<Item = &'a FlowRecord>,
        export_time: u32,
    ) -> Option<(Vec<u8>, u32, usize)> {
        let mut pending = pending.into_iter().peekable();
        pending.peek()?;
        let mut b = self.builder();
        let mut used = 0;
        // The template depends only on the IP version: look it up once per
        // version, not once per record.
        let version_key = |ip_version| FlowKey {
            ip_version,
            ..FlowKey::default()
        };
        let (v4, v6) = (templates.for_flow(&version_key(4)), templates.for_flow(&version_key(6)));
        for record in pending {
            let template = match record.key.ip_version {
                4 => v4,
                6 => v6,
                _ => templates.for_flow(&record.key),
            };
            let Some(t) = template else {
                self.not_sent(std::slice::from_ref(record));
                used += 1;
                continue;
            };
            let values = RecordValues {
                record,
                observation_domain_id: self.observation_domain_id,
                exporter_address: self.exporter_address,
            };
            match b.push_record(t, &values) {
                Ok(()) => used += 1,
                Err(Full) => break,
            }
        }
        let n = b.data_record_count();
        if n == 0 {
            return (used > 0).then(|| (Vec::new(), 0, used));
        }
        Some((b.finish(export_time, self.sequence), n, used))
    }

    /// A message left: count it and advance the sequence number.
    pub fn sent(&mut self, data_records: u32, flow_records: u32) {
        self.sequence = self.sequence.wrapping_add(data_records);
        self.stats.exported_messages += 1;
        self.stats.exported_records += flow_records as u64;
    }

    /// Records given up on (queue overflow): counted as not sent, and the
    /// sequence number moves past them so collectors see the loss (RFC 7011 §10.2.2).
    pub fn lost(&mut self, records: &[FlowRecord]) {
        self.not_sent(records);
        self.sequence = self.sequence.wrapping_add(records.len() as u32);
    }

    /// Records an earlier run of this exporting process gave up on (its
    /// spool was full): counted as not sent in the statistics.
    pub fn given_up_before(&mut self, records: u64, packets: u64, octets: u64) {
        self.stats.not_sent_records += records;
        self.stats.not_sent_packets += packets;
        self.stats.not_sent_octets += octets;
    }

    fn not_sent(&mut self, records: &[FlowRecord]) {
        for r in records {
            self.stats.not_sent_records += 1;
            self.stats.not_sent_packets += r.packets();
            self.stats.not_sent_octets += r.octets();
        }
    }
}

/// The selectors to describe: those given, or the unsampled one (a
/// collector then knows flowctl meters every packet).
pub(crate) fn selectors_or_none(selectors: &[Sampling]) -> &[Sampling] {
    if selectors.is_empty() {
        std::slice::from_ref(&Sampling::NONE)
    } else {
        selectors
    }
}

//! One NetFlow v9 exporting session towards one collector and Source ID,
//! without I/O: the sibling of [`ExportSession`](crate::session::ExportSession)
//! for collectors that lack IPFIX. The same templates (in v9 form), options
//! and records, with v9's differences:
//!
//! - the sequence number counts export packets (RFC 3954 §5.1), templates
//!   and options included; records given up on are counted in the
//!   statistics but cannot move it (they were never packets);
//! - flow times are sysUptime milliseconds against a boot time the session
//!   keeps ([`Uptime`]);
//! - fields v9 lacks are left out of the templates (`config check` refuses
//!   them in configured templates; the built-in ones lose `flowEndReason`);
//! - no withdrawals: v9 goes over UDP only, where templates are refreshed.

use std::collections::VecDeque;

use flowctl_ipfix::{
    encode::{EncodeError, Full, RecordValues},
    netflow9::{Uptime, V9MessageBuilder, V9OptionsTemplate, V9Splitter, V9Template},
    options::{sampling_template, sampling_values, ExporterStats, InterfaceInfo, OptionValue, OptionsTemplate},
    template::Template,
};
use flowctl_model::{FlowRecord, Sampling};

use crate::{session::Messages, TemplateSet};

/// The v9 forms of a [`TemplateSet`], kept while it is the one in use.
#[derive(Clone, Debug)]
struct Converted {
    /// The templates they were made from.
    source: Vec<Template>,
    source_options: [OptionsTemplate; 3],
    /// The data templates in v9 form, in the same order.
    data: Vec<V9Template>,
    /// Statistics, sampling and interface names, where v9 can express them.
    stats: Option<V9OptionsTemplate>,
    sampling: Option<V9OptionsTemplate>,
    interfaces: Option<V9OptionsTemplate>,
}

impl Converted {
    fn new(templates: &TemplateSet) -> Self {
        Self {
            source: templates.data.clone(),
            source_options: templates.options().map(Clone::clone),
            data: templates.data.iter().map(|t| V9Template::lenient(t).0).collect(),
            stats: V9OptionsTemplate::from_ipfix(&templates.stats),
            sampling: V9OptionsTemplate::from_ipfix(&sampling_template(templates.sampling.id)),
            interfaces: V9OptionsTemplate::from_ipfix(&templates.interfaces),
        }
    }

    /// Whether these are the forms of `templates` (the same fields, by
    /// address: a cheap check made for every packet).
    fn made_from(&self, templates: &TemplateSet) -> bool {
        let same = |a: &Template, b: &Template| {
            a.id == b.id
                && a.fields.len() == b.fields.len()
                && a.fields.iter().zip(&b.fields).all(|(x, y)| std::ptr::eq(*x, *y))
        };
        self.source.len() == templates.data.len()
            && self.source.iter().zip(&templates.data).all(|(a, b)| same(a, b))
            && self.source_options.iter().zip(templates.options()).all(|(a, b)| a == b)
    }

    fn options(&self) -> impl Iterator<Item = &V9OptionsTemplate> {
        [&self.stats, &self.sampling, &self.interfaces].into_iter().flatten()
    }

    /// The v9 template of a flow of IP version `ip_version`.
    fn for_version(&self, templates: &TemplateSet, ip_version: u8) -> Option<&V9Template> {
        let key = flowctl_model::FlowKey {
            ip_version,
            ..Default::default()
        };
        let id = templates.for_flow(&key)?.id;
        self.data.iter().find(|t| t.id == id && !t.fields.is_empty())
    }
}

/// The v9 forms of `templates`, from `cache` or converted again when they changed.
fn converted<'c>(cache: &'c mut Option<Converted>, templates: &TemplateSet) -> &'c Converted {
    if cache.as_ref().is_some_and(|c| !c.made_from(templates)) {
        *cache = None;
    }
    cache.get_or_insert_with(|| Converted::new(templates))
}

/// The state that must survive reconnects and reloads: the packet sequence
/// number and the boot time are never reset.
#[derive(Clone, Debug)]
pub struct V9Session {
    /// Source ID of every packet (the collector's observation domain).
    pub source_id: u32,
    /// Largest packet, in bytes.
    pub max_message_size: usize,
    /// Packets sent so far, modulo 2^32.
    sequence: u32,
    stats: ExporterStats,
    empty: V9MessageBuilder,
    uptime: Uptime,
    converted: Option<Converted>,
}

impl V9Session {
    /// A session at sequence number 0; refuses a packet size
    /// [`V9MessageBuilder`] cannot build.
    pub fn new(source_id: u32, max_message_size: usize) -> Result<Self, EncodeError> {
        Ok(Self {
            source_id,
            max_message_size,
            sequence: 0,
            stats: ExporterStats::default(),
            empty: V9MessageBuilder::new(max_message_size, source_id)?,
            uptime: Uptime::default(),
            converted: None,
        })
    }

    /// The sequence number the next packet will carry.
    pub fn sequence(&self) -> u32 {
        self.sequence
    }

    /// Exporting-process statistics so far.
    pub fn stats(&self) -> &ExporterStats {
        &self.stats
    }

    /// The boot time sysUptime counts from (Unix ms), once a packet was built.
    pub fn boot_ms(&self) -> Option<u64> {
        self.uptime.boot_ms()
    }

    /// Every template and options template v9 can express, in as many
    /// packets as needed.
    pub fn template_messages(&mut self, templates: &TemplateSet, export_time: u32) -> Messages {
        let c = converted(&mut self.converted, templates);
        let mut packets = V9Splitter::starting_with(self.empty.clone(), export_time, self.sequence, &mut self.uptime);
        // Templates that can never fit are refused by the configuration
        // (V9MessageBuilder::check); one that did not would be left out.
        for t in c.data.iter().filter(|t| !t.fields.is_empty()) {
            let _ = packets.push(|m| m.push_template(t));
        }
        for t in c.options() {
            let _ = packets.push(|m| m.push_options_template(t));
        }
        packets.finish()
    }

    /// The options records v9 can carry: exporter statistics (messages and
    /// records sent) and sampling (`samplingInterval` and `samplingAlgorithm`
    /// scoped by the system, one record per sampling of `selectors`, the
    /// unsampled one when it is empty: v9 has no selector id, so a collector
    /// keeps the last; with several rates, put `samplingInterval` in the
    /// flow templates), then one interface names record per
    /// interface, in as many packets as needed.
    pub fn options_messages(
        &mut self,
        templates: &TemplateSet,
        ignored: (u64, u64),
        interfaces: &[InterfaceInfo],
        selectors: &[Sampling],
        export_time: u32,
    ) -> Messages {
        let c = converted(&mut self.converted, templates);
        // The first packet is included in the count it reports.
        let stats = ExporterStats {
            exported_messages: self.stats.exported_messages + 1,
            ignored_packets: ignored.0,
            ignored_octets: ignored.1,
            ..self.stats
        };
        let domain = self.source_id;
        let mut packets = V9Splitter::starting_with(self.empty.clone(), export_time, self.sequence, &mut self.uptime);
        if let Some(t) = &c.stats {
            let values = stats.values(domain, None);
            let _ = packets.push(|m| m.push_options_values(t, &values));
        }
        if let Some(t) = &c.sampling {
            for s in crate::session::selectors_or_none(selectors) {
                let values = sampling_values(domain, *s).map(OptionValue::Unsigned);
                let _ = packets.push(|m| m.push_options_values(t, &values));
            }
        }
        if let Some(t) = &c.interfaces {
            for interface in interfaces {
                let values = interface.values();
                let _ = packets.push(|m| m.push_options_values(t, &values));
            }
        }
        packets.finish()
    }

    /// The next data packet from the front of `pending` (records without a
    /// template for their IP version are skipped as not sent): the packet,
    /// its data records and how many records of `pending` it used; `None`
    /// when `pending` is empty.
    pub fn next_data_message_from<'a>(
        &mut self,
        templates: &TemplateSet,
        pending: impl IntoIterator<Item = &'a FlowRecord>,
        export_time: u32,
    ) -> Option<(Vec<u8>, u32, usize)> {
        let mut pending = pending.into_iter().peekable();
        pending.peek()?;
        let c = converted(&mut self.converted, templates);
        let (v4, v6) = (c.for_version(templates, 4), c.for_version(templates, 6));
        let mut b = self.empty.clone();
        let mut used = 0;
        for record in pending {
            let template = match record.key.ip_version {
                4 => v4,
                6 => v6,
                _ => None,
            };
            let Some(t) = template else {
                not_sent(&mut self.stats, std::slice::from_ref(record));
                used += 1;
                continue;
            };
            let values = RecordValues {
                record,
                observation_domain_id: self.source_id,
                exporter_address: None,
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
        Some((b.finish(export_time, self.sequence, &mut self.uptime), n, used))
    }

    /// [`Self::next_data_message_from`] for a queue of records.
    pub fn next_data_message(
        &mut self,
        templates: &TemplateSet,
        pending: &VecDeque<FlowRecord>,
        export_time: u32,
    ) -> Option<(Vec<u8>, u32, usize)> {
        self.next_data_message_from(templates, pending, export_time)
    }

    /// A packet left: the next one carries the next sequence number.
    pub fn sent(&mut self, _data_records: u32, flow_records: u32) {
        self.sequence = self.sequence.wrapping_add(1);
        self.stats.exported_messages += 1;
        self.stats.exported_records += u64::from(flow_records);
    }

    /// Records given up on (queue overflow): counted as not sent; the
    /// sequence number, a packet count, stays.
    pub fn lost(&mut self, records: &[FlowRecord]) {
        not_sent(&mut self.stats, records);
    }

    /// Records an earlier run gave up on (its spool was full).
    pub fn given_up_before(&mut self, records: u64, packets: u64, octets: u64) {
        self.stats.not_sent_records += records;
        self.stats.not_sent_packets += packets;
        self.stats.not_sent_octets += octets;
    }
}

/// Counts `records` as not sent.
fn not_sent(stats: &mut ExporterStats, records: &[FlowRecord]) {
    for r in records {
        stats.not_sent_records += 1;
        stats.not_sent_packets += r.packets();
        stats.not_sent_octets += r.octets();
    }
}

//! A collector's session in its wire format: the collector task speaks to
//! one [`Session`], which is an IPFIX [`ExportSession`] or a NetFlow v9
//! [`V9Session`], each building its own messages.

use flowctl_ipfix::{encode::EncodeError, options::ExporterStats, options::InterfaceInfo};
use flowctl_model::{FlowRecord, Sampling};

use crate::{netflow9::V9Session, session::ExportSession, session::Messages, ExportFormat, TemplateSet};

/// The exporting session of one collector, in its format.
#[derive(Clone, Debug)]
pub enum Session {
    /// IPFIX (RFC 7011).
    Ipfix(ExportSession),
    /// NetFlow v9 (RFC 3954); boxed, being the larger by its template cache.
    NetflowV9(Box<V9Session>),
}

impl Session {
    /// A session of `format` at sequence number 0; refuses a message size
    /// no message can have.
    pub fn new(format: ExportFormat, observation_domain_id: u32, max_message_size: usize) -> Result<Self, EncodeError> {
        Ok(match format {
            ExportFormat::Ipfix => Session::Ipfix(ExportSession::new(observation_domain_id, max_message_size)?),
            ExportFormat::NetflowV9 => {
                Session::NetflowV9(Box::new(V9Session::new(observation_domain_id, max_message_size)?))
            }
        })
    }

    /// Sets the exporter address of the IPFIX options records and exporter
    /// address fields (v9 has neither).
    pub fn set_exporter_address(&mut self, address: Option<std::net::IpAddr>) {
        if let Session::Ipfix(s) = self {
            s.set_exporter_address(address);
        }
    }

    /// The sequence number the next message will carry.
    pub fn sequence(&self) -> u32 {
        match self {
            Session::Ipfix(s) => s.sequence(),
            Session::NetflowV9(s) => s.sequence(),
        }
    }

    /// Exporting-process statistics so far.
    pub fn stats(&self) -> &ExporterStats {
        match self {
            Session::Ipfix(s) => s.stats(),
            Session::NetflowV9(s) => s.stats(),
        }
    }

    /// Every template and options template.
    pub fn template_messages(&mut self, templates: &TemplateSet, export_time: u32) -> Messages {
        match self {
            Session::Ipfix(s) => s.template_messages(templates, export_time),
            Session::NetflowV9(s) => s.template_messages(templates, export_time),
        }
    }

    /// Withdrawals of `templates` (id, options); none in v9, which goes
    /// over UDP only.
    pub fn withdrawal_messages(&self, templates: &[(u16, bool)], export_time: u32) -> Messages {
        match self {
            Session::Ipfix(s) => s.withdrawal_messages(templates, export_time),
            Session::NetflowV9(_) => Vec::new(),
        }
    }

    /// The options records, each message with its data record count.
    pub fn options_messages(
        &mut self,
        templates: &TemplateSet,
        ignored: (u64, u64),
        interfaces: &[InterfaceInfo],
        selectors: &[Sampling],
        export_time: u32,
    ) -> Messages {
        match self {
            Session::Ipfix(s) => s.options_messages(templates, ignored, interfaces, selectors, export_time),
            Session::NetflowV9(s) => s.options_messages(templates, ignored, interfaces, selectors, export_time),
        }
    }

    /// The next data message from the front of `pending`: the message, its
    /// data records and how many records of `pending` it used.
    pub fn next_data_message_from<'a>(
        &mut self,
        templates: &TemplateSet,
        pending: impl IntoIterator<Item = &'a FlowRecord>,
        export_time: u32,
    ) -> Option<(Vec<u8>, u32, usize)> {
        match self {
            Session::Ipfix(s) => s.next_data_message_from(templates, pending, export_time),
            Session::NetflowV9(s) => s.next_data_message_from(templates, pending, export_time),
        }
    }

    /// A message left with `data_records` data records, `flow_records` of them flow records.
    pub fn sent(&mut self, data_records: u32, flow_records: u32) {
        match self {
            Session::Ipfix(s) => s.sent(data_records, flow_records),
            Session::NetflowV9(s) => s.sent(data_records, flow_records),
        }
    }

    /// Records given up on (queue overflow).
    pub fn lost(&mut self, records: &[FlowRecord]) {
        match self {
            Session::Ipfix(s) => s.lost(records),
            Session::NetflowV9(s) => s.lost(records),
        }
    }

    /// Records an earlier run of this exporting process gave up on.
    pub fn given_up_before(&mut self, records: u64, packets: u64, octets: u64) {
        match self {
            Session::Ipfix(s) => s.given_up_before(records, packets, octets),
            Session::NetflowV9(s) => s.given_up_before(records, packets, octets),
        }
    }
}

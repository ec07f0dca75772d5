//! IPFIX (and NetFlow v9) export: one task per collector, each with its own
//! transport (UDP, TCP or TLS), wire format, sequence numbers and template
//! schedule.

pub mod collector;
pub mod format;
pub mod netflow9;
mod queue;
pub mod refused;
pub mod session;
pub mod tls;
pub mod transport;

use flowctl_ipfix::{
    options::{exporter_stats_template, interface_names_template, selector_template, OptionsTemplate},
    template::Template,
};
use flowctl_model::FlowKey;

pub use collector::{spawn, CollectorHandle, CollectorSettings, CollectorStatus, Command, Stopped};
pub use format::Session;
pub use transport::{Endpoint, Protocol};

/// The wire format of a collector's messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// IPFIX (RFC 7011), version 10.
    #[default]
    Ipfix,
    /// NetFlow version 9 (RFC 3954), for collectors that lack IPFIX: UDP only.
    NetflowV9,
}

impl std::fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExportFormat::Ipfix => "ipfix",
            ExportFormat::NetflowV9 => "netflow9",
        })
    }
}

/// Template ID of the exporting-process statistics options template.
pub const STATS_TEMPLATE_ID: u16 = 65000;
/// Template ID of the sampling options template: selectors (scope
/// `selectorId`) in IPFIX, `samplingInterval`/`samplingAlgorithm` scoped by
/// the system in NetFlow v9.
pub const SAMPLING_TEMPLATE_ID: u16 = 65001;
/// Template ID of the interface names options template.
pub const INTERFACES_TEMPLATE_ID: u16 = 65002;
/// The options template ids; data templates cannot use them.
pub const OPTIONS_TEMPLATE_IDS: [u16; 3] = [STATS_TEMPLATE_ID, SAMPLING_TEMPLATE_ID, INTERFACES_TEMPLATE_ID];

/// The data templates of a configuration plus the options templates.
#[derive(Clone, Debug)]
pub struct TemplateSet {
    /// Data templates, in configuration order.
    pub data: Vec<Template>,
    /// Exporting-process statistics options template.
    pub stats: OptionsTemplate,
    /// Sampling options template (IPFIX selectors, one record per sampling
    /// in use).
    pub sampling: OptionsTemplate,
    /// Interface names options template.
    pub interfaces: OptionsTemplate,
}

impl TemplateSet {
    /// Data templates plus the built-in options templates.
    pub fn new(data: Vec<Template>) -> Self {
        Self {
            data,
            stats: exporter_stats_template(STATS_TEMPLATE_ID),
            sampling: selector_template(SAMPLING_TEMPLATE_ID),
            interfaces: interface_names_template(INTERFACES_TEMPLATE_ID),
        }
    }

    /// The options templates, in the order they are sent.
    pub fn options(&self) -> [&OptionsTemplate; 3] {
        [&self.stats, &self.sampling, &self.interfaces]
    }

    /// Templates of `self` that `next` drops or defines differently, with
    /// whether each is an options template: what must be withdrawn before
    /// `next` is sent on a live session (RFC 7011 §8.1).
    pub fn redefined_in(&self, next: &TemplateSet) -> Vec<(u16, bool)> {
        let data = self
            .data
            .iter()
            .filter(|t| !next.data.contains(t))
            .map(|t| (t.id, false));
        let options = self
            .options()
            .into_iter()
            .zip(next.options())
            .filter(|(old, new)| old != new)
            .map(|(old, _)| (old.id, true));
        data.chain(options).collect()
    }

    /// The template a flow is exported with: the first whose address fields
    /// match the flow's IP version (or that has none).
    pub fn for_flow(&self, key: &FlowKey) -> Option<&Template> {
        self.data
            .iter()
            .find(|t| t.ip_version().is_none_or(|v| v == key.ip_version))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_netflow9;

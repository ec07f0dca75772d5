//! The YAML file as written: every key, its type and its default. Unknown
//! keys are errors. [`super::validate`] turns this into an [`super::AgentConfig`].

use serde::Deserialize;

/// Top level of an agent configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigFile {
    /// Interfaces the agent attaches to itself (optional: it can also use
    /// what `flowctl attach` left).
    #[serde(default)]
    pub interfaces: Vec<InterfaceEntry>,
    /// Flow cache capacity when the agent creates it.
    pub max_flows: Option<u32>,
    /// Detach the interfaces the agent attached when it exits.
    #[serde(default)]
    pub detach_on_exit: bool,
    /// `auto` (default: tcx where the kernel has it), `tcx` or `tc`.
    pub attach_mode: Option<String>,
    /// `first` (default: before other tc programs) or `last`.
    pub attach_order: Option<String>,
    /// IPFIX collectors.
    #[serde(default)]
    pub collectors: Vec<CollectorEntry>,
    /// Aging and export timers.
    #[serde(default)]
    pub timers: TimersEntry,
    /// Data templates; built-in IPv4 and IPv6 templates when absent.
    #[serde(default)]
    pub templates: Vec<TemplateEntry>,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsEntry,
    /// Where a graceful stop keeps what it could not deliver.
    #[serde(default)]
    pub spool: SpoolEntry,
    /// The control socket (`flowctl flush`, `flowctl agent status`).
    #[serde(default)]
    pub control: ControlEntry,
    /// How the agent logs.
    #[serde(default)]
    pub log: LogEntry,
}

/// `log`: how the agent writes its log lines (on stderr: the journal under systemd).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LogEntry {
    /// `text` (default) or `json` (one object per line).
    pub format: Option<String>,
}

/// `control`: the agent's control socket.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlEntry {
    /// Path of the socket (default `/run/flowctl/control.sock`).
    pub socket: Option<String>,
}

/// `spool`: records a graceful stop could not deliver, for the next start.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SpoolEntry {
    /// Directory of the spool files (default `/var/lib/flowctl/spool`).
    pub directory: Option<String>,
    /// Largest spool file per collector, in bytes (default 64 MiB).
    pub max_bytes: Option<u64>,
}

/// `metrics`: where the agent serves Prometheus `/metrics`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricsEntry {
    /// `false` turns the endpoint off (default `true`).
    pub enabled: Option<bool>,
    /// Listen `addr:port` (default `127.0.0.1:9999`, as linux-flow-exporter's port).
    pub address: Option<String>,
}

/// `interfaces[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InterfaceEntry {
    /// Interface name.
    pub name: String,
    /// `ip netns` name, if not the agent's own namespace.
    pub netns: Option<String>,
    /// `ingress`, `egress` or `both` (default `egress`).
    pub direction: Option<String>,
    /// Packet sampling (default: every packet).
    pub sampling: Option<SamplingEntry>,
}

/// `interfaces[].sampling`: meter 1 packet in `interval`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SamplingEntry {
    /// N, 1 to 2^24 (1: every packet).
    pub interval: Option<u64>,
    /// `random` (default) or `deterministic` (every Nth packet per CPU).
    pub mode: Option<String>,
}

/// `collectors[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CollectorEntry {
    /// `host:port` (IPv6: `[addr]:port`).
    pub address: String,
    /// `udp` (default), `tcp` or `tls`.
    pub transport: Option<String>,
    /// `ipfix` (default) or `netflow9`.
    pub protocol: Option<String>,
    /// Certificates for `transport: tls`.
    pub tls: Option<TlsEntry>,
    /// The exporter's address in the options records and the
    /// `exporterIPv4Address`/`exporterIPv6Address` fields (default: the
    /// local address of the collector's socket).
    pub exporter_address: Option<String>,
    /// Local `addr:port` to send from.
    pub local_address: Option<String>,
    /// Observation Domain ID (default 1).
    pub observation_domain_id: Option<u32>,
    /// Largest IPFIX message in bytes (default: 1472 UDP/IPv4, 1452 UDP/IPv6, 65535 TCP).
    pub max_message_size: Option<u32>,
}

/// `collectors[].tls`: PEM files and the collector's name.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsEntry {
    /// CA certificates the collector's certificate must chain to (required).
    pub ca_file: Option<String>,
    /// This exporter's certificate chain, for mutual TLS.
    pub cert_file: Option<String>,
    /// This exporter's private key, for mutual TLS.
    pub key_file: Option<String>,
    /// The name the collector's certificate must carry (default: the host of `address`).
    pub server_name: Option<String>,
}

/// `timers`: humantime durations such as `30s`, `5m`, `1h 30m`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimersEntry {
    /// Idle timeout of every protocol without its own (default 15s).
    pub idle_timeout: Option<String>,
    /// Per-protocol idle timeouts.
    #[serde(default)]
    pub idle_timeouts: IdleTimeoutsEntry,
    /// Active timeout (default 60s).
    pub active_timeout: Option<String>,
    /// Wait after TCP FIN/RST before ending the flow (default 5s).
    pub tcp_end_grace: Option<String>,
    /// Template re-send interval over UDP (default 60s).
    pub template_refresh: Option<String>,
    /// How often the flow cache is scanned (default 1s).
    pub scan_interval: Option<String>,
}

/// `timers.idleTimeouts`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdleTimeoutsEntry {
    /// TCP.
    pub tcp: Option<String>,
    /// UDP.
    pub udp: Option<String>,
    /// ICMP and ICMPv6.
    pub icmp: Option<String>,
    /// Every other protocol.
    pub other: Option<String>,
}

/// `templates[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateEntry {
    /// Template ID, 256..=65535 (65000, 65001 and 65002 are flowctl's options templates).
    pub id: u16,
    /// Field names in order (`template` is accepted as in linux-flow-exporter).
    #[serde(alias = "template")]
    pub fields: Vec<FieldEntry>,
}

/// A field: a name, or `{name: ...}` as linux-flow-exporter writes it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FieldEntry {
    /// `- sourceIPv4Address`
    Name(String),
    /// `- name: SourceIPv4Address`
    Object {
        /// The field name.
        name: String,
    },
}

impl FieldEntry {
    /// The field name.
    pub fn name(&self) -> &str {
        match self {
            FieldEntry::Name(n) | FieldEntry::Object { name: n } => n,
        }
    }
}

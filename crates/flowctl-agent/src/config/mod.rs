//! Agent configuration: the YAML file ([`file`]), its validation into an
//! [`AgentConfig`], and errors that name the file, the key and the problem.

pub mod file;
pub mod netflow9;

use std::{
    io::Read,
    net::{SocketAddr, ToSocketAddrs},
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use flowctl_aging::Timeouts;
use flowctl_datapath::{cache_memory::MAX_FLOWS_LIMIT, AttachMode, Direction, Order};
use flowctl_export::{tls::TlsClientSettings, Endpoint, ExportFormat, Protocol, OPTIONS_TEMPLATE_IDS};
use flowctl_ipfix::{
    template::{Strictness, Template, TemplateError},
    MessageBuilder,
};
use flowctl_model::{SampleMode, Sampling, MAX_SAMPLE_INTERVAL};

use file::{CollectorEntry, ConfigFile, InterfaceEntry, MetricsEntry, SpoolEntry, TemplateEntry, TimersEntry};

use crate::{log_format::LogFormat, spool::Spool};

/// Where the agent serves Prometheus `/metrics` unless configured otherwise
/// (linux-flow-exporter's port 9999, on loopback only).
pub const DEFAULT_METRICS_ADDRESS: &str = "127.0.0.1:9999";

/// A configuration problem: `FILE: KEY: PROBLEM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {key}: {problem}")]
pub struct ConfigError {
    /// The file (or "command line").
    pub source_name: String,
    /// Dotted path of the key, e.g. `timers.activeTimeout` or `templates[1].id`.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

/// An interface the agent attaches to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceSpec {
    /// Interface name.
    pub name: String,
    /// `ip netns` name.
    pub netns: Option<String>,
    /// Directions to meter.
    pub directions: Vec<Direction>,
    /// Which packets are metered.
    pub sampling: Sampling,
}

/// One collector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorSpec {
    /// Address, transport, local address, TLS settings.
    pub endpoint: Endpoint,
    /// IPFIX or NetFlow v9.
    pub format: ExportFormat,
    /// The exporter address the options records carry; `None`: the local
    /// address of the collector's socket.
    pub exporter_address: Option<std::net::IpAddr>,
    /// Observation Domain ID.
    pub observation_domain_id: u32,
    /// Largest message in bytes.
    pub max_message_size: usize,
}

/// A validated agent configuration.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Interfaces to attach to.
    pub interfaces: Vec<InterfaceSpec>,
    /// Flow cache capacity when created.
    pub max_flows: Option<u32>,
    /// Detach on exit.
    pub detach_on_exit: bool,
    /// Which tc hook the agent attaches with.
    pub attach_mode: AttachMode,
    /// Where in the interface's chain of programs.
    pub attach_order: Order,
    /// Collectors.
    pub collectors: Vec<CollectorSpec>,
    /// Aging timers.
    pub timeouts: Timeouts,
    /// UDP template refresh interval.
    pub template_refresh: Duration,
    /// Scan interval.
    pub scan_interval: Duration,
    /// Data templates.
    pub templates: Vec<Template>,
    /// Listen address of the Prometheus endpoint; `None` when disabled.
    pub metrics: Option<SocketAddr>,
    /// Where undelivered records wait for the next start.
    pub spool: Spool,
    /// Path of the control socket.
    pub control_socket: PathBuf,
    /// How log lines are written.
    pub log_format: LogFormat,
}

/// Fields of the built-in templates (used when the file has none); `{v}`
/// stands for `IPv4` or `IPv6`.
const DEFAULT_FIELDS: &[&str] = &[
    "source{v}Address",
    "destination{v}Address",
    "sourceTransportPort",
    "destinationTransportPort",
    "protocolIdentifier",
    "icmpTypeCode{v}",
    "packetDeltaCount",
    "octetDeltaCount",
    "flowStartMilliseconds",
    "flowEndMilliseconds",
    "tcpControlBits",
    "ingressInterface",
    "egressInterface",
    "flowDirection",
    "flowEndReason",
    "ipVersion",
];

impl AgentConfig {
    /// Whether a template exports `packetTotalCount` or `octetTotalCount`
    /// (IE 86, 85): only then do totals carry over active timeouts, which
    /// costs the agent state for every long flow.
    pub fn exports_totals(&self) -> bool {
        self.templates
            .iter()
            .flat_map(|t| &t.fields)
            .any(|f| matches!(f.id, 85 | 86))
    }
}

/// Field names of the built-in template for IP version 4 or 6.
pub fn default_fields(ip_version: u8) -> Vec<String> {
    DEFAULT_FIELDS
        .iter()
        .map(|f| f.replace("{v}", &format!("IPv{ip_version}")))
        .collect()
}

/// Reads, parses and validates a configuration file. A file that others can
/// write is refused.
pub fn load(path: &Path, strictness: Strictness) -> Result<AgentConfig, ConfigError> {
    validate(&read(path)?, &path.display().to_string(), strictness)
}

/// Reads and parses a file without validating it (to apply overrides first).
///
/// The file is opened once and the open descriptor is checked, so the file
/// that is read is the file that was checked: a regular file, owned by root
/// or by the user the agent runs as, and writable by neither its group nor
/// every user.
pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
    let name = path.display().to_string();
    let err = |problem: String| ConfigError {
        source_name: name.clone(),
        key: "(file)".into(),
        problem,
    };
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let meta = file.metadata().map_err(|e| err(format!("cannot read: {e}")))?;
    check_trusted(&meta, effective_uid()).map_err(err)?;
    let mut text = String::new();
    (&file)
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(err(format!(
            "is longer than the {MAX_FILE_BYTES} bytes a configuration may have"
        )));
    }
    parse(&text, &name)
}

/// Largest configuration file read, far above any real one: a path to a
/// device or a huge file gets an error instead of unbounded memory.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Refuses a file others could have changed: not a regular file, owned by
/// someone other than root or `uid`, or writable by its group or by everyone.
pub fn check_trusted(meta: &std::fs::Metadata, uid: u32) -> Result<(), String> {
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "is {} bytes, more than the {MAX_FILE_BYTES} a configuration may have",
            meta.len()
        ));
    }
    let mode = meta.permissions().mode();
    if mode & 0o002 != 0 {
        return Err("is writable by every user; refusing it (chmod o-w)".into());
    }
    if mode & 0o020 != 0 {
        return Err("is writable by its group; refusing it (chmod g-w)".into());
    }
    if meta.uid() != 0 && meta.uid() != uid {
        return Err(format!(
            "is owned by uid {}, neither root nor the agent's user (uid {uid}); refusing it (chown)",
            meta.uid()
        ));
    }
    Ok(())
}

/// The effective user ID of this process.
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Parses YAML text; errors name the key the parser stopped at.
pub fn parse(text: &str, source_name: &str) -> Result<ConfigFile, ConfigError> {
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = escape_controls(&e.path().to_string());
        let mut problem = escape_controls(&e.into_inner().to_string());
        // The YAML error may repeat (part of) the path: "collectors[0]: unknown field ..."
        if let Some((prefix, rest)) = problem.split_once(": ") {
            if !prefix.contains(' ') && key.starts_with(prefix) {
                problem = rest.to_string();
            }
        }
        ConfigError {
            source_name: source_name.into(),
            key: if key == "." { "(top level)".into() } else { key },
            problem,
        }
    })
}

/// Writes control characters (newlines, tabs, escapes) as Rust escapes: the
/// key path and the YAML error may quote keys of the file, and an error must
/// stay on one line.
fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Checks every value and builds the configuration.
pub fn validate(file: &ConfigFile, source_name: &str, strictness: Strictness) -> Result<AgentConfig, ConfigError> {
    let err = |key: String, problem: String| ConfigError {
        source_name: source_name.into(),
        key,
        problem,
    };
    let interfaces = file
        .interfaces
        .iter()
        .enumerate()
        .map(|(i, e)| interface(e).map_err(|p| err(format!("interfaces[{i}]"), p)));
    let interfaces = interfaces.collect::<Result<Vec<_>, _>>()?;
    if file.max_flows == Some(0) {
        return Err(err("maxFlows".into(), "must be at least 1".into()));
    }
    if let Some(max_flows) = file.max_flows.filter(|&m| m > MAX_FLOWS_LIMIT) {
        return Err(err(
            "maxFlows".into(),
            format!("{max_flows} is above the limit of {MAX_FLOWS_LIMIT} flows"),
        ));
    }
    let attach_mode = parse_or_default(file.attach_mode.as_deref()).map_err(|p| err("attachMode".into(), p))?;
    let attach_order = parse_or_default(file.attach_order.as_deref()).map_err(|p| err("attachOrder".into(), p))?;
    if file.collectors.is_empty() {
        return Err(err(
            "collectors".into(),
            "no collector configured: the agent does not start without one; add one, e.g. \
             `collectors: [{address: 192.0.2.10:4739}]`"
                .into(),
        ));
    }
    let collectors = file
        .collectors
        .iter()
        .enumerate()
        .map(|(i, c)| collector(c).map_err(|(k, p)| err(format!("collectors[{i}].{k}"), p)))
        .collect::<Result<Vec<_>, _>>()?;
    let (timeouts, template_refresh, scan_interval) =
        timers(&file.timers).map_err(|(k, p)| err(format!("timers.{k}"), p))?;
    let templates = templates(&file.templates, strictness).map_err(|(k, p)| err(k, p))?;
    let metrics = metrics(&file.metrics).map_err(|p| err("metrics.address".into(), p))?;
    let spool = spool(&file.spool).map_err(|(k, p)| err(format!("spool.{k}"), p))?;
    let control_socket = PathBuf::from(
        file.control
            .socket
            .as_deref()
            .unwrap_or(crate::control::DEFAULT_CONTROL_SOCKET),
    );
    if !control_socket.is_absolute() {
        return Err(err(
            "control.socket".into(),
            format!("{} is not an absolute path", control_socket.display()),
        ));
    }
    let log_format = parse_or_default(file.log.format.as_deref()).map_err(|p| err("log.format".into(), p))?;
    // Every template and one of its records must fit in one message, or the
    // exporter could never send them.
    for (i, c) in collectors.iter().enumerate() {
        match c.format {
            ExportFormat::Ipfix => {
                let key = || format!("collectors[{i}].maxMessageSize");
                let builder = MessageBuilder::new(c.max_message_size, c.observation_domain_id)
                    .map_err(|e| err(key(), e.to_string()))?;
                for t in &templates {
                    builder.check(t).map_err(|e| err(key(), e.to_string()))?;
                }
            }
            ExportFormat::NetflowV9 => {
                netflow9::check(i, c, &templates, !file.templates.is_empty()).map_err(|(k, p)| err(k, p))?;
            }
        }
    }
    Ok(AgentConfig {
        interfaces,
        max_flows: file.max_flows,
        detach_on_exit: file.detach_on_exit,
        attach_mode,
        attach_order,
        collectors,
        timeouts,
        template_refresh,
        scan_interval,
        templates,
        metrics,
        spool,
        control_socket,
        log_format,
    })
}

/// Default spool directory (systemd's StateDirectory=flowctl).
pub const DEFAULT_SPOOL_DIR: &str = "/var/lib/flowctl/spool";
/// Default largest spool file per collector.
pub const DEFAULT_SPOOL_BYTES: u64 = 64 << 20;

fn spool(s: &SpoolEntry) -> Result<Spool, (&'static str, String)> {
    let dir = s.directory.as_deref().unwrap_or(DEFAULT_SPOOL_DIR);
    if !dir.starts_with('/') {
        return Err(("directory", format!("{dir:?} is not an absolute path")));
    }
    let max_bytes = s.max_bytes.unwrap_or(DEFAULT_SPOOL_BYTES);
    if max_bytes < 4096 {
        return Err(("maxBytes", format!("{max_bytes} is less than 4096")));
    }
    Ok(Spool {
        dir: dir.into(),
        max_bytes,
    })
}

/// `value` parsed, or the type's default when absent.
fn parse_or_default<T: std::str::FromStr<Err = String> + Default>(value: Option<&str>) -> Result<T, String> {
    value.map_or(Ok(T::default()), str::parse)
}

/// The endpoint's address, checked even when it is turned off.
fn metrics(m: &MetricsEntry) -> Result<Option<SocketAddr>, String> {
    let address = socket_address(m.address.as_deref().unwrap_or(DEFAULT_METRICS_ADDRESS))?;
    Ok((m.enabled != Some(false)).then_some(address))
}

/// Whether the kernel accepts `name` as an interface name (`dev_valid_name`):
/// 1 to 15 bytes, not `.` or `..`, no `/`, `:` or blanks.
pub fn valid_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name.contains(['/', ':'])
        && !name.contains(char::is_whitespace)
}

fn interface(e: &InterfaceEntry) -> Result<InterfaceSpec, String> {
    if !valid_interface_name(&e.name) {
        return Err(format!(
            "name: {:?} is not a valid interface name (1 to 15 bytes, no '/', ':' or blanks)",
            e.name
        ));
    }
    Ok(InterfaceSpec {
        name: e.name.clone(),
        netns: e.netns.clone(),
        directions: directions(e.direction.as_deref())?,
        sampling: sampling(e.sampling.as_ref()).map_err(|p| format!("sampling.{p}"))?,
    })
}

/// `sampling: {interval, mode}`; none: every packet.
pub fn sampling(e: Option<&file::SamplingEntry>) -> Result<Sampling, String> {
    let Some(e) = e else {
        return Ok(Sampling::NONE);
    };
    let mode: SampleMode = match e.mode.as_deref() {
        None => SampleMode::default(),
        Some(m) => m.parse().map_err(|p| format!("mode: {p}"))?,
    };
    let interval = e.interval.unwrap_or(1);
    let interval = u32::try_from(interval)
        .map_err(|_| format!("interval: {interval} is out of range (1 to {MAX_SAMPLE_INTERVAL})"))?;
    Sampling::new(interval, mode).map_err(|p| format!("interval: {p}"))
}

/// `ingress`, `egress` (default) or `both`.
pub fn directions(value: Option<&str>) -> Result<Vec<Direction>, String> {
    match value.unwrap_or("egress") {
        "egress" => Ok(vec![Direction::Egress]),
        "ingress" => Ok(vec![Direction::Ingress]),
        "both" => Ok(Direction::BOTH.to_vec()),
        other => Err(format!("direction: {other:?} is not ingress, egress or both")),
    }
}

/// Resolves `host:port` to one socket address.
pub fn socket_address(value: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = value.parse() {
        return Ok(a);
    }
    match value.to_socket_addrs() {
        Ok(mut addrs) => addrs.next().ok_or_else(|| format!("{value:?} resolves to no address")),
        Err(e) => Err(format!("{value:?} is not a host:port address ({e})")),
    }
}

fn collector(c: &CollectorEntry) -> Result<CollectorSpec, (&'static str, String)> {
    let address = socket_address(&c.address).map_err(|p| ("address", p))?;
    let protocol = match c.transport.as_deref().unwrap_or("udp") {
        "udp" => Protocol::Udp,
        "tcp" => Protocol::Tcp,
        "tls" => Protocol::Tls,
        other => return Err(("transport", format!("{other:?} is not udp, tcp or tls"))),
    };
    let format = match c.protocol.as_deref().unwrap_or("ipfix") {
        "ipfix" => ExportFormat::Ipfix,
        "netflow9" => ExportFormat::NetflowV9,
        other => return Err(("protocol", format!("{other:?} is not ipfix or netflow9"))),
    };
    if format == ExportFormat::NetflowV9 && protocol != Protocol::Udp {
        return Err((
            "protocol",
            format!(
                "netflow9 goes over udp only, not {protocol}: the v9 header has no message length to frame a stream with"
            ),
        ));
    }
    let tls = tls_settings(c, protocol)?;
    let exporter_address = c
        .exporter_address
        .as_deref()
        .map(|a| a.parse::<std::net::IpAddr>())
        .transpose()
        .map_err(|_| {
            (
                "exporterAddress",
                format!(
                    "{:?} is not an IP address",
                    c.exporter_address.as_deref().unwrap_or_default()
                ),
            )
        })?;
    let local_address = c
        .local_address
        .as_deref()
        .map(socket_address)
        .transpose()
        .map_err(|p| ("localAddress", p))?;
    if local_address.is_some_and(|l| l.is_ipv4() != address.is_ipv4()) {
        return Err(("localAddress", "must be of the same IP version as address".into()));
    }
    let default_size = match (protocol, address) {
        (Protocol::Tcp | Protocol::Tls, _) => 65535,
        (Protocol::Udp, SocketAddr::V4(_)) => 1500 - 20 - 8,
        (Protocol::Udp, SocketAddr::V6(_)) => 1500 - 40 - 8,
    };
    let max_message_size = c.max_message_size.unwrap_or(default_size);
    if !(256..=65535).contains(&max_message_size) {
        return Err(("maxMessageSize", format!("{max_message_size} is outside 256..=65535")));
    }
    // The largest UDP payload: 65535 minus the IP and UDP headers.
    let (udp_max, version) = match address {
        SocketAddr::V4(_) => (65535 - 20 - 8, "IPv4"),
        SocketAddr::V6(_) => (65535 - 8, "IPv6"),
    };
    if protocol == Protocol::Udp && max_message_size > udp_max {
        return Err((
            "maxMessageSize",
            format!("{max_message_size} is more than a UDP datagram over {version} carries ({udp_max})"),
        ));
    }
    Ok(CollectorSpec {
        endpoint: Endpoint {
            address,
            protocol,
            local_address,
            tls,
        },
        format,
        exporter_address,
        observation_domain_id: c.observation_domain_id.unwrap_or(1),
        max_message_size: max_message_size as usize,
    })
}

/// The host part of `host:port` (`[v6]:port` without brackets).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// `collectors[].tls`, checked: with `transport: tls` only, a CA file
/// required, certificate and key together, every file readable.
fn tls_settings(c: &CollectorEntry, protocol: Protocol) -> Result<Option<TlsClientSettings>, (&'static str, String)> {
    let Some(t) = &c.tls else {
        if protocol == Protocol::Tls {
            return Err((
                "tls",
                "transport tls needs tls.caFile (the CA that signed the collector's certificate)".into(),
            ));
        }
        return Ok(None);
    };
    if protocol != Protocol::Tls {
        return Err(("tls", "is only for transport: tls".into()));
    }
    let ca_file = t.ca_file.as_deref().ok_or((
        "tls.caFile",
        "is required: the CA that signed the collector's certificate".to_string(),
    ))?;
    let settings = TlsClientSettings {
        ca_file: ca_file.into(),
        cert_file: t.cert_file.as_deref().map(Into::into),
        key_file: t.key_file.as_deref().map(Into::into),
        server_name: t.server_name.clone().unwrap_or_else(|| host_of(&c.address).to_string()),
    };
    settings.server_name().map_err(|p| ("tls.serverName", p))?;
    settings.client_config().map_err(|p| ("tls", p))?;
    Ok(Some(settings))
}

/// Parses a humantime duration such as `30s` or `1m 30s`.
pub fn duration(value: &str) -> Result<Duration, String> {
    let d =
        humantime::parse_duration(value).map_err(|e| format!("{value:?} is not a duration ({e}); use e.g. 30s, 5m"))?;
    if d.is_zero() {
        return Err(format!("{value:?}: must be longer than 0"));
    }
    Ok(d)
}

fn timers(t: &TimersEntry) -> Result<(Timeouts, Duration, Duration), (String, String)> {
    let get = |key: &str, v: &Option<String>, default: Duration| {
        v.as_deref()
            .map(duration)
            .transpose()
            .map(|d| d.unwrap_or(default))
            .map_err(|p| (key.to_string(), p))
    };
    let d = Timeouts::default();
    let idle = get("idleTimeout", &t.idle_timeout, d.idle_udp)?;
    let p = &t.idle_timeouts;
    let timeouts = Timeouts {
        idle_tcp: get("idleTimeouts.tcp", &p.tcp, idle)?,
        idle_udp: get("idleTimeouts.udp", &p.udp, idle)?,
        idle_icmp: get("idleTimeouts.icmp", &p.icmp, idle)?,
        idle_other: get("idleTimeouts.other", &p.other, idle)?,
        active: get("activeTimeout", &t.active_timeout, d.active)?,
        tcp_end_grace: get("tcpEndGrace", &t.tcp_end_grace, d.tcp_end_grace)?,
    };
    let refresh = get("templateRefresh", &t.template_refresh, Duration::from_secs(60))?;
    let scan = get("scanInterval", &t.scan_interval, Duration::from_secs(1))?;
    Ok((timeouts, refresh, scan))
}

/// The built-in IPv4 (256) and IPv6 (257) templates (a unit test checks
/// that they build).
pub fn default_templates() -> Result<Vec<Template>, TemplateError> {
    [(256, 4), (257, 6)]
        .into_iter()
        .map(|(id, v)| Template::new(id, &default_fields(v), Strictness::Agent))
        .collect()
}

fn templates(entries: &[TemplateEntry], strictness: Strictness) -> Result<Vec<Template>, (String, String)> {
    if entries.is_empty() {
        return default_templates().map_err(|e| ("templates".to_string(), format!("built-in template: {e}")));
    }
    let mut out: Vec<Template> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let key = |k: &str| format!("templates[{i}].{k}");
        if OPTIONS_TEMPLATE_IDS.contains(&e.id) {
            return Err((
                key("id"),
                format!("{} is reserved for flowctl's options templates", e.id),
            ));
        }
        if out.iter().any(|t| t.id == e.id) {
            return Err((key("id"), format!("duplicate template id {}", e.id)));
        }
        let names: Vec<&str> = e.fields.iter().map(|f| f.name()).collect();
        let t = Template::new(e.id, &names, strictness).map_err(|p| {
            let k = if matches!(p, TemplateError::IdTooLow(_)) {
                "id"
            } else {
                "fields"
            };
            (key(k), p.to_string())
        })?;
        out.push(t);
    }
    if strictness == Strictness::Agent {
        for v in [4u8, 6] {
            if !out.iter().any(|t| t.ip_version().is_none_or(|tv| tv == v)) {
                return Err((
                    "templates".into(),
                    format!("no template can carry IPv{v} flows: add one with IPv{v} address fields (or none)"),
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;

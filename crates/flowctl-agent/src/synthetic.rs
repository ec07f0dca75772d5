//! `flowctl ipfix send`: synthetic flows from a YAML file to the configured
//! collectors, for testing collectors (linux-flow-exporter's `ipfix file`).
//!
//! ```yaml
//! flowsets:
//!   - templateId: 1004
//!     flows:
//!       - SourceIPv4Address: 10.1.0.1     # or 0x0a010001, as the reference tool wrote it
//!         OctetDeltaCount: 1500
//!         FlowStartMilliseconds: 2026-11-23T10:00:00Z   # or Unix ms
//! ```

use std::{
    collections::HashMap,
    net::IpAddr,
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use flowctl_export::transport::Transport;
use flowctl_ipfix::{fields, template::Template, FieldValue, MessageSplitter, SyntheticValues};
use serde::Deserialize;

use crate::config::AgentConfig;

/// The flows file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowsFile {
    /// Groups of flows, each sent with one template.
    pub flowsets: Vec<FlowSet>,
}

/// `flowsets[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FlowSet {
    /// Template of these flows (must be in the configuration).
    pub template_id: u16,
    /// Field name to value.
    pub flows: Vec<HashMap<String, serde_yaml_ng::Value>>,
}

/// A flow ready to encode.
pub struct SyntheticFlow {
    /// Its template.
    pub template: Template,
    /// Its values.
    pub values: SyntheticValues,
}

/// Largest flows file read: far more than any test needs, and a bound for
/// a path to a device or a runaway file.
const MAX_FLOWS_FILE_BYTES: u64 = 64 << 20;

/// The text of a file of at most [`MAX_FLOWS_FILE_BYTES`].
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut text = String::new();
    file.take(MAX_FLOWS_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read: {e}"))?;
    if text.len() as u64 > MAX_FLOWS_FILE_BYTES {
        return Err(format!("cannot read: longer than {MAX_FLOWS_FILE_BYTES} bytes"));
    }
    Ok(text)
}

/// Reads and checks a flows file against the configuration's templates.
pub fn load(path: &Path, config: &AgentConfig) -> Result<Vec<SyntheticFlow>, String> {
    let name = path.display();
    let text = read_bounded(path).map_err(|e| format!("{name}: {e}"))?;
    let file: FlowsFile = serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(&text))
        .map_err(|e| format!("{name}: {}: {}", e.path(), e.inner()))?;
    let mut out = Vec::new();
    for (i, set) in file.flowsets.iter().enumerate() {
        let template = config
            .templates
            .iter()
            .find(|t| t.id == set.template_id)
            .ok_or_else(|| {
                format!(
                    "{name}: flowsets[{i}].templateId: no template {} in the configuration",
                    set.template_id
                )
            })?;
        for (j, flow) in set.flows.iter().enumerate() {
            let mut values = HashMap::new();
            for (field, value) in flow {
                let key = format!("{name}: flowsets[{i}].flows[{j}].{field}");
                let def = fields::lookup(field).ok_or_else(|| format!("{key}: unknown field"))?;
                values.insert(def.id, value_of(value).map_err(|p| format!("{key}: {p}"))?);
            }
            out.push(SyntheticFlow {
                template: template.clone(),
                values: SyntheticValues(values),
            });
        }
    }
    Ok(out)
}

/// A YAML scalar as a field value: a number, an IP address, an RFC 3339
/// time, or a number in a string (`"0x0a010001"`).
fn value_of(v: &serde_yaml_ng::Value) -> Result<FieldValue, String> {
    use serde_yaml_ng::Value;
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(FieldValue::Unsigned)
            .ok_or_else(|| format!("{n} is not an unsigned integer")),
        Value::Bool(b) => Ok(FieldValue::Unsigned(*b as u64)),
        Value::String(s) => {
            if let Ok(ip) = s.parse::<IpAddr>() {
                return Ok(FieldValue::Address(flowctl_model::key_addr(ip)));
            }
            if let Ok(t) = humantime::parse_rfc3339_weak(s) {
                let ns = t
                    .duration_since(UNIX_EPOCH)
                    .map_err(|_| format!("{s:?} is before 1970"))?
                    .as_nanos();
                return Ok(FieldValue::Nanoseconds(ns as u64));
            }
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed
                .map(FieldValue::Unsigned)
                .map_err(|_| format!("{s:?} is not a number, address or time"))
        }
        _ => Err("expected a number, an address or a time".into()),
    }
}

/// Sends the templates, then the flows, to every collector of the
/// configuration. Returns the number of records sent to each.
pub async fn send(config: &AgentConfig, flows: &[SyntheticFlow]) -> Result<Vec<(String, usize)>, String> {
    let export_time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let mut report = Vec::new();
    // Refused before anything is sent to any collector.
    for (i, c) in config.collectors.iter().enumerate() {
        if c.format != flowctl_export::ExportFormat::Ipfix {
            return Err(format!(
                "collectors[{i}] ({}) has protocol {}: flowctl ipfix send sends IPFIX only",
                c.endpoint, c.format
            ));
        }
    }
    for c in &config.collectors {
        let mut transport = Transport::new(c.endpoint.clone());
        let endpoint = c.endpoint.to_string();
        transport
            .ensure_connected()
            .await
            .map_err(|e| format!("{endpoint}: {e}"))?;
        let mut messages = MessageSplitter::new(c.max_message_size, c.observation_domain_id, export_time, 0)
            .map_err(|e| e.to_string())?;
        for t in &config.templates {
            messages
                .push(|m| m.push_template(t))
                .map_err(|_| format!("template {} does not fit in a message", t.id))?;
        }
        messages.flush(); // templates in messages of their own
        for f in flows {
            messages
                .push(|m| m.push_record(&f.template, &f.values))
                .map_err(|_| "a record does not fit in a message".to_string())?;
        }
        let messages = messages.finish();
        for (m, _) in &messages {
            transport.send(m).await.map_err(|e| format!("{endpoint}: {e}"))?;
        }
        report.push((endpoint, flows.len()));
    }
    Ok(report)
}

//! How `flowctl collect` prints what it decodes: JSON lines or a table.

use std::net::SocketAddr;

use flowctl_ipfix::{DecodedMessage, DecodedRecord, DecodedValue};
use serde_json::{json, Map, Value};

fn json_value(v: &DecodedValue) -> Value {
    match v {
        DecodedValue::Unsigned(n) | DecodedValue::Milliseconds(n) | DecodedValue::Nanoseconds(n) => json!(n),
        DecodedValue::Seconds(n) => json!(n),
        DecodedValue::Signed(n) => json!(n),
        DecodedValue::Bool(b) => json!(b),
        DecodedValue::MplsLabel(l) => json!({"label": l.label, "tc": l.tc, "bottom_of_stack": l.bottom_of_stack}),
        other => json!(other.to_string()),
    }
}

pub fn json_line(from: SocketAddr, msg: &DecodedMessage, r: &DecodedRecord) -> Value {
    let fields: Map<String, Value> = r
        .fields
        .iter()
        .map(|f| (f.name.clone(), json_value(&f.value)))
        .collect();
    json!({
        "exporter": from.to_string(),
        "observation_domain_id": msg.observation_domain_id,
        "sequence_number": msg.sequence_number,
        "export_time": msg.export_time,
        "template_id": r.template_id,
        "options": r.options,
        "fields": fields,
    })
}

/// The templates a message withdraws (JSON, with `--options`).
pub fn withdrawal_line(from: SocketAddr, msg: &DecodedMessage) -> Value {
    json!({
        "exporter": from.to_string(),
        "observation_domain_id": msg.observation_domain_id,
        "sequence_number": msg.sequence_number,
        "withdrawn": msg.withdrawn,
    })
}

pub fn table_header() -> String {
    format!(
        "{:<22} {:>5} {:<5} {:<42} {:<42} {:>10} {:>12} {:<24} {}",
        "EXPORTER", "TPL", "PROTO", "SRC", "DST", "PACKETS", "BYTES", "START", "END REASON"
    )
}

fn endpoint(r: &DecodedRecord, addr_v4: &str, addr_v6: &str, port: &str) -> String {
    let addr = r
        .get(addr_v4)
        .or_else(|| r.get(addr_v6))
        .map(|a| a.to_string())
        .unwrap_or_else(|| "-".into());
    match r.unsigned(port) {
        Some(p) if addr.contains(':') => format!("[{addr}]:{p}"),
        Some(p) => format!("{addr}:{p}"),
        None => addr,
    }
}

pub fn table_line(from: SocketAddr, _msg: &DecodedMessage, r: &DecodedRecord) -> String {
    if r.options {
        let fields: Vec<String> = r.fields.iter().map(|f| format!("{}={}", f.name, f.value)).collect();
        return format!(
            "{:<22} {:>5} options {}",
            from.to_string(),
            r.template_id,
            fields.join(" ")
        );
    }
    let show = |name: &str| r.get(name).map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let proto = r
        .unsigned("protocolIdentifier")
        .map(|p| crate::filter::protocol_name(p as u8))
        .unwrap_or_else(|| "-".into());
    let icmp = r.unsigned("icmpTypeCodeIPv4").filter(|_| proto == "icmp");
    let icmp = icmp.or_else(|| r.unsigned("icmpTypeCodeIPv6").filter(|_| proto == "icmpv6"));
    let src = endpoint(r, "sourceIPv4Address", "sourceIPv6Address", "sourceTransportPort");
    let dst = endpoint(
        r,
        "destinationIPv4Address",
        "destinationIPv6Address",
        "destinationTransportPort",
    );
    let (src, dst) = match icmp {
        // ICMP has no ports: show the address and the type/code instead.
        Some(tc) => (
            src.rsplit_once(':')
                .map(|(a, _)| a.trim_matches(['[', ']']).to_string())
                .unwrap_or(src),
            format!(
                "{} type {} code {}",
                dst.rsplit_once(':')
                    .map(|(a, _)| a.trim_matches(['[', ']']))
                    .unwrap_or(&dst),
                tc >> 8,
                tc & 0xff
            ),
        ),
        None => (src, dst),
    };
    format!(
        "{:<22} {:>5} {:<5} {:<42} {:<42} {:>10} {:>12} {:<24} {} {}",
        from.to_string(),
        r.template_id,
        proto,
        src,
        dst,
        show("packetDeltaCount"),
        show("octetDeltaCount"),
        show("flowStartMilliseconds"),
        show("flowEndMilliseconds"),
        show("flowEndReason"),
    )
}

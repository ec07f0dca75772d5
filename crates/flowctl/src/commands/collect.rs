//! `flowctl collect`: a small IPFIX collector on UDP and TCP that prints
//! every record it decodes (for the demo, tests and troubleshooting).

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use flowctl_ipfix::{split_stream, DecodedMessage, DecodedRecord, DecodedValue, Decoder};
use serde_json::{json, Map, Value};

use crate::cli::{CollectArgs, OutputFormat};

/// What the receiving threads hand to the printer.
enum Event {
    Message(SocketAddr, DecodedMessage),
    Error(SocketAddr, String),
}

/// Listens on UDP and TCP and prints records until --count or --duration.
pub fn collect(args: &CollectArgs) -> anyhow::Result<()> {
    let udp = UdpSocket::bind(args.listen).map_err(|e| anyhow::anyhow!("listening on udp {}: {e}", args.listen))?;
    let tcp = TcpListener::bind(args.listen).map_err(|e| anyhow::anyhow!("listening on tcp {}: {e}", args.listen))?;
    let (tx, rx) = mpsc::channel();
    let udp_tx = tx.clone();
    thread::spawn(move || receive_udp(udp, udp_tx));
    thread::spawn(move || accept_tcp(tcp, tx));
    eprintln!("flowctl collect: listening on udp and tcp {}", args.listen);

    let deadline = args
        .duration
        .as_deref()
        .map(|d| Instant::now() + flowctl_agent::config::duration(d).unwrap_or_default());
    let mut printed = 0u64;
    let mut out = std::io::stdout().lock();
    if args.output == OutputFormat::Table {
        writeln!(out, "{}", table_header())?;
    }
    loop {
        if args.count.is_some_and(|c| printed >= c) {
            return Ok(());
        }
        let wait = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) => left,
                None => return Ok(()),
            },
            None => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait) {
            Ok(Event::Message(from, msg)) => {
                for r in msg.records.iter().filter(|r| args.options || !r.options) {
                    let line = match args.output {
                        OutputFormat::Json => json_line(from, &msg, r).to_string(),
                        OutputFormat::Table => table_line(from, &msg, r),
                    };
                    writeln!(out, "{line}")?;
                    printed += u64::from(!r.options);
                    if args.count.is_some_and(|c| printed >= c) {
                        break;
                    }
                }
                out.flush()?;
            }
            Ok(Event::Error(from, e)) => eprintln!("flowctl collect: {from}: {e}"),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

fn receive_udp(socket: UdpSocket, tx: mpsc::Sender<Event>) {
    // Templates are per exporter (and observation domain, inside the decoder).
    let mut decoders: std::collections::HashMap<SocketAddr, Decoder> = Default::default();
    let mut buf = vec![0u8; 65536];
    while let Ok((n, from)) = socket.recv_from(&mut buf) {
        let decoder = decoders.entry(from).or_default();
        let event = match decoder.decode(&buf[..n]) {
            Ok(m) => Event::Message(from, m),
            Err(e) => Event::Error(from, e.to_string()),
        };
        if tx.send(event).is_err() {
            return;
        }
    }
}

fn accept_tcp(listener: TcpListener, tx: mpsc::Sender<Event>) {
    for stream in listener.incoming().flatten() {
        let tx = tx.clone();
        thread::spawn(move || receive_tcp(stream, tx));
    }
}

fn receive_tcp(mut stream: TcpStream, tx: mpsc::Sender<Event>) {
    let Ok(from) = stream.peer_addr() else { return };
    let mut decoder = Decoder::new();
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let (messages, consumed) = match split_stream(&pending) {
            Ok(split) => split,
            Err(e) => {
                let _ = tx.send(Event::Error(from, format!("{e}; closing the connection")));
                return;
            }
        };
        for m in messages {
            let event = match decoder.decode(m) {
                Ok(m) => Event::Message(from, m),
                Err(e) => Event::Error(from, e.to_string()),
            };
            if tx.send(event).is_err() {
                return;
            }
        }
        pending.drain(..consumed);
    }
}

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

fn json_line(from: SocketAddr, msg: &DecodedMessage, r: &DecodedRecord) -> Value {
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

fn table_header() -> String {
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

fn table_line(from: SocketAddr, _msg: &DecodedMessage, r: &DecodedRecord) -> String {
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

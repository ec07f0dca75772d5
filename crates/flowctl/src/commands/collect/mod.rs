//! `flowctl collect`: a small IPFIX collector on UDP and TCP (or TLS over
//! TCP, `--tls-cert`/`--tls-key`, mutual with `--tls-ca`) that prints every
//! record it decodes (for the demo, tests and troubleshooting).
//!
//! Everything it keeps is bounded: at most [`receive::QUEUE_MESSAGES`]
//! messages wait to be decoded; the UDP exporters' decoders are at most
//! [`UDP_EXPORTERS`], expired after [`UDP_IDLE`] of silence; TCP exporters
//! are at most [`receive::TCP_CONNECTIONS`]; each decoder holds at most the
//! templates `flowctl_ipfix::DecoderLimits` allows by default.

mod exporters;
mod print;
mod receive;
mod tls;

use std::{
    collections::HashMap,
    io::Write,
    net::{SocketAddr, TcpListener, UdpSocket},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use flowctl_ipfix::{DecodedMessage, Decoder};

use crate::cli::{CollectArgs, OutputFormat};
use exporters::Exporters;
use print::{json_line, table_header, table_line, withdrawal_line};
use receive::Event;

/// UDP exporters whose templates are remembered, at most.
pub const UDP_EXPORTERS: usize = 64;
/// A UDP exporter silent this long is forgotten when room is needed.
pub const UDP_IDLE: Duration = Duration::from_secs(1800);

/// Listens on UDP and TCP and prints records until --count or --duration.
pub fn collect(args: &CollectArgs) -> anyhow::Result<()> {
    let udp = UdpSocket::bind(args.listen).map_err(|e| anyhow::anyhow!("listening on udp {}: {e}", args.listen))?;
    let tcp = TcpListener::bind(args.listen).map_err(|e| anyhow::anyhow!("listening on tcp {}: {e}", args.listen))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(tls::server_config(cert, key, args.tls_ca.as_deref()).map_err(anyhow::Error::msg)?)
        }
        _ => None,
    };
    let tcp_name = if tls.is_some() { "tls" } else { "tcp" };
    let (tx, rx) = mpsc::sync_channel(receive::QUEUE_MESSAGES);
    let udp_tx = tx.clone();
    thread::spawn(move || receive::receive_udp(udp, udp_tx));
    thread::spawn(move || receive::accept_tcp(tcp, tls, tx));
    eprintln!("flowctl collect: listening on udp and {tcp_name} {}", args.listen);

    let deadline = args
        .duration
        .as_deref()
        .map(|d| Instant::now() + flowctl_agent::config::duration(d).unwrap_or_default());
    let mut printer = Printer {
        args,
        printed: 0,
        out: std::io::stdout().lock(),
    };
    if args.output == OutputFormat::Table {
        writeln!(printer.out, "{}", table_header())?;
    }
    let mut udp_exporters = Exporters::new(UDP_EXPORTERS, UDP_IDLE);
    let mut tcp_exporters: HashMap<u64, Decoder> = HashMap::new();
    loop {
        if printer.done() {
            return Ok(());
        }
        let wait = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) => left,
                None => return Ok(()),
            },
            None => Duration::from_secs(3600),
        };
        let (from, decoded) = match rx.recv_timeout(wait) {
            Ok(Event::Datagram(from, bytes)) => {
                let evicted = udp_exporters.evicted();
                let decoder = udp_exporters.decoder(from, Instant::now());
                let decoded = decoder.decode(&bytes).map_err(|e| e.to_string());
                // Said at the 1st, 2nd, 4th, 8th... eviction: a flood of
                // sources cannot flood the terminal.
                if udp_exporters.evicted() > evicted && udp_exporters.evicted().is_power_of_two() {
                    eprintln!(
                        "flowctl collect: more than {UDP_EXPORTERS} UDP exporters; the templates of the least recently \
                         heard were forgotten ({} times so far)",
                        udp_exporters.evicted()
                    );
                }
                (from, decoded)
            }
            Ok(Event::Stream(id, from, bytes)) => (
                from,
                tcp_exporters
                    .entry(id)
                    .or_default()
                    .decode(&bytes)
                    .map_err(|e| e.to_string()),
            ),
            Ok(Event::Closed(id)) => {
                tcp_exporters.remove(&id);
                continue;
            }
            Ok(Event::Error(from, e)) => (from, Err(e)),
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        match decoded {
            Ok(message) => printer.print(from, &message)?,
            Err(e) => eprintln!("flowctl collect: {from}: {e}"),
        }
    }
}

/// Prints decoded records, counting them against --count.
struct Printer<'a, W: Write> {
    args: &'a CollectArgs,
    printed: u64,
    out: W,
}

impl<W: Write> Printer<'_, W> {
    /// Whether --count records have been printed.
    fn done(&self) -> bool {
        self.args.count.is_some_and(|c| self.printed >= c)
    }

    /// Prints the records of one message (and its withdrawals, with
    /// --options in JSON).
    fn print(&mut self, from: SocketAddr, msg: &DecodedMessage) -> std::io::Result<()> {
        let args = self.args;
        if args.options && args.output == OutputFormat::Json && !msg.withdrawn.is_empty() {
            writeln!(self.out, "{}", withdrawal_line(from, msg))?;
        }
        for r in msg.records.iter().filter(|r| args.options || !r.options) {
            let line = match args.output {
                OutputFormat::Json => json_line(from, msg, r).to_string(),
                OutputFormat::Table => table_line(from, msg, r),
            };
            writeln!(self.out, "{line}")?;
            self.printed += u64::from(!r.options);
            if self.done() {
                break;
            }
        }
        self.out.flush()
    }
}

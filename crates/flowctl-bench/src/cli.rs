//! Command-line arguments.

use std::net::Ipv4Addr;

use clap::{Args, Parser, Subcommand};

/// Benchmark tools for flowctl.
#[derive(Debug, Parser)]
#[command(name = "flowctl-bench", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send IPv4/UDP frames for N flows out of an interface (AF_PACKET); prints one JSON line.
    Send(SendArgs),
    /// Attach a bare per-CPU-hash tc counter (tcx egress) until SIGTERM/SIGINT; prints one JSON line.
    Bare(BareArgs),
    /// Hold bound UDP sockets (never read) in a namespace until SIGTERM/SIGINT, so no ICMP answers the traffic.
    Sink(SinkArgs),
    /// Cost of the flowctl classifier and of the bare counter on one frame (BPF_PROG_TEST_RUN); prints one JSON line.
    ProgCost(ProgCostArgs),
}

/// Arguments of `send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Network namespace name (under /var/run/netns) to send from.
    #[arg(long)]
    pub netns: String,
    /// Interface to send on.
    #[arg(long)]
    pub ifname: String,
    /// Destination MAC address (aa:bb:cc:dd:ee:ff).
    #[arg(long, value_parser = parse_mac)]
    pub dst_mac: [u8; 6],
    /// Source IPv4 address.
    #[arg(long)]
    pub src_ip: Ipv4Addr,
    /// Destination IPv4 address.
    #[arg(long)]
    pub dst_ip: Ipv4Addr,
    /// UDP destination port.
    #[arg(long)]
    pub dst_port: u16,
    /// Number of flows (flow i uses UDP source port 10000 + i).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=55536))]
    pub flows: u32,
    /// IPv4 total length of every packet (L3 octets).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(64..=1500))]
    pub size: u16,
    /// Packets per second; 0 sends as fast as one core can.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Seconds to send for (fractions allowed).
    #[arg(long, value_parser = parse_duration)]
    pub duration: f64,
}

/// Arguments of `bare`.
#[derive(Debug, Args)]
pub struct BareArgs {
    /// Network namespace name (under /var/run/netns) of the interface.
    #[arg(long)]
    pub netns: String,
    /// Interface whose egress to count.
    #[arg(long)]
    pub ifname: String,
    /// Hash the 5-tuple padded to 60 bytes, the width of flowctl's flow key.
    #[arg(long)]
    pub wide_key: bool,
}

/// Arguments of `sink`.
#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Network namespace name (under /var/run/netns) to bind in.
    #[arg(long)]
    pub netns: String,
    /// Address to bind, ADDR:PORT (repeatable).
    #[arg(long, required = true)]
    pub bind: Vec<std::net::SocketAddr>,
}

/// Arguments of `prog-cost`.
#[derive(Debug, Args)]
pub struct ProgCostArgs {
    /// IPv4 total length of the UDP frame.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(64..=1500))]
    pub size: u16,
    /// Runs per measurement (the kernel averages them).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Measurements per program, alternating; the median is printed.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: u32,
    /// Also measure the classifier sampling 1 packet in N (`sampled_ns`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(2..=16_777_216))]
    pub sample_interval: Option<u32>,
    /// How the sampled classifier selects: random or deterministic.
    #[arg(long, default_value = "random", value_parser = parse_sample_mode)]
    pub sample_mode: flowctl_model::SampleMode,
    /// Also measure another build of the classifier (an eBPF object file,
    /// e.g. the datapath of the previous release, `baseline_ns`), loaded
    /// with its globals' defaults.
    #[arg(long, value_name = "FILE")]
    pub baseline_object: Option<std::path::PathBuf>,
}

fn parse_sample_mode(s: &str) -> Result<flowctl_model::SampleMode, String> {
    s.parse()
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || format!("invalid MAC address {s:?} (expected aa:bb:cc:dd:ee:ff)");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

fn parse_duration(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(d) if d.is_finite() && d > 0.0 && d <= 86400.0 => Ok(d),
        _ => Err(format!("invalid duration {s:?} (seconds, > 0 and <= 86400)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parses_and_rejects() {
        assert_eq!(parse_mac("02:00:0a:FF:00:01"), Ok([2, 0, 10, 255, 0, 1]));
        for bad in [
            "",
            "02:00:0a:ff:00",
            "02:00:0a:ff:00:01:02",
            "2:00:0a:ff:00:01",
            "zz:00:0a:ff:00:01",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn duration_bounds() {
        assert_eq!(parse_duration("0.5"), Ok(0.5));
        for bad in ["0", "-1", "nan", "inf", "x", "100000"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flows_and_size_ranges() {
        let base = [
            "flowctl-bench",
            "send",
            "--netns",
            "n",
            "--ifname",
            "v",
            "--dst-mac",
            "02:00:00:00:00:01",
            "--src-ip",
            "10.0.0.1",
            "--dst-ip",
            "10.0.0.2",
            "--dst-port",
            "9",
            "--duration",
            "1",
        ];
        let with = |extra: &[&str]| Cli::try_parse_from(base.iter().chain(extra.iter()));
        assert!(with(&["--flows", "55536", "--size", "1500"]).is_ok());
        assert!(with(&["--flows", "0"]).is_err());
        assert!(with(&["--flows", "55537"]).is_err());
        assert!(with(&["--size", "63"]).is_err());
        assert!(with(&["--size", "1501"]).is_err());
    }
}

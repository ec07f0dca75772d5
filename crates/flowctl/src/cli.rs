//! Command-line definitions (clap) and the top-level dispatcher.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{commands, filter::FlowFilter};

/// eBPF flow exporter: meters packets with a tc classifier into a pinned flow cache.
#[derive(Debug, Parser)]
#[command(name = "flowctl", version = version(), about, long_about = None)]
pub struct Cli {
    /// Base directory of flowctl's pins in bpffs.
    #[arg(long, global = true, env = "FLOWCTL_PIN_DIR", default_value = flowctl_datapath::pins::DEFAULT_PIN_BASE)]
    pub pin_dir: PathBuf,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

fn version() -> String {
    format!(
        "{} (datapath layout v{})",
        env!("CARGO_PKG_VERSION"),
        flowctl_common::LAYOUT_VERSION
    )
}

/// flowctl's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the classifier and attach it to an interface (stays attached after exit).
    Attach(AttachArgs),
    /// Detach the classifier from an interface, or from everywhere.
    Detach(DetachArgs),
    /// Show where flowctl is attached, cache fill and datapath counters.
    Status(StatusArgs),
    /// Print the flows in the pinned cache.
    Dump(DumpArgs),
    /// Remove flows from the pinned cache: all of them or those matching a filter.
    Flush(FlushArgs),
}

/// Which tc hooks to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DirectionArg {
    /// Packets sent by the interface.
    Egress,
    /// Packets received by the interface.
    Ingress,
    /// Both.
    Both,
}

impl DirectionArg {
    /// The datapath directions this selects.
    pub fn directions(self) -> Vec<flowctl_datapath::Direction> {
        use flowctl_datapath::Direction;
        match self {
            DirectionArg::Egress => vec![Direction::Egress],
            DirectionArg::Ingress => vec![Direction::Ingress],
            DirectionArg::Both => Direction::BOTH.to_vec(),
        }
    }
}

/// Arguments of `flowctl attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Interface to meter.
    #[arg(short, long)]
    pub interface: String,
    /// tc hook(s) to attach to.
    #[arg(long, value_enum, default_value_t = DirectionArg::Egress)]
    pub direction: DirectionArg,
    /// Network namespace (an `ip netns` name) the interface lives in.
    #[arg(long)]
    pub netns: Option<String>,
    /// Flow cache capacity (only when the cache is created; default 65536).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_flows: Option<u32>,
}

/// Arguments of `flowctl detach`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["interface", "all"]))]
pub struct DetachArgs {
    /// Interface to detach from.
    #[arg(short, long)]
    pub interface: Option<String>,
    /// Detach from every interface in every namespace.
    #[arg(long)]
    pub all: bool,
    /// With --all: also remove the pinned flow cache (every counted flow is lost).
    #[arg(long, requires = "all")]
    pub purge: bool,
    /// tc hook(s) to detach from.
    #[arg(long, value_enum, default_value_t = DirectionArg::Both, conflicts_with = "all")]
    pub direction: DirectionArg,
    /// Network namespace (an `ip netns` name) the interface lives in.
    #[arg(long, conflicts_with = "all")]
    pub netns: Option<String>,
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A human-readable table.
    Table,
    /// JSON.
    Json,
}

/// Arguments of `flowctl status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// Sort order of `flowctl dump`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortKey {
    /// Most packets first.
    Packets,
    /// Most bytes first.
    Bytes,
}

/// Arguments of `flowctl dump`.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Sort flows (default: by start time).
    #[arg(long, value_enum)]
    pub sort: Option<SortKey>,
    /// Only flows matching these.
    #[command(flatten)]
    pub filter: FlowFilter,
}

/// Arguments of `flowctl flush`.
#[derive(Debug, Args)]
pub struct FlushArgs {
    /// Remove every flow.
    #[arg(short = 'A', long, conflicts_with_all = ["ifindex", "proto", "src", "sport", "dst", "dport"])]
    pub all: bool,
    /// Remove the flows matching all of these.
    #[command(flatten)]
    pub filter: FlowFilter,
}

/// Parses arguments, runs the command and returns the process exit code.
/// Errors are printed as one line on stderr.
pub fn main() -> i32 {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            eprintln!("flowctl: {first} (see flowctl --help)");
            return 2;
        }
    };
    match commands::run(&cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("flowctl: {}", one_line(&e));
            1
        }
    }
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(": ")
        .replace('\n', " ")
}

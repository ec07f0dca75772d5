//! Command-line definitions (clap) and the top-level dispatcher.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use flowctl_agent::log_format::{self, LogFormat};
use flowctl_datapath::{AttachMode, Order};

use crate::{commands, filter::FlowFilter};

/// eBPF flow exporter: meters packets with a tc classifier into a pinned flow cache.
#[derive(Debug, Parser)]
#[command(name = "flowctl", version = version(), about, long_about = None)]
pub struct Cli {
    /// Base directory of flowctl's pins in bpffs.
    #[arg(long, global = true, env = "FLOWCTL_PIN_DIR", default_value = flowctl_datapath::pins::DEFAULT_PIN_BASE)]
    pub pin_dir: PathBuf,

    /// Log lines as text, or as one JSON object per line (time, level,
    /// target, message) for journald and log shippers [default: the agent
    /// file's log.format, else text].
    #[arg(long, global = true, value_name = "text|json", value_parser = parse_from_str::<LogFormat>)]
    pub log_format: Option<LogFormat>,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

fn version() -> String {
    format!(
        "{} (datapath layout v{})",
        env!("CARGO_PKG_VERSION"),
        flowctl_model::LAYOUT_VERSION
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
    /// End flows now, all of them or those matching a filter: the running agent exports them (reason 4).
    Flush(FlushArgs),
    /// Run the exporter (age flows out of the cache and send them as IPFIX), or ask the running one.
    Agent(Box<AgentArgs>),
    /// Agent configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Receive IPFIX and print the flow records (a small built-in collector).
    Collect(CollectArgs),
    /// IPFIX tools.
    #[command(subcommand)]
    Ipfix(IpfixCommand),
    /// Print a shell completion script (bash, zsh or fish) on stdout.
    Completions(CompletionsArgs),
    /// Write the manual pages of flowctl and of every subcommand into a
    /// directory (for packaging: misc/package.sh).
    #[command(hide = true)]
    Man(ManArgs),
}

/// Arguments of `flowctl man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write flowctl.1, flowctl-agent.1, ... into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Date the pages carry, YYYY-MM-DD (misc/package.sh: the last commit's) [default: today, UTC].
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = date_arg)]
    pub date: Option<String>,
}

fn date_arg(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let shape = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
    let digits = b
        .iter()
        .enumerate()
        .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if shape && digits {
        Ok(s.to_string())
    } else {
        Err("not a date as YYYY-MM-DD".into())
    }
}

/// Arguments of `flowctl completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: ShellArg,
}

/// Shells `flowctl completions` writes scripts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    /// Bash (bash-completion).
    Bash,
    /// Zsh (compsys).
    Zsh,
    /// Fish.
    Fish,
}

/// An interface name as the kernel accepts it (`dev_valid_name`).
fn interface_arg(s: &str) -> Result<String, String> {
    if flowctl_agent::config::valid_interface_name(s) {
        Ok(s.to_string())
    } else {
        Err("not an interface name (1 to 15 bytes, no '/', ':' or blanks)".into())
    }
}

fn duration_arg(s: &str) -> Result<String, String> {
    flowctl_agent::config::duration(s).map(|_| s.to_string())
}

fn collector_arg(s: &str) -> Result<String, String> {
    flowctl_agent::parse_collector_url(s).map(|_| s.to_string())
}

/// Where the agent's control socket is.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The running agent's control socket [default: /run/flowctl/control.sock].
    #[arg(long, value_name = "PATH", env = "FLOWCTL_CONTROL_SOCKET")]
    pub control_socket: Option<PathBuf>,
}

impl ControlArgs {
    /// The socket path.
    pub fn path(&self) -> PathBuf {
        self.control_socket
            .clone()
            .unwrap_or_else(|| flowctl_agent::control::DEFAULT_CONTROL_SOCKET.into())
    }
}

/// Requests to a running agent.
#[derive(Debug, Subcommand)]
pub enum AgentAction {
    /// Show the running agent: collectors, queues, the last aging pass.
    Status {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
        /// The agent's control socket.
        #[command(flatten)]
        control: ControlArgs,
    },
    /// Make the running agent send every template again to every collector.
    ResendTemplates {
        /// The agent's control socket.
        #[command(flatten)]
        control: ControlArgs,
    },
}

/// Arguments of `flowctl agent`. Flags override the configuration file.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    /// A request to the running agent instead of running one.
    #[command(subcommand)]
    pub action: Option<AgentAction>,
    /// Where this agent listens for flush, status and template requests.
    #[command(flatten)]
    pub control: ControlArgs,
    /// YAML configuration file (see configs/).
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// Interface to attach to (repeatable); replaces the file's interfaces.
    #[arg(short, long)]
    pub interface: Vec<String>,
    /// Network namespace of the --interface interfaces.
    #[arg(long)]
    pub netns: Option<String>,
    /// tc hook(s) of the --interface interfaces.
    #[arg(long, value_enum)]
    pub direction: Option<DirectionArg>,
    /// Collector as udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT (repeatable); replaces the file's collectors.
    #[arg(long, value_parser = collector_arg)]
    pub collector: Vec<String>,
    /// PEM CA certificates of the tls:// collectors (required with tls://).
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
    /// PEM certificate chain the agent presents to tls:// collectors (mutual TLS, with --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Name the tls:// collectors' certificates must carry [default: the host of the URL].
    #[arg(long, value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Idle timeout of every protocol, e.g. 15s.
    #[arg(long, value_parser = duration_arg)]
    pub idle_timeout: Option<String>,
    /// Active timeout, e.g. 60s.
    #[arg(long, value_parser = duration_arg)]
    pub active_timeout: Option<String>,
    /// Template re-send interval over UDP, e.g. 60s.
    #[arg(long, value_parser = duration_arg)]
    pub template_refresh: Option<String>,
    /// Flow cache scan interval, e.g. 1s.
    #[arg(long, value_parser = duration_arg)]
    pub scan_interval: Option<String>,
    /// Flow cache capacity when the agent creates it.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_flows: Option<u32>,
    /// Detach from the interfaces the agent attached to when it exits.
    #[arg(long)]
    pub detach_on_exit: bool,
    /// Where a graceful stop keeps the records it could not deliver, for the
    /// next start [default: /var/lib/flowctl/spool].
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// How to hook into tc (replaces the file's attachMode/attachOrder).
    #[command(flatten)]
    pub attach: HookArgs,
    /// Serve Prometheus /metrics on ADDR:PORT (default 127.0.0.1:9999; port 0: any free port).
    #[arg(long, value_name = "ADDR:PORT", value_parser = metrics_address_arg, conflicts_with = "no_metrics")]
    pub metrics_address: Option<String>,
    /// Do not serve Prometheus /metrics.
    #[arg(long)]
    pub no_metrics: bool,
}

fn metrics_address_arg(s: &str) -> Result<String, String> {
    flowctl_agent::config::socket_address(s).map(|_| s.to_string())
}

/// `flowctl config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate an agent configuration file.
    Check {
        /// The YAML file.
        file: PathBuf,
    },
}

/// Arguments of `flowctl collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    /// Address to listen on, UDP and TCP (e.g. 127.0.0.1:4739).
    #[arg(short, long, default_value = "127.0.0.1:4739")]
    pub listen: std::net::SocketAddr,
    /// Output: a table row or a JSON object (one per line) per record.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Exit after this many flow records.
    #[arg(long)]
    pub count: Option<u64>,
    /// Exit after this long (e.g. 30s).
    #[arg(long, value_parser = duration_arg)]
    pub duration: Option<String>,
    /// Also print options records (exporter statistics, sampling) and, in JSON, template withdrawals.
    #[arg(long)]
    pub options: bool,
    /// Speak TLS on TCP with this PEM certificate chain (with --tls-key); UDP stays plain.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Require exporters to present a certificate signed by one of these PEM CAs (mutual TLS).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_ca: Option<std::path::PathBuf>,
}

/// `flowctl ipfix ...`.
#[derive(Debug, Subcommand)]
pub enum IpfixCommand {
    /// Send synthetic flows from a YAML file to the configured collectors.
    Send {
        /// Agent configuration (collectors and templates).
        #[arg(short, long)]
        config: PathBuf,
        /// Flows file: flowsets of {templateId, flows: [{FieldName: value}]}.
        #[arg(short, long)]
        flows: PathBuf,
    },
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
    #[arg(short, long, value_parser = interface_arg)]
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
    /// How to hook into tc.
    #[command(flatten)]
    pub hook: HookArgs,
}

/// How the classifier hooks into tc (`attach` and `agent`).
#[derive(Debug, Args)]
pub struct HookArgs {
    /// tcx where the kernel has it (Linux >= 6.6), else a tc filter under clsact [default: auto].
    #[arg(long, value_name = "auto|tcx|tc", value_parser = parse_from_str::<AttachMode>)]
    pub attach_mode: Option<AttachMode>,
    /// Before or after the other programs on the hook [default: first].
    #[arg(long, value_name = "first|last", value_parser = parse_from_str::<Order>)]
    pub attach_order: Option<Order>,
    /// Meter 1 packet in N (1 to 16777216) [default: 1, every packet]; the agent: on every interface.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=u64::from(flowctl_model::MAX_SAMPLE_INTERVAL)))]
    pub sample_interval: Option<u64>,
    /// How the 1 in N are chosen: at random, or every Nth packet on each CPU [default: random].
    #[arg(long, value_name = "random|deterministic", value_parser = parse_from_str::<flowctl_model::SampleMode>)]
    pub sample_mode: Option<flowctl_model::SampleMode>,
}

impl HookArgs {
    /// The sampling the flags ask for (every packet without them).
    pub fn sampling(&self) -> Result<flowctl_model::Sampling, String> {
        let interval = self
            .sample_interval
            .map_or(Ok(1), u32::try_from)
            .map_err(|e| e.to_string())?;
        flowctl_model::Sampling::new(interval, self.sample_mode.unwrap_or_default())
    }
}

/// A value parsed by its `FromStr`.
fn parse_from_str<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, String> {
    s.parse()
}

/// Arguments of `flowctl detach`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["interface", "all"]))]
pub struct DetachArgs {
    /// Interface to detach from.
    #[arg(short, long, value_parser = interface_arg)]
    pub interface: Option<String>,
    /// Detach from every interface in every namespace.
    #[arg(long)]
    pub all: bool,
    /// With --all: also remove the pinned flow cache (every counted flow is lost).
    #[arg(long, conflicts_with = "interface")]
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
    /// End every flow.
    #[arg(short = 'A', long, conflicts_with_all = ["ifindex", "proto", "src", "sport", "dst", "dport"])]
    pub all: bool,
    /// End the flows matching all of these.
    #[command(flatten)]
    pub filter: FlowFilter,
    /// Delete the flows from the cache without exporting them (needed when
    /// no agent is running; with one, the agent exports them, reason 4).
    #[arg(long)]
    pub discard: bool,
    /// The agent's control socket.
    #[command(flatten)]
    pub control: ControlArgs,
}

/// Parses arguments, runs the command and returns the process exit code.
/// Errors are printed as one line on stderr.
pub fn main() -> i32 {
    crate::logging::init();
    crate::process::one_line_panics();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            eprintln!("flowctl: {} (see flowctl --help)", usage_error(&e));
            return 2;
        }
    };
    if let Some(format) = cli.log_format {
        log_format::set(format);
    }
    crate::process::quiet_broken_pipe(&cli.command);
    match commands::run(&cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("flowctl {}: {}", commands::name(&cli.command), one_line(&e));
            exit_code(&cli.command, &e)
        }
    }
}

/// Exit code of `flowctl agent` when its configuration is unusable
/// (sysexits.h's EX_CONFIG): the unit's `RestartPreventExitStatus=78` keeps
/// systemd from restarting it every few seconds until someone edits the file.
pub const EX_CONFIG: i32 = 78;

/// [`EX_CONFIG`] for an agent stopped by its configuration, 1 for any other error.
fn exit_code(command: &Command, e: &anyhow::Error) -> i32 {
    let runs_agent = matches!(command, Command::Agent(a) if a.action.is_none());
    let config = e.chain().any(|c| {
        c.is::<flowctl_agent::config::ConfigError>()
            || matches!(c.downcast_ref(), Some(flowctl_agent::AgentError::Config(_)))
    });
    if runs_agent && config {
        EX_CONFIG
    } else {
        1
    }
}

/// A clap error on one line: its first paragraph (a value with a line
/// break in it stays whole), or the usage line when a subcommand is missing.
fn usage_error(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        return match rendered.lines().find_map(|l| l.strip_prefix("Usage: ")) {
            Some(usage) => format!("a subcommand is required: {usage}"),
            None => "a subcommand is required".to_string(),
        };
    }
    let message = rendered.split("\n\n").next().unwrap_or_default();
    let message = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.trim_start_matches("error: ");
    if message.is_empty() {
        "invalid arguments".to_string()
    } else {
        message.to_string()
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

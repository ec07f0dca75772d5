//! One module per subcommand; each turns parsed arguments into library calls
//! and prints the result.

mod agent;
mod agent_control;
mod attach;
mod collect;
mod completions;
mod dump;
mod flush;
mod ipfix;
mod man;
mod privileges;
mod status;

use flowctl_datapath::PinLayout;

use crate::cli::{Cli, Command, ConfigCommand, IpfixCommand};

/// Runs the parsed command line, after checking its capabilities.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    let layout = PinLayout::under(&cli.pin_dir);
    privileges::check(privileges::needs(&cli.command, &layout))?;
    match &cli.command {
        Command::Attach(args) => attach::attach(&layout, args),
        Command::Detach(args) => attach::detach(&layout, args),
        Command::Status(args) => status::status(&layout, args),
        Command::Dump(args) => dump::dump(&layout, args),
        Command::Flush(args) => flush::flush(&layout, args),
        Command::Agent(args) => agent::agent(&layout, args, cli.log_format),
        Command::Config(ConfigCommand::Check { file }) => agent::config_check(file),
        Command::Collect(args) => collect::collect(args),
        Command::Ipfix(IpfixCommand::Send { config, flows }) => ipfix::send(config, flows),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => man::man(args),
    }
}

/// The command's name as typed, e.g. `config check` (for error messages).
pub fn name(command: &Command) -> &'static str {
    match command {
        Command::Attach(_) => "attach",
        Command::Detach(_) => "detach",
        Command::Status(_) => "status",
        Command::Dump(_) => "dump",
        Command::Flush(_) => "flush",
        Command::Agent(_) => "agent",
        Command::Config(ConfigCommand::Check { .. }) => "config check",
        Command::Collect(_) => "collect",
        Command::Ipfix(IpfixCommand::Send { .. }) => "ipfix send",
        Command::Completions(_) => "completions",
        Command::Man(_) => "man",
    }
}

//! One module per subcommand; each turns parsed arguments into library calls
//! and prints the result.

mod agent;
mod attach;
mod collect;
mod dump;
mod flush;
mod ipfix;
mod status;

use flowctl_datapath::PinLayout;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    let layout = PinLayout::under(&cli.pin_dir);
    match &cli.command {
        Command::Attach(args) => attach::attach(&layout, args),
        Command::Detach(args) => attach::detach(&layout, args),
        Command::Status(args) => status::status(&layout, args),
        Command::Dump(args) => dump::dump(&layout, args),
        Command::Flush(args) => flush::flush(&layout, args),
        Command::Agent(args) => agent::agent(&layout, args),
        Command::Config(crate::cli::ConfigCommand::Check { file }) => agent::config_check(file),
        Command::Collect(args) => collect::collect(args),
        Command::Ipfix(crate::cli::IpfixCommand::Send { config, flows }) => ipfix::send(config, flows),
    }
}

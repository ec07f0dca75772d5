//! The capabilities each command needs, checked before it touches the
//! kernel (see `flowctl_datapath::caps` for what the kernel asks for what).

use flowctl_datapath::{caps::Needs, PinLayout};

use crate::cli::Command;

/// What `command` needs before it runs. The agent needs more once its
/// configuration is read (namespaces), see [`check`].
pub fn needs(command: &Command, layout: &PinLayout) -> Needs {
    match command {
        Command::Attach(a) => Needs {
            enter_netns: a.netns.is_some(),
            ..Needs::ATTACH
        }
        .preparing(layout),
        // A request to the running agent needs only its socket.
        Command::Agent(a) if a.action.is_some() => Needs::default(),
        Command::Agent(_) => Needs::ATTACH.preparing(layout),
        Command::Detach(d) => Needs {
            enter_netns: d.netns.is_some() && !d.all,
            ..Needs::PINS
        },
        // Without --discard, flush only talks to the agent.
        Command::Flush(f) if !f.discard => Needs::default(),
        Command::Status(_) | Command::Dump(_) | Command::Flush(_) => Needs::PINS,
        Command::Config(_) | Command::Collect(_) | Command::Ipfix(_) | Command::Completions(_) | Command::Man(_) => {
            Needs::default()
        }
    }
}

/// Fails with one line naming the first missing capability.
pub fn check(needs: Needs) -> anyhow::Result<()> {
    needs.check_current().map_err(anyhow::Error::new)
}

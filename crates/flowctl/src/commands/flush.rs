//! `flowctl flush`.

use std::io::ErrorKind;

use anyhow::{anyhow, bail};
use flowctl_agent::control::{self, Request, Response};
use flowctl_datapath::{FlowTable, PinLayout};

use crate::cli::FlushArgs;

/// Ends every flow, or exactly the flows matching the filter: through the
/// running agent, which exports them with reason 4; or, with `--discard`
/// and no agent, by deleting them from the cache.
pub fn flush(layout: &PinLayout, args: &FlushArgs) -> anyhow::Result<()> {
    if !args.all && args.filter.is_empty() {
        bail!("flush needs --all or a selector (-i/--ifindex, -p/--proto, -s/--src, -S/--sport, -d/--dst, -D/--dport)");
    }
    let socket = args.control.path();
    let request = Request::Flush {
        selector: args.filter.selector(),
    };
    match control::request(&socket, &request) {
        Ok(Response::Flushed { flows }) => {
            println!("flushed {flows} flow(s): the agent exported them (flowEndReason 4)");
            Ok(())
        }
        Ok(Response::Error { message }) => Err(anyhow!("the agent: {message}")),
        Ok(other) => Err(anyhow!("the agent answered {other:?}")),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
            if !args.discard {
                bail!(
                    "no agent answers on {}: flushing would lose what the flows counted; \
                     start the agent, or use --discard to delete them without exporting",
                    socket.display()
                );
            }
            discard(layout, args)
        }
        Err(e) => Err(anyhow!("control socket {}: {e}", socket.display())),
    }
}

/// Deletes the matching flows from the cache; nothing is exported.
fn discard(layout: &PinLayout, args: &FlushArgs) -> anyhow::Result<()> {
    let mut table = FlowTable::open(layout)?;
    let mut removed = 0usize;
    for key in table.keys()? {
        if (args.all || args.filter.matches(&key)) && table.remove(&key)? {
            removed += 1;
        }
    }
    println!("flushed {removed} flow(s): discarded, not exported");
    Ok(())
}

//! `flowctl flush`.

use std::io::ErrorKind;

use anyhow::{anyhow, bail};
use flowctl_agent::control::{self, Request, Response};
use flowctl_datapath::{FlowTable, PinLayout};
use flowctl_model::{EndReason, Ending, FlowSource};

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

/// Ends the matching flows in the cache without exporting them.
fn discard(layout: &PinLayout, args: &FlushArgs) -> anyhow::Result<()> {
    let table = FlowTable::open_writer(layout)?;
    let endings: Vec<Ending> = table
        .read_all()?
        .iter()
        .filter(|f| args.all || args.filter.matches(&f.key))
        .map(|f| Ending::of(f, EndReason::ForcedEnd))
        .collect();
    table.close(&endings)?;
    let mut removed = 0usize;
    table.settle(&mut |_, _| removed += 1)?;
    println!("flushed {removed} flow(s): discarded, not exported");
    Ok(())
}

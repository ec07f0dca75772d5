//! `flowctl flush`.

use anyhow::bail;
use flowctl_datapath::{FlowTable, PinLayout};

use crate::cli::FlushArgs;

/// Removes every flow, or exactly the flows matching the filter, and says how many.
pub fn flush(layout: &PinLayout, args: &FlushArgs) -> anyhow::Result<()> {
    if !args.all && args.filter.is_empty() {
        bail!("flush needs --all or a selector (-i/--ifindex, -p/--proto, -s/--src, -S/--sport, -d/--dst, -D/--dport)");
    }
    let mut table = FlowTable::open(layout)?;
    let mut removed = 0usize;
    for key in table.keys()? {
        if (args.all || args.filter.matches(&key)) && table.remove(&key)? {
            removed += 1;
        }
    }
    println!("flushed {removed} flow(s)");
    Ok(())
}

//! `flowctl dump`.

use flowctl_datapath::{netlink::InterfaceNames, FlowTable, PinLayout};
use flowctl_model::BootClock;

use crate::{
    cli::{DumpArgs, OutputFormat, SortKey},
    flow_view::{self, FlowView},
};

/// Prints the flows of the pinned cache that match the filter.
pub fn dump(layout: &PinLayout, args: &DumpArgs) -> anyhow::Result<()> {
    let table = FlowTable::open(layout)?;
    let clock = BootClock::now();
    let mut names = InterfaceNames::new();
    let mut flows: Vec<_> = table
        .read_all()?
        .into_iter()
        .filter(|f| args.filter.matches(&f.key))
        .collect();
    match args.sort {
        Some(SortKey::Packets) => flows.sort_by_key(|f| std::cmp::Reverse(f.stats.packets)),
        Some(SortKey::Bytes) => flows.sort_by_key(|f| std::cmp::Reverse(f.stats.octets)),
        None => flows.sort_by_key(|f| (f.stats.first_seen_ns, f.key)),
    }
    let views: Vec<FlowView> = flows
        .iter()
        .map(|f| FlowView::new(&f.key, &f.stats, &clock, &mut names))
        .collect();
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&views)?),
        OutputFormat::Table => println!("{}", flow_view::table(&views)),
    }
    Ok(())
}

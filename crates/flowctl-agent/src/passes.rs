//! Aging passes on a blocking thread, their records handed to every
//! collector a chunk at a time as the cache is walked (waiting while a
//! collector is behind), and what goes to the collectors after a pass.

use std::sync::{Arc, Mutex};

use flowctl_aging::{ScanOutcome, Scanner};
use flowctl_datapath::{FlowTable, PinLayout};
use flowctl_export::{CollectorHandle, Command};
use flowctl_model::{FlowRecord, FlowSelector, FlowSource};

use crate::{agent::AgentError, collectors::Collector, interfaces::SharedInterfaces, lock};

/// The aging scanner over the pinned flow cache, shared with the blocking
/// thread a pass runs on.
pub type SharedScanner = Arc<Mutex<Scanner<FlowTable>>>;

/// What a pass does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassKind {
    /// Ends the flows that are due (the scan timer).
    Age,
    /// Ends every flow, reason 4 (shutdown).
    EndAll,
    /// Ends the flows the selector picks, reason 4 (`flowctl flush`).
    Flush(FlowSelector),
}

/// Runs one pass of `kind`, after switching to the pinned cache if it was
/// replaced.
pub async fn run(
    scanner: &SharedScanner,
    layout: &PinLayout,
    collectors: &[Collector],
    interfaces: &SharedInterfaces,
    kind: PassKind,
) -> Result<ScanOutcome, AgentError> {
    let (scanner, layout, interfaces) = (scanner.clone(), layout.clone(), interfaces.clone());
    let runtime = tokio::runtime::Handle::current();
    let targets: Vec<CollectorHandle> = collectors.iter().map(|c| c.handle.clone()).collect();
    tokio::task::spawn_blocking(move || {
        let mut sink = |records: Vec<FlowRecord>| {
            // The names of new interfaces go before the records that carry them.
            let names = {
                let mut table = lock(&interfaces);
                table.learn(&records).then(|| table.snapshot())
            };
            if let Some(names) = names {
                runtime.block_on(send_interfaces(&targets, names));
            }
            runtime.block_on(send_records(&targets, records))
        };
        let mut s = lock(&scanner);
        follow_the_cache(&mut s, &layout, &mut sink)?;
        match kind {
            PassKind::Age => s.scan(&mut sink),
            PassKind::EndAll => s.end_all(&mut sink),
            PassKind::Flush(selector) if selector.is_empty() => s.end_all(&mut sink),
            PassKind::Flush(selector) => s.end_where(|k| selector.matches(k), &mut sink),
        }
    })
    .await
    .map_err(|e| AgentError::Other(e.to_string()))?
    .map_err(AgentError::from)
}

/// Switches to the pinned cache if it was replaced (purged, or resized and
/// attached again), after exporting what the old map still holds (reason
/// 4): the datapath writes into the new one, so nothing is lost.
fn follow_the_cache(
    scanner: &mut Scanner<FlowTable>,
    layout: &PinLayout,
    sink: flowctl_aging::RecordSink<'_>,
) -> flowctl_datapath::Result<()> {
    if !scanner.source().is_replaced(layout)? {
        return Ok(());
    }
    // A failed open below leaves the old table without its lock: the next
    // pass tries again.
    if scanner.source().is_writer() {
        let old = scanner.end_all(sink)?;
        log::warn!(
            "the pinned flow cache was replaced: exported the {} flows left in the old one",
            old.flows
        );
        scanner.source_mut().release_writer();
    }
    let new = FlowTable::open_writer(layout)?;
    log::warn!("reading the new flow cache (capacity {})", new.capacity());
    scanner.replace_source(new);
    Ok(())
}

/// The interface names to every collector.
pub async fn send_interfaces(targets: &[CollectorHandle], names: Arc<Vec<flowctl_ipfix::InterfaceInfo>>) {
    for handle in targets {
        handle.send(Command::Interfaces(names.clone())).await;
    }
}

/// One chunk of records to every collector, shared (not copied).
async fn send_records(targets: &[CollectorHandle], records: Vec<FlowRecord>) {
    let records = Arc::new(records);
    for handle in targets {
        if !handle.send(Command::Records(records.clone())).await {
            log::error!("{}: export task stopped", handle.endpoint());
        }
    }
}

/// After a pass (its records already handed over): the datapath's
/// not-recorded counters to every collector, then the pass's summary.
pub async fn dispatch(collectors: &[Collector], outcome: &ScanOutcome) {
    let c = &outcome.counters;
    for col in collectors {
        col.handle
            .send(Command::Ignored {
                packets: c.not_recorded_packets,
                octets: c.not_recorded_octets,
            })
            .await;
    }
    let n = outcome.records_made.total();
    let (flows, capacity, took) = (outcome.flows, outcome.capacity, outcome.duration);
    log::debug!(
        "scan: {flows} flows of {capacity}, {n} records, {took:?}; not recorded {} packets",
        c.not_recorded_packets
    );
}

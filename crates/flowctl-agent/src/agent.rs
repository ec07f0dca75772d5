//! The agent's event loop: attach, scan on a timer, hand records to every
//! collector task, reload on SIGHUP, and on SIGTERM/SIGINT end every flow
//! (reason 4), send it (a few seconds at most, cut short by a second
//! signal), spool what could not be delivered, and exit.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use flowctl_aging::{ScanOutcome, Scanner, Watermarks};
use flowctl_datapath::{AttachRequest, FlowTable, PinLayout};
use flowctl_export::{CollectorHandle, Command, TemplateSet};
use flowctl_ipfix::template::Strictness;
use flowctl_model::{FlowRecord, FlowSource};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::watch,
    time::{interval, MissedTickBehavior},
};

use crate::{
    collectors::{self, Collector},
    config::{self, AgentConfig, ConfigError},
    lock,
    metrics::{ListenError, MetricsService},
    Overrides,
};

/// The aging scanner over the pinned flow cache, shared with the blocking
/// thread a pass runs on.
type SharedScanner = Arc<Mutex<Scanner<FlowTable>>>;

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The datapath could not be attached or read.
    #[error(transparent)]
    Datapath(#[from] flowctl_datapath::Error),
    /// The metrics endpoint could not listen.
    #[error(transparent)]
    Metrics(#[from] ListenError),
    /// Anything else (signals, runtime).
    #[error("{0}")]
    Other(String),
}

/// Where the configuration comes from, so that SIGHUP can read it again.
#[derive(Clone, Debug)]
pub struct ConfigSource {
    /// The YAML file, if any.
    pub path: Option<PathBuf>,
    /// Command-line overrides.
    pub overrides: Overrides,
}

impl ConfigSource {
    /// Reads the file (if any), applies the overrides and validates.
    pub fn load(&self) -> Result<AgentConfig, ConfigError> {
        let (mut file, name) = match &self.path {
            Some(p) => (config::read(p)?, p.display().to_string()),
            None => (Default::default(), "command line".to_string()),
        };
        self.overrides.apply(&mut file).map_err(|problem| ConfigError {
            source_name: "command line".into(),
            key: "--collector".into(),
            problem,
        })?;
        config::validate(&file, &name, Strictness::Agent)
    }
}

async fn attach_all(layout: &PinLayout, config: &AgentConfig) -> Result<(), AgentError> {
    for i in &config.interfaces {
        let request = AttachRequest {
            interface: i.name.clone(),
            directions: i.directions.clone(),
            netns: i.netns.clone(),
            max_flows: config.max_flows,
            mode: config.attach_mode,
            order: config.attach_order,
        };
        let layout = layout.clone();
        let done = tokio::task::spawn_blocking(move || flowctl_datapath::attach(&layout, &request))
            .await
            .map_err(|e| AgentError::Other(e.to_string()))??;
        for a in done {
            log::info!("metering {} {} (netns {})", i.name, a.direction, a.netns);
        }
    }
    Ok(())
}

async fn detach_all(layout: &PinLayout, config: &AgentConfig) {
    for i in &config.interfaces {
        let (layout, name, dirs, netns) = (layout.clone(), i.name.clone(), i.directions.clone(), i.netns.clone());
        let result =
            tokio::task::spawn_blocking(move || flowctl_datapath::detach(&layout, &name, &dirs, netns.as_deref()))
                .await;
        match result {
            Ok(Ok(_)) => log::info!("detached from {}", i.name),
            Ok(Err(e)) => log::warn!("detaching from {}: {e}", i.name),
            Err(e) => log::warn!("detaching from {}: {e}", i.name),
        }
    }
}

/// Runs one pass (every flow ended if `force`) on a blocking thread, which
/// hands the records to every collector a chunk at a time as the cache is
/// walked, waiting while a collector is behind (`CollectorHandle::send`).
async fn run_scan(
    scanner: &SharedScanner,
    layout: &PinLayout,
    collectors: &[Collector],
    force: bool,
) -> Result<ScanOutcome, AgentError> {
    let (scanner, layout) = (scanner.clone(), layout.clone());
    let runtime = tokio::runtime::Handle::current();
    let targets: Vec<CollectorHandle> = collectors.iter().map(|c| c.handle.clone()).collect();
    tokio::task::spawn_blocking(move || {
        let mut sink = |records: Vec<FlowRecord>| runtime.block_on(send_records(&targets, records));
        let mut s = lock(&scanner);
        follow_the_cache(&mut s, &layout, &mut sink)?;
        if force {
            s.end_all(&mut sink)
        } else {
            s.scan(&mut sink)
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
    let Some(new) = scanner.source().reopen_if_replaced(layout)? else {
        return Ok(());
    };
    let old = scanner.end_all(sink)?;
    log::warn!(
        "the pinned flow cache was replaced: exported the {} flows left in the old one, reading the new one (capacity {})",
        old.flows,
        new.capacity()
    );
    scanner.replace_source(new);
    Ok(())
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
async fn dispatch(collectors: &[Collector], outcome: ScanOutcome) {
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

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run(source: ConfigSource, layout: PinLayout) -> Result<(), AgentError> {
    let mut config = source.load()?;
    // Before attaching: a port in use stops the agent with nothing changed.
    let mut metrics = MetricsService::start(config.metrics).await?;
    attach_all(&layout, &config).await?;
    let links = crate::links::LinkWatch::spawn(layout.clone(), &config); // interface watch (links.rs)
    let scanner = {
        let (layout, timeouts) = (layout.clone(), config.timeouts);
        let table = tokio::task::spawn_blocking(move || FlowTable::open(&layout))
            .await
            .map_err(|e| AgentError::Other(e.to_string()))??;
        let s = Scanner::new(table, timeouts, Watermarks::default());
        Arc::new(Mutex::new(s))
    };
    let mut templates = Arc::new(TemplateSet::new(config.templates.clone()));
    let (mut collectors, _) = collectors::start(&config, &templates, Vec::new()).await;
    metrics.set_collectors(collectors::metrics_sources(&collectors));

    let sig = |kind: SignalKind| signal(kind).map_err(|e| AgentError::Other(format!("installing signal handler: {e}")));
    let (mut term, mut int, mut hup) = (
        sig(SignalKind::terminate())?,
        sig(SignalKind::interrupt())?,
        sig(SignalKind::hangup())?,
    );
    let mut tick = interval(config.scan_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    log::info!("agent running: scan every {:?}", config.scan_interval);

    loop {
        tokio::select! {
            _ = tick.tick() => match run_scan(&scanner, &layout, &collectors, false).await {
                Ok(outcome) => {
                    metrics.observe_pass(&outcome);
                    dispatch(&collectors, outcome).await;
                }
                Err(e) => {
                    metrics.pass_failed();
                    log::error!("scan failed: {e}");
                }
            },
            _ = hup.recv() => match source.load() {
                Ok(new) => {
                    log::info!("configuration reloaded");
                    attach_all(&layout, &new).await.unwrap_or_else(|e| log::error!("reload: {e}"));
                    lock(&scanner).set_timeouts(new.timeouts);
                    templates = Arc::new(TemplateSet::new(new.templates.clone()));
                    let (running, removed) = collectors::start(&new, &templates, collectors).await;
                    collectors = running;
                    if !removed.is_empty() {
                        // Removed collectors stop as at shutdown: what they hold is spooled.
                        let (spool, (_, hurry)) = (config.spool.clone(), watch::channel(false));
                        tokio::spawn(async move { collectors::stop(removed, &spool, hurry).await });
                    }
                    metrics.set_collectors(collectors::metrics_sources(&collectors));
                    metrics.reconfigure(new.metrics).await;
                    for c in &collectors {
                        c.handle.send(Command::Reload(templates.clone(), new.template_refresh)).await;
                    }
                    if new.scan_interval != config.scan_interval {
                        tick = interval(new.scan_interval);
                        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                    }
                    links.update(&new);
                    config = new;
                }
                Err(e) => log::error!("reload refused, keeping the running configuration: {e}"),
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }

    log::info!("shutting down: ending every flow");
    drop(links); // no reattaching from here on
    if config.detach_on_exit {
        detach_all(&layout, &config).await;
    }
    let outcome = run_scan(&scanner, &layout, &collectors, true).await?;
    metrics.observe_pass(&outcome);
    dispatch(&collectors, outcome).await;
    // The collectors get a few seconds; a second stop signal cuts them short.
    // Either way what they could not deliver is spooled.
    let (hurry_tx, hurry) = watch::channel(false);
    let stopping = collectors::stop(collectors, &config.spool, hurry);
    tokio::pin!(stopping);
    tokio::select! {
        () = &mut stopping => return Ok(()),
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    log::warn!("second stop signal: spooling what is not delivered yet");
    let _ = hurry_tx.send(true);
    stopping.await;
    Ok(())
}

//! The agent's event loop: attach, scan on a timer, hand records to every
//! collector task, reload on SIGHUP, and on SIGTERM/SIGINT end every flow
//! (reason 4), send it (a few seconds at most, cut short by a second
//! signal), spool what could not be delivered, and exit.

use std::{
    path::PathBuf,
    sync::{atomic::Ordering::Relaxed, Arc, Mutex},
    time::Instant,
};

use flowctl_aging::{ScanOutcome, Scanner, Watermarks};
use flowctl_datapath::{AttachRequest, FlowTable, PinLayout};
use flowctl_export::{Command, TemplateSet};
use flowctl_ipfix::template::Strictness;
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::watch,
    time::{interval, Interval, MissedTickBehavior},
};

use crate::{
    collectors::{self, Collector},
    config::{self, AgentConfig, ConfigError},
    control::{AgentStatus, CollectorStatusLine, ControlServer, PassStatus, Request, Response},
    interfaces::{InterfaceTable, SharedInterfaces},
    lock, log_format,
    metrics::{ListenError, MetricsService},
    notify,
    passes::{self, PassKind},
    Overrides,
};

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
            sampling: i.sampling,
        };
        let layout = layout.clone();
        let done = tokio::task::spawn_blocking(move || flowctl_datapath::attach(&layout, &request))
            .await
            .map_err(|e| AgentError::Other(e.to_string()))??;
        for a in done {
            log::info!(
                "metering {} {} (netns {}, {})",
                i.name,
                a.direction,
                a.netns,
                i.sampling
            );
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

/// The agent's state for `flowctl agent status`.
async fn status(collectors: &[Collector], last_pass: Option<&(Instant, ScanOutcome)>) -> AgentStatus {
    let mut lines = Vec::new();
    for c in collectors {
        let Some(s) = c.handle.status().await else {
            continue;
        };
        let counters = c.handle.counters();
        lines.push(CollectorStatusLine {
            endpoint: s.endpoint,
            observation_domain_id: c.spec.observation_domain_id,
            connected: counters.connected.load(Relaxed),
            queued: s.queued as u64,
            records: s.records,
            messages: s.messages,
            template_messages: counters.template_messages.load(Relaxed),
            not_sent: s.not_sent,
            errors: s.errors,
            sequence: s.sequence,
        });
    }
    AgentStatus {
        pid: std::process::id(),
        flows: last_pass.map_or(0, |(_, o)| o.flows as u64),
        capacity: last_pass.map_or(0, |(_, o)| u64::from(o.capacity)),
        last_pass: last_pass.map(|(at, o)| PassStatus {
            seconds_ago: at.elapsed().as_secs_f64(),
            duration_ms: o.duration.as_secs_f64() * 1000.0,
            flows: o.flows as u64,
            records: o.records_made.total(),
        }),
        collectors: lines,
    }
}

fn handles(collectors: &[Collector]) -> Vec<flowctl_export::CollectorHandle> {
    collectors.iter().map(|c| c.handle.clone()).collect()
}

/// Reads the interface names again (of one namespace after its link event;
/// the attachments in any case) and, if they changed, sends them to every
/// collector.
async fn refresh_interfaces(
    interfaces: &SharedInterfaces,
    layout: &PinLayout,
    netns: Option<u32>,
    collectors: &[Collector],
) {
    let (table, layout) = (interfaces.clone(), layout.clone());
    let changed = tokio::task::spawn_blocking(move || {
        let mut t = lock(&table);
        let refreshed = netns.is_some_and(|ns| t.refresh(ns));
        let attached = t.add_attachments(&layout);
        (refreshed || attached).then(|| t.snapshot())
    })
    .await
    .ok()
    .flatten();
    if let Some(names) = changed {
        passes::send_interfaces(&handles(collectors), names).await;
    }
}

/// What `systemctl status` shows while the agent runs.
fn running_status(config: &AgentConfig) -> String {
    format!(
        "exporting to {} collector(s), metering {} configured interface(s)",
        config.collectors.len(),
        config.interfaces.len()
    )
}

/// A timer that fires every `period`, or never.
fn ticker(period: Option<std::time::Duration>) -> Option<Interval> {
    period.map(|p| {
        let mut i = interval(p);
        i.set_missed_tick_behavior(MissedTickBehavior::Delay);
        i
    })
}

/// The next tick of `timer`; never when there is none.
async fn next_tick(timer: &mut Option<Interval>) {
    match timer {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Runs the agent until SIGTERM or SIGINT.
///
/// Under systemd (`Type=notify`) it reports READY=1 once the datapath is
/// attached and the collectors are started, RELOADING=1/READY=1 around a
/// SIGHUP reload, STOPPING=1 on shutdown, and pings the watchdog from its
/// main loop (so a stuck loop is noticed).
pub async fn run(source: ConfigSource, layout: PinLayout) -> Result<(), AgentError> {
    let mut config = source.load()?;
    log_format::set(config.log_format);
    // Before attaching: a port in use stops the agent with nothing changed.
    let mut metrics = MetricsService::start(config.metrics).await?;
    attach_all(&layout, &config).await?;
    let links = crate::links::LinkWatch::spawn(layout.clone(), &config); // interface watch (links.rs)
    let scanner = {
        let (layout, timeouts, totals) = (layout.clone(), config.timeouts, config.exports_totals());
        let table = tokio::task::spawn_blocking(move || FlowTable::open_writer(&layout))
            .await
            .map_err(|e| AgentError::Other(e.to_string()))??;
        let mut s = Scanner::new(table, timeouts, Watermarks::default());
        s.set_carry_totals(totals);
        Arc::new(Mutex::new(s))
    };
    let (control, mut requests) = ControlServer::start(&config.control_socket)
        .await
        .map_err(|e| AgentError::Other(format!("control socket {}: {e}", config.control_socket.display())))?;
    let mut templates = Arc::new(TemplateSet::new(config.templates.clone()));
    let (mut collectors, _) = collectors::start(&config, &templates, Vec::new()).await;
    metrics.set_collectors(collectors::metrics_sources(&collectors));
    // Interface names: what the agent meters now; flows and link events add and change them.
    let (link_tx, mut link_events) = tokio::sync::mpsc::channel::<u32>(64);
    let interfaces: SharedInterfaces = Arc::new(Mutex::new(InterfaceTable::new(Some(link_tx))));
    refresh_interfaces(&interfaces, &layout, None, &collectors).await;

    let sig = |kind: SignalKind| signal(kind).map_err(|e| AgentError::Other(format!("installing signal handler: {e}")));
    let (mut term, mut int, mut hup) = (
        sig(SignalKind::terminate())?,
        sig(SignalKind::interrupt())?,
        sig(SignalKind::hangup())?,
    );
    let mut tick = interval(config.scan_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut watchdog = ticker(notify::watchdog_interval());
    log::info!(
        "agent running: scan every {:?}, control socket {}",
        config.scan_interval,
        config.control_socket.display()
    );
    notify::ready(&running_status(&config));
    let mut last_pass: Option<(Instant, ScanOutcome)> = None;

    loop {
        tokio::select! {
            Some(netns) = link_events.recv() => {
                refresh_interfaces(&interfaces, &layout, Some(netns), &collectors).await;
            },
            _ = tick.tick() => match passes::run(&scanner, &layout, &collectors, &interfaces, PassKind::Age).await {
                Ok(outcome) => {
                    metrics.observe_pass(&outcome);
                    passes::dispatch(&collectors, &outcome).await;
                    last_pass = Some((Instant::now(), outcome));
                }
                Err(e) => {
                    metrics.pass_failed();
                    log::error!("scan failed: {e}");
                }
            },
            _ = next_tick(&mut watchdog) => notify::watchdog(),
            _ = hup.recv() => {
                notify::reloading();
                match source.load() {
                    Ok(new) => {
                        log_format::set(new.log_format);
                        log::info!("configuration reloaded");
                        attach_all(&layout, &new).await.unwrap_or_else(|e| log::error!("reload: {e}"));
                        lock(&scanner).set_timeouts(new.timeouts);
                        lock(&scanner).set_carry_totals(new.exports_totals());
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
                        // New collector tasks learn the names; new interfaces are added.
                        let names = lock(&interfaces).snapshot();
                        passes::send_interfaces(&handles(&collectors), names).await;
                        refresh_interfaces(&interfaces, &layout, None, &collectors).await;
                        for c in &collectors {
                            c.handle.send(Command::Reload(templates.clone(), new.template_refresh)).await;
                        }
                        if new.scan_interval != config.scan_interval {
                            tick = interval(new.scan_interval);
                            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                        }
                        links.update(&new);
                        config = new;
                        notify::ready(&running_status(&config));
                    }
                    Err(e) => {
                        log::error!("reload refused, keeping the running configuration: {e}");
                        notify::ready(&running_status(&config));
                    }
                }
            }
            Some((request, reply)) = requests.recv() => {
                let answer = match request {
                    Request::Flush { selector } => {
                        match passes::run(&scanner, &layout, &collectors, &interfaces, PassKind::Flush(selector)).await {
                            Ok(outcome) => {
                                metrics.observe_pass(&outcome);
                                passes::dispatch(&collectors, &outcome).await;
                                let flows = outcome.ended.total();
                                log::info!("flush: {flows} flows ended and exported (reason 4)");
                                Response::Flushed { flows }
                            }
                            Err(e) => Response::Error { message: e.to_string() },
                        }
                    }
                    Request::Status => Response::Status(status(&collectors, last_pass.as_ref()).await),
                    Request::ResendTemplates => {
                        for c in &collectors {
                            c.handle.send(Command::ResendTemplates).await;
                        }
                        Response::Ok
                    }
                };
                let _ = reply.send(answer);
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }

    log::info!("shutting down: ending every flow");
    notify::stopping();
    drop(links); // no reattaching from here on
    if config.detach_on_exit {
        detach_all(&layout, &config).await;
    }
    let outcome = passes::run(&scanner, &layout, &collectors, &interfaces, PassKind::EndAll).await?;
    metrics.observe_pass(&outcome);
    passes::dispatch(&collectors, &outcome).await;
    drop(control);
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

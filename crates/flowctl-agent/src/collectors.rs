//! The agent's collector tasks: started from the configuration (a task
//! whose endpoint and domain stay across a reload keeps running, with its
//! sequence numbers), fed the spool of an earlier run first, and stopped
//! without losing a record: what a stopping task could not deliver goes to
//! its spool file (`crate::spool`).

use std::{sync::Arc, time::Duration};

use flowctl_export::{CollectorHandle, CollectorSettings, Command, ExportFormat, Stopped, TemplateSet};
use tokio::sync::watch;

use crate::{
    config::{AgentConfig, CollectorSpec},
    metrics::CollectorSource,
    spool::Spool,
};

/// How long a stopping collector task may take to deliver what it holds.
pub const STOP_WITHIN: Duration = Duration::from_secs(5);

/// A running collector task and the settings it was started with.
pub struct Collector {
    /// Its configuration.
    pub spec: CollectorSpec,
    /// The task.
    pub handle: CollectorHandle,
}

/// The collector tasks for `config`: those of `running` whose endpoint and
/// domain are still configured keep running; new ones start, fed their
/// spool first. Returns the tasks to run and those no longer configured.
pub async fn start(
    config: &AgentConfig,
    templates: &Arc<TemplateSet>,
    mut running: Vec<Collector>,
) -> (Vec<Collector>, Vec<Collector>) {
    let mut out = Vec::new();
    for spec in &config.collectors {
        if let Some(i) = running.iter().position(|c| &c.spec == spec) {
            out.push(running.swap_remove(i));
            continue;
        }
        let settings = CollectorSettings {
            endpoint: spec.endpoint.clone(),
            observation_domain_id: spec.observation_domain_id,
            max_message_size: spec.max_message_size,
            template_refresh: config.template_refresh,
            queue_limit: flowctl_export::collector::DEFAULT_QUEUE_LIMIT,
            format: spec.format,
            exporter_address: spec.exporter_address,
        };
        // The configuration checked the message size already.
        let handle = match flowctl_export::spawn(settings, templates.clone()) {
            Ok(handle) => handle,
            Err(e) => {
                log::error!("not exporting to {}: {e}", spec.endpoint);
                continue;
            }
        };
        log::info!(
            "exporting to {} ({}, observation domain {})",
            spec.endpoint,
            spec.format,
            spec.observation_domain_id
        );
        if spec.format == ExportFormat::NetflowV9 {
            let dropped = crate::config::netflow9::dropped_fields(&config.templates);
            if !dropped.is_empty() {
                log::info!(
                    "{}: the templates go without {}: NetFlow v9 has no field for it",
                    spec.endpoint,
                    dropped.join(", ")
                );
            }
        }
        feed_spool(&config.spool, spec, &handle).await;
        out.push(Collector {
            spec: spec.clone(),
            handle,
        });
    }
    (out, running)
}

/// Queues the records an earlier run spooled for `spec`, if any.
async fn feed_spool(spool: &Spool, spec: &CollectorSpec, handle: &CollectorHandle) {
    let file = spool.path_for(&spec.endpoint, spec.observation_domain_id);
    match Spool::load(&file) {
        Ok(None) => {}
        Ok(Some(body)) => {
            log::warn!(
                "{}: sending first the {} records an earlier run kept in {}{}",
                spec.endpoint,
                body.records.len(),
                file.display(),
                if body.dropped.records > 0 {
                    format!(" ({} more were dropped then)", body.dropped.records)
                } else {
                    String::new()
                }
            );
            let d = body.dropped;
            handle
                .send(Command::Spooled {
                    records: body.records,
                    given_up: (d.records, d.packets, d.octets),
                    file,
                })
                .await;
        }
        Err(e) => log::error!(
            "{}: cannot read the spool {}: {e}; left as it is",
            spec.endpoint,
            file.display()
        ),
    }
}

/// Stops `collectors` (each sends what it can within [`STOP_WITHIN`], or
/// until `hurry` turns true) and spools what they could not deliver.
pub async fn stop(collectors: Vec<Collector>, spool: &Spool, hurry: watch::Receiver<bool>) {
    let mut stops = tokio::task::JoinSet::new();
    for c in collectors {
        let hurry = hurry.clone();
        stops.spawn(async move {
            let stopped = c.handle.stop(STOP_WITHIN, hurry).await;
            (c.spec, stopped)
        });
    }
    while let Some(done) = stops.join_next().await {
        match done {
            Ok((spec, Some(stopped))) => keep(spool, &spec, stopped),
            Ok((spec, None)) => log::error!("{}: export task gone", spec.endpoint),
            Err(e) => log::error!("stopping a collector task: {e}"),
        }
    }
}

/// Logs a stopped task's counters and spools what it could not deliver.
fn keep(spool: &Spool, spec: &CollectorSpec, stopped: Stopped) {
    let s = &stopped.status;
    log::info!(
        "{}: {} records in {} messages, {} not sent",
        s.endpoint,
        s.records,
        s.messages,
        s.not_sent
    );
    if stopped.unsent.is_empty() {
        return;
    }
    let file = spool.path_for(&spec.endpoint, spec.observation_domain_id);
    // Drops counted in a file still there (never sent) carry on.
    let earlier = Spool::load(&file).ok().flatten().map(|b| b.dropped).unwrap_or_default();
    match spool.store(&file, &stopped.unsent, earlier) {
        Ok(stored) if stored.dropped.records == 0 => log::warn!(
            "{}: not delivered: kept {} records in {} for the next start",
            s.endpoint,
            stored.kept,
            file.display()
        ),
        Ok(stored) => log::warn!(
            "{}: not delivered: kept {} records in {}, dropped {} ({} packets): the spool is limited to {} bytes",
            s.endpoint,
            stored.kept,
            file.display(),
            stored.dropped.records,
            stored.dropped.packets,
            spool.max_bytes
        ),
        Err(e) => log::error!(
            "{}: not delivered, and the spool {} cannot be written ({e}): {} records dropped",
            s.endpoint,
            file.display(),
            stopped.unsent.len()
        ),
    }
}

/// The collector tasks as the metrics label them.
pub fn metrics_sources(collectors: &[Collector]) -> Vec<CollectorSource> {
    collectors
        .iter()
        .map(|c| CollectorSource {
            address: c.spec.endpoint.address.to_string(),
            transport: c.spec.endpoint.protocol.to_string(),
            counters: c.handle.counters().clone(),
        })
        .collect()
}

//! The agent's Prometheus metrics: what the aging passes produced (counted
//! as they happen), and the cache, datapath and collector state (read at
//! scrape time). [`server`] serves them over HTTP; every metric is listed in
//! docs/configuration.md, section "Metrics".

mod live;
pub mod server;
mod service;

use std::sync::Arc;

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, histogram::Histogram},
    registry::{Registry, Unit},
};

use flowctl_aging::ScanOutcome;

pub use live::CollectorSource;
pub use server::{ListenError, MetricsServer};
pub use service::MetricsService;

/// Upper bounds (seconds) of the aging pass duration histogram.
const PASS_BUCKETS: [f64; 10] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// The agent's metrics. Shared (`Arc`) between the event loop, which records
/// into it, and the HTTP server, which renders it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pass_duration: Histogram,
    pass_failures: Counter,
    live: Arc<live::Live>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric registered, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let pass_duration = Histogram::new(PASS_BUCKETS);
        let pass_failures = Counter::default();
        let live = Arc::new(live::Live::default());
        registry.register_with_unit(
            "flowctl_aging_pass_duration",
            "Time taken by an aging pass (read the cache, age, take ended flows)",
            Unit::Seconds,
            pass_duration.clone(),
        );
        registry.register(
            "flowctl_aging_pass_failures",
            "Aging passes that failed (the cache could not be read)",
            pass_failures.clone(),
        );
        registry.register_collector(Box::new(live.clone()));
        Self {
            registry,
            pass_duration,
            pass_failures,
            live,
        }
    }

    /// Records what one aging pass found and produced.
    pub fn observe_pass(&self, outcome: &ScanOutcome) {
        self.pass_duration.observe(outcome.duration.as_secs_f64());
        self.live.add_pass(outcome);
    }

    /// Counts a failed aging pass.
    pub fn pass_failed(&self) {
        self.pass_failures.inc();
    }

    /// The collectors to report (replaces the previous list: reload).
    pub fn set_collectors(&self, collectors: Vec<CollectorSource>) {
        self.live.set_collectors(collectors);
    }

    /// The OpenMetrics text exposition (ends with `# EOF`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests;

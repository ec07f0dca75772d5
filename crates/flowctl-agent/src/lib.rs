//! The flowctl agent: reads the pinned flow cache, ages flows out and exports
//! them as IPFIX to one or more collectors, configured from YAML.

pub mod agent;
pub mod collectors;
pub mod config;
pub mod control;
pub mod interfaces;
pub mod links;
pub mod log_format;
pub mod metrics;
pub mod notify;
mod overrides;
pub mod passes;
pub mod spool;
pub mod synthetic;

pub use agent::{run, AgentError, ConfigSource};
pub use overrides::{parse_collector_url, Overrides};

/// Locks `m`; a panic while it was held leaves the data usable.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

//! The agent's control socket: a Unix stream socket (mode 0600, default
//! `/run/flowctl/control.sock`) through which `flowctl flush` ends flows
//! and exports them instead of deleting them, and `flowctl agent status`
//! and `flowctl agent resend-templates` reach the running agent.
//!
//! One request per connection, one JSON line each way ([`Request`],
//! [`Response`]). The server bounds what a client can make it hold: at most
//! [`MAX_CONNECTIONS`] connections at once, requests of at most
//! [`MAX_REQUEST`] bytes, and [`TIMEOUT`] to send one and read the answer.

mod client;
mod server;

use std::time::Duration;

use flowctl_model::FlowSelector;
use serde::{Deserialize, Serialize};

pub use client::request;
pub use server::{ControlServer, PendingRequest};

/// Where the agent listens unless told otherwise.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/flowctl/control.sock";
/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Longest request line.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Time a client has to send its request and read the answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    /// End the flows the selector picks (every flow when it is empty) and
    /// export them with reason 4.
    Flush {
        /// Which flows.
        selector: FlowSelector,
    },
    /// The agent's state.
    Status,
    /// Send every template again to every collector now.
    ResendTemplates,
}

/// What the agent answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "kebab-case")]
pub enum Response {
    /// Flows ended and handed to the collectors.
    Flushed {
        /// How many.
        flows: u64,
    },
    /// The agent's state.
    Status(AgentStatus),
    /// Done.
    Ok,
    /// The request failed.
    Error {
        /// Why, on one line.
        message: String,
    },
}

/// The running agent, as `flowctl agent status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// Process id.
    pub pid: u32,
    /// Flows in the cache at the last pass, and its capacity.
    pub flows: u64,
    /// Capacity of the cache.
    pub capacity: u64,
    /// The last aging pass, if any.
    pub last_pass: Option<PassStatus>,
    /// Every collector.
    pub collectors: Vec<CollectorStatusLine>,
}

/// One aging pass.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PassStatus {
    /// Seconds since it ended.
    pub seconds_ago: f64,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// Flows it read.
    pub flows: u64,
    /// Records it made.
    pub records: u64,
}

/// One collector task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorStatusLine {
    /// `udp://…`, `tcp://…`.
    pub endpoint: String,
    /// Observation domain.
    pub observation_domain_id: u32,
    /// Whether its socket or connection is up.
    pub connected: bool,
    /// Records waiting.
    pub queued: u64,
    /// Records sent.
    pub records: u64,
    /// Messages sent.
    pub messages: u64,
    /// Messages that carried templates.
    pub template_messages: u64,
    /// Records given up on.
    pub not_sent: u64,
    /// Connect and send errors.
    pub errors: u64,
    /// Sequence number of the next message.
    pub sequence: u32,
}

#[cfg(test)]
mod tests;

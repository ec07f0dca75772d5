//! Flow aging: decides when each flow of the cache is reported and builds
//! its records, so that the records of a flow always sum to what the
//! datapath counted; and the scanner that runs it over any
//! [`FlowSource`](flowctl_model::FlowSource), taking reported flows out of
//! the cache without losing a packet.

mod aging;
mod eviction;
mod scan;
pub mod scanner;
mod timeouts;

pub use aging::{Aging, Expiry};
pub use eviction::Eviction;
pub use scan::ScanPass;
pub use scanner::{RecordSink, ScanOutcome, Scanner, CHUNK_RECORDS};
pub use timeouts::{Timeouts, Watermarks};

#[cfg(test)]
mod tests;

//! Flow aging: decides when each flow of the cache is reported and builds the
//! records, so that the deltas of a flow's records always sum to what the
//! datapath counted.

mod aging;
mod eviction;
mod record;
mod scan;
mod timeouts;

pub use aging::{Aging, Expiry};
pub use eviction::Eviction;
pub use record::{EndReason, FlowRecord};
pub use scan::ScanPass;
pub use timeouts::{Timeouts, Watermarks};

#[cfg(test)]
mod tests;

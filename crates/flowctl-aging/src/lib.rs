//! Flow aging: decides when each flow of the cache is reported and builds the
//! records, so that the deltas of a flow's records always sum to what the
//! datapath counted.

mod record;

pub use record::{EndReason, FlowRecord};

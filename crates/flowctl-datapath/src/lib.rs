//! The flowctl datapath from user space: loads the C tc classifier
//! (`bpf/flowctl.bpf.c`, embedded at build time), attaches it with tcx, pins
//! its maps and links in bpffs, and reads or clears the pinned flow cache from
//! any process.

mod attach;
pub mod cache_memory;
pub mod caps;
mod error;
pub mod flow_table;
pub mod kernel;
mod map_ops;
pub mod netlink;
pub mod netns;
pub mod pins;
pub mod test_run;

use std::fmt;

pub use attach::{
    attach, attachments, detach, detach_all, fill_ring, remove_attachment, status, AttachMode, AttachRequest,
    Attachment, AttachmentState, Hook, Order, Status,
};
pub use error::{Error, Result};
pub use flow_table::FlowTable;
pub use pins::PinLayout;

/// The eBPF object built from `bpf/flowctl.bpf.c` by `build.rs` (public for
/// `flowctl-bench prog-cost`, which measures it without attaching).
pub static DATAPATH_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/flowctl.bpf.o"));

/// Where on an interface the classifier runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// tc ingress: packets received by the interface.
    Ingress,
    /// tc egress: packets sent by the interface.
    Egress,
}

impl Direction {
    /// Both directions, ingress first.
    pub const BOTH: [Direction; 2] = [Direction::Ingress, Direction::Egress];

    /// The IPFIX `flowDirection` value the datapath stores for this direction.
    pub fn flow_direction(self) -> u8 {
        match self {
            Direction::Ingress => flowctl_model::DIRECTION_INGRESS,
            Direction::Egress => flowctl_model::DIRECTION_EGRESS,
        }
    }

    /// Name of this direction's classifier in the object file.
    pub fn program_name(self) -> &'static str {
        match self {
            Direction::Ingress => flowctl_model::INGRESS_PROGRAM,
            Direction::Egress => flowctl_model::EGRESS_PROGRAM,
        }
    }

    /// Direction of a datapath `flowDirection` value.
    pub fn from_flow_direction(value: u8) -> Option<Self> {
        match value {
            flowctl_model::DIRECTION_INGRESS => Some(Direction::Ingress),
            flowctl_model::DIRECTION_EGRESS => Some(Direction::Egress),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        })
    }
}

impl std::str::FromStr for Direction {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "ingress" => Ok(Direction::Ingress),
            "egress" => Ok(Direction::Egress),
            other => Err(format!("unknown direction {other:?} (expected ingress or egress)")),
        }
    }
}

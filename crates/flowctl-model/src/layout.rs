//! Names and versions the datapath (`bpf/flowctl.h`, `bpf/flowctl.bpf.c`)
//! and user space agree on.

/// Version of the map layout; names the pin directory (`v<N>`).
/// Must equal `FLOWCTL_LAYOUT_VERSION` in `bpf/flowctl.h`.
pub const LAYOUT_VERSION: u32 = 4;

/// Name of the flow hash (key -> slot index) in the object file and in bpffs.
pub const FLOWS_MAP: &str = "flowctl_flows";
/// Name of the array of flow slots (memory-mapped by user space).
pub const SLOTS_MAP: &str = "flowctl_slots";
/// Name of the ring of free slot indexes.
pub const RING_MAP: &str = "flowctl_ring";
/// Name of the ring's positions (one [`crate::SlotRing`]).
pub const RINGCTL_MAP: &str = "flowctl_ringctl";
/// Name of the per-CPU spare slots.
pub const SPARE_MAP: &str = "flowctl_spare";
/// Name of the per-CPU datapath counters array in the object file and in bpffs.
pub const COUNTERS_MAP: &str = "flowctl_stats";
/// Name of the egress classifier in the object file.
pub const EGRESS_PROGRAM: &str = "flowctl_egress";
/// Name of the ingress classifier in the object file.
pub const INGRESS_PROGRAM: &str = "flowctl_ingress";
/// Name of the read-only global holding the attachment's netns inode.
pub const NETNS_INO_GLOBAL: &str = "NETNS_INO";
/// Name of the read-only global that is 1 when the attachment's interface
/// carries bare IP packets (no link-layer header: tun, WireGuard, ip
/// tunnels, ppp).
pub const RAW_IP_GLOBAL: &str = "RAW_IP";

/// `flowDirection` (IPFIX IE 61) value for ingress.
pub const DIRECTION_INGRESS: u8 = 0;
/// `flowDirection` (IPFIX IE 61) value for egress.
pub const DIRECTION_EGRESS: u8 = 1;

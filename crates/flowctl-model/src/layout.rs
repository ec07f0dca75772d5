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
/// Name of the CPUs' front caches (an array of [`crate::FrontEntry`],
/// [`FRONT_ENTRIES`] per CPU).
pub const FRONT_MAP: &str = "flowctl_front";
/// log2 of [`FRONT_ENTRIES`]; must equal `FLOWCTL_FRONT_BITS` in `bpf/flowctl.h`.
pub const FRONT_BITS: u32 = 14;
/// Entries of each CPU's front cache.
pub const FRONT_ENTRIES: u32 = 1 << FRONT_BITS;
/// The CPUs that get a front cache: those numbered below this (the array
/// would take 128 KiB more for each CPU beyond; the others go to the hash).
pub const FRONT_MAX_CPUS: u32 = 512;
/// Name of the per-CPU datapath counters array in the object file and in bpffs.
pub const COUNTERS_MAP: &str = "flowctl_stats";
/// Name of the per-CPU state of an attachment's count-based sampling (a
/// private map of each loaded program, never pinned; one [`crate::Sampler`]).
pub const SAMPLER_MAP: &str = "flowctl_sampler";
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
/// Name of the read-only global holding the attachment's sampling interval
/// (0 or 1: every packet).
pub const SAMPLE_INTERVAL_GLOBAL: &str = "SAMPLE_INTERVAL";
/// Name of the read-only global holding the random selection threshold
/// ([`crate::Sampling::threshold`]); 0 for count-based selection.
pub const SAMPLE_THRESHOLD_GLOBAL: &str = "SAMPLE_THRESHOLD";
/// Name of the read-only global holding what the attachment's flows carry
/// in their slot's `sampling` ([`crate::Sampling::word`]).
pub const SAMPLING_GLOBAL: &str = "SAMPLING";
/// Name of the read-only global holding what the attachment's flows carry
/// in [`crate::FlowKey::sampling_tag`] ([`crate::Sampling::tag`]).
pub const SAMPLING_TAG_GLOBAL: &str = "SAMPLING_TAG";

/// `flowDirection` (IPFIX IE 61) value for ingress.
pub const DIRECTION_INGRESS: u8 = 0;
/// `flowDirection` (IPFIX IE 61) value for egress.
pub const DIRECTION_EGRESS: u8 = 1;

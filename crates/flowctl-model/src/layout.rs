//! Names and versions the datapath (`bpf/flowctl.h`, `bpf/flowctl.bpf.c`)
//! and user space agree on.

/// Version of the map layout; names the pin directory (`v<N>`).
/// Must equal `FLOWCTL_LAYOUT_VERSION` in `bpf/flowctl.h`.
pub const LAYOUT_VERSION: u32 = 2;

/// Name of the per-CPU flow hash map in the object file and in bpffs.
pub const FLOWS_MAP: &str = "flowctl_flows";
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

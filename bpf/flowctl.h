/* SPDX-License-Identifier: MIT */
/*
 * Types shared by the flowctl datapath (flowctl.bpf.c) and user space.
 *
 * The Rust crate `flowctl-common` mirrors every struct here with #[repr(C)];
 * its layout test compiles this header and compares sizes and offsets.
 * Any change to a struct below MUST bump FLOWCTL_LAYOUT_VERSION: the pin
 * directory is versioned with it, so a new layout never reuses old maps.
 */
#ifndef FLOWCTL_H
#define FLOWCTL_H

#include <linux/types.h>

/* Version of the map layout below; names the pin directory (v<N>). */
#define FLOWCTL_LAYOUT_VERSION 2

/* flowDirection (IPFIX IE 61) values. */
#define FLOWCTL_DIR_INGRESS 0
#define FLOWCTL_DIR_EGRESS 1

/* Set in flow_key.mpls_label when the packet had an MPLS label stack. */
#define FLOWCTL_MPLS_PRESENT (1u << 24)

/*
 * One unidirectional flow as seen at one attachment point.
 *
 * Addresses are 16 bytes; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) in
 * network byte order. Ports are in host byte order. ICMP and ICMPv6 use
 * src_port = 0 and dst_port = type * 256 + code (the NetFlow convention).
 * Non-first fragments and protocols other than TCP/UDP/ICMP/ICMPv6 have
 * both ports 0. Every byte, padding included, is written by the datapath so
 * that equal flows hash equally.
 *
 * mpls_label is 0 without MPLS; else FLOWCTL_MPLS_PRESENT | the first 3
 * bytes of the top label stack entry (label << 4 | TC << 1 | S: IPFIX's
 * mplsTopLabelStackSection), so that a top label 0 with TC 0 and S 0 still
 * differs from no MPLS.
 */
struct flow_key {
	__u32 netns_ino;        /* inode of the network namespace of the attachment */
	__u32 ingress_ifindex;  /* skb->ingress_ifindex (0 for locally generated) */
	__u32 egress_ifindex;   /* skb->ifindex at egress, 0 at ingress */
	__u8 src_addr[16];
	__u8 dst_addr[16];
	__u16 src_port;
	__u16 dst_port;
	__u16 vlan_id;          /* outer 802.1Q/802.1ad VID, 0 if untagged */
	__u16 inner_vlan_id;    /* inner (customer) VID of QinQ, 0 if none */
	__u8 direction;         /* FLOWCTL_DIR_INGRESS or FLOWCTL_DIR_EGRESS */
	__u8 ip_version;        /* 4 or 6 */
	__u8 protocol;          /* IPv4 protocol / IPv6 upper-layer next header */
	__u8 pad;               /* always 0 */
	__u32 mpls_label;       /* top MPLS label stack entry, see above; 0 if none */
};

/*
 * Per-CPU counters of one flow. User space sums packets/octets, takes the
 * minimum first_seen_ns and maximum last_seen_ns over the CPUs that saw
 * packets (packets > 0), ORs tcp_flags, and takes min/max of the TTLs.
 */
struct flow_value {
	__u64 packets;          /* wire packets (a GSO packet counts gso_segs) */
	__u64 octets;           /* IP header + payload of every wire packet */
	__u64 first_seen_ns;    /* CLOCK_BOOTTIME of the first packet (< 1 jiffy early) */
	__u64 last_seen_ns;     /* CLOCK_BOOTTIME of the last packet (< 1 jiffy early) */
	__u16 tcp_flags;        /* OR of the 12 TCP flag bits (RFC 7125 order) */
	__u8 min_ttl;           /* IPv4 TTL / IPv6 hop limit */
	__u8 max_ttl;
	__u8 tos;               /* IPv4 TOS / IPv6 traffic class of the first packet */
	__u8 pad[3];
};

/* Per-CPU datapath counters (single-slot per-CPU array). */
struct datapath_counters {
	__u64 non_ip_packets;        /* frames that are neither IPv4 nor IPv6 */
	__u64 non_ip_octets;         /* their length from the Ethernet header on */
	__u64 malformed_packets;     /* IP packets whose IP header is truncated or bogus */
	__u64 malformed_octets;
	__u64 not_recorded_packets;  /* IP packets not recorded because the flow map was full */
	__u64 not_recorded_octets;   /* their octets, counted as in flow_value.octets */
};

/* Names of the maps in the object file; also their pin file names. */
#define FLOWCTL_FLOWS_MAP "flowctl_flows"
#define FLOWCTL_COUNTERS_MAP "flowctl_stats"

#endif /* FLOWCTL_H */

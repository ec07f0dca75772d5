/* SPDX-License-Identifier: MIT */
/*
 * Types shared by the flowctl datapath (flowctl.bpf.c) and user space.
 *
 * The Rust crate `flowctl-model` mirrors every struct here with #[repr(C)];
 * its layout test compiles this header and compares sizes and offsets.
 * Any change to a struct below MUST bump FLOWCTL_LAYOUT_VERSION: the pin
 * directory is versioned with it, so a new layout never reuses old maps.
 */
#ifndef FLOWCTL_H
#define FLOWCTL_H

#include <linux/types.h>

/* Version of the map layout below; names the pin directory (v<N>). */
#define FLOWCTL_LAYOUT_VERSION 4

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
 *
 * sampling_tag is 0 when the attachment that metered the flow meters every
 * packet, else a byte (1..255) derived from its sampling (the full sampling
 * is in flow_slot.sampling): the same interface re-attached at another rate
 * makes new flows instead of adding packets metered at the new rate to
 * flows counted at the old one (unless the two tags collide, 1 chance in
 * 255). The key stays 60 bytes: its hash and comparison are on every
 * packet's path.
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
	__u8 sampling_tag;      /* see above; 0 when every packet is metered */
	__u32 mpls_label;       /* top MPLS label stack entry, see above; 0 if none */
};

/* flow_slot.sampling: the interval in the low bits, and this bit when the
 * selection is random (else it is count-based: every Nth packet per CPU). */
#define FLOWCTL_SAMPLING_RANDOM (1u << 31)
#define FLOWCTL_SAMPLING_INTERVAL_MASK 0x01ffffffu

/* Per-CPU state of an attachment's count-based packet selection (a private
 * per-CPU array, one element). sampling is the attachment's
 * flow_slot.sampling, written by user space at load so that `flowctl
 * status` can show it; the datapath never reads it. */
struct sampler {
	__u32 count;            /* packets passed over since the last one selected */
	__u32 sampling;
};

/*
 * The flow cache is three shared maps, none of them per-CPU, so a flow takes
 * the same memory whatever the number of CPUs:
 *
 *   flowctl_flows  hash: flow_key -> index of the flow's slot
 *   flowctl_slots  array of flow_slot, memory-mapped by user space
 *   flowctl_ring   the indexes of free slots, two per element (a ring
 *                  whose positions are counted in flowctl_ringctl)
 *
 * The datapath adds to a slot with atomic instructions. A new flow takes a
 * free slot from the ring (compare-and-swap on head), fills it, then
 * publishes it in the hash. User space ends a flow by marking its slot
 * CLOSING and deleting its key from the hash; after an RCU grace period no
 * program can still hold the slot, so user space reads its final counters
 * and puts it back on the ring (it alone writes tail). A hash element
 * deleted this way may be reused at once by the kernel for another flow, so
 * the datapath checks that the slot it found carries its key before adding:
 * a packet is never counted on another flow's slot.
 */
#define FLOWCTL_SLOT_FREE 0     /* on the ring, or held by a CPU as its spare */
#define FLOWCTL_SLOT_LIVE 1     /* counting a flow published in the hash */
#define FLOWCTL_SLOT_CLOSING 2  /* its key deleted; read once no program can hold it */

/* Fields of flow_slot.meta, one 64-bit word so that every update of it is
 * a 64-bit atomic instruction: TCP flags (ORed), the TTL range
 * (compare-and-swap), the TOS of the first packet, the owner CPU + 1
 * (written with the slot), the slot's state and, while closing, the
 * flowEndReason it is closed for. */
#define FLOWCTL_META_TTL_MIN_SHIFT 16
#define FLOWCTL_META_TTL_MAX_SHIFT 24
#define FLOWCTL_META_TOS_SHIFT 32
#define FLOWCTL_META_OWNER_SHIFT 40
#define FLOWCTL_META_STATE_SHIFT 48
#define FLOWCTL_META_REASON_SHIFT 56

/* Values of meta's owner byte besides a CPU number + 1 (1..254). */
#define FLOWCTL_OWNER_NONE 0    /* nobody adds plainly: every CPU adds to the
				 * shared counters (a slot created on CPU 254
				 * or above, or being handed over) */
#define FLOWCTL_OWNER_OPEN 0xff /* the next CPU below 254 that counts into the
				 * slot takes it (compare-and-swap of meta).
				 * Added in layout 4 without a new version: a
				 * program of the release before never matches
				 * 0 or 0xff on fewer than 255 CPUs */

/*
 * One flow's counters. The CPU that created the slot owns it (its number
 * + 1 in meta's owner byte; FLOWCTL_OWNER_NONE for CPU 254 and above): it
 * adds to packets and octets with plain instructions, as a per-CPU counter
 * would (tc programs do not nest on one CPU). Every other CPU adds to
 * shared_packets and shared_octets with atomic instructions; a flow's
 * counts are the sums. A flow's packets usually stay on one CPU (RSS,
 * RPS, the sending thread), so the common case pays no locked
 * instruction. When they move (a sending thread migrated), user space
 * hands the slot over: it sets the owner to FLOWCTL_OWNER_NONE, waits
 * for an RCU grace period (after which no CPU can still be in a plain
 * add that read the old owner), and opens the slot (FLOWCTL_OWNER_OPEN)
 * for the next CPU that counts into it, which then adds plainly to
 * packets and octets. No count is moved. meta is updated with atomic
 * instructions; last_seen_ns is stored by whichever CPU metered the
 * latest packet, so with two CPUs on one flow it may be up to one jiffy
 * older than the very last packet.
 */
struct flow_slot {
	struct flow_key key;    /* the flow this slot counts */
	__u32 sampling;         /* the packet selection of the attachment that
				 * created the flow (FLOWCTL_SAMPLING_*): 0 when
				 * it meters every packet, else its interval N
				 * (1 in N), with FLOWCTL_SAMPLING_RANDOM when
				 * random */
	__u64 packets;          /* wire packets (a GSO packet counts its segments), owner CPU */
	__u64 octets;           /* IP header + payload of every wire packet, owner CPU */
	__u64 first_seen_ns;    /* CLOCK_BOOTTIME of the first packet (< 1 jiffy early) */
	__u64 last_seen_ns;     /* CLOCK_BOOTTIME of the last packet (< 1 jiffy early) */
	__u64 meta;             /* see FLOWCTL_META_*: flags, TTLs, TOS, state, reason */
	__u64 shared_packets;   /* wire packets counted by CPUs other than the owner */
	__u64 shared_octets;    /* their octets */
};

/*
 * Positions in flowctl_ring: free slot indexes are at head .. tail-1
 * (modulo mask + 1, a power of two at least the number of slots). Datapath
 * programs take from head by compare-and-swap; user space alone writes
 * tail, after the ring entries it adds.
 */
struct slot_ring {
	__u64 head;
	__u64 tail;
	__u32 mask;             /* ring positions - 1 (twice the elements); 0 until filled */
	__u32 pad;
};

/* Two entries of the ring of free slots: position p is slot[p & 1] of
 * element p >> 1 (array elements take 8 bytes at least). */
struct ring_pair {
	__u32 slot[2];
};

/* A slot a CPU took from the ring but could not use (another CPU published
 * the same flow first): it uses it for its next new flow. */
struct spare_slot {
	__u32 slot;
	__u32 held;             /* 1 when slot is valid */
};

/*
 * Each CPU's front cache of the flows it counted recently: a
 * plain array of FLOWCTL_FRONT_ENTRIES entries per possible CPU, CPU c's
 * at c * FLOWCTL_FRONT_ENTRIES, each direct-mapped by a fold of the flow
 * key. An entry names the slot its flow was counted in; the slot is used
 * only while it is live and carries the packet's key, so an entry left
 * behind by a flow that ended is harmless. A packet found there skips the
 * hash of its 60-byte key and the hash element's cache lines. Only the
 * datapath reads or writes it, each CPU its own entries (tc programs do
 * not nest on a CPU); user space only sizes it. Added in layout 4
 * without a new version: a program of the release before neither reads nor
 * writes it, and entries are only hints, checked against the slot, which
 * every release keeps the same way.
 */
#define FLOWCTL_FRONT_BITS 14
#define FLOWCTL_FRONT_ENTRIES (1u << FLOWCTL_FRONT_BITS)

struct front_entry {
	__u32 check;            /* the key fold's low half | 1; 0: empty */
	__u32 slot;             /* the slot the flow was counted in */
};

/* Per-CPU datapath counters (single-slot per-CPU array). */
struct datapath_counters {
	__u64 non_ip_packets;        /* frames that are neither IPv4 nor IPv6 */
	__u64 non_ip_octets;         /* their length from the Ethernet header on */
	__u64 malformed_packets;     /* IP packets whose IP header is truncated or bogus */
	__u64 malformed_octets;
	__u64 not_recorded_packets;  /* IP packets not recorded: no free slot (the cache is full), or lost creation races */
	__u64 not_recorded_octets;   /* their octets, counted as in flow_value.octets */
};

/* Names of the maps in the object file; also their pin file names. */
#define FLOWCTL_FLOWS_MAP "flowctl_flows"
#define FLOWCTL_SLOTS_MAP "flowctl_slots"
#define FLOWCTL_RING_MAP "flowctl_ring"
#define FLOWCTL_RINGCTL_MAP "flowctl_ringctl"
#define FLOWCTL_SPARE_MAP "flowctl_spare"
#define FLOWCTL_FRONT_MAP "flowctl_front"
#define FLOWCTL_COUNTERS_MAP "flowctl_stats"
#define FLOWCTL_SAMPLER_MAP "flowctl_sampler" /* private, never pinned */

#endif /* FLOWCTL_H */

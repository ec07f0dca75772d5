// SPDX-License-Identifier: MIT
/*
 * flowctl datapath: a tc classifier that meters every packet into a flow
 * cache shared by all CPUs (its layout: flowctl.h). It never drops,
 * redirects or modifies a packet: every path returns TC_ACT_UNSPEC so later
 * tc/tcx programs still run.
 *
 * Parsing: Ethernet, up to two 802.1Q/802.1ad tags (plus the offloaded tag in
 * skb metadata), an MPLS label stack of up to 4 entries, IPv4 with options,
 * IPv6 with extension headers, TCP, UDP, ICMP, ICMPv6; other IP protocols and
 * non-first fragments count with ports 0.
 * Headers are read straight from the skb's linear area when they are there
 * (the common case), else with bpf_skb_load_bytes (non-linear skbs). GSO
 * skbs count every segment with the headers it repeats, inner headers of a
 * tunnel included (encap.h).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "flowctl.h"
#include "encap.h"

/* The ring's two entries per element are read as one word (take_slot). */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "flowctl's datapath assumes a little-endian CPU");

#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define ETH_P_MPLS_UC_ 0x8847
#define ETH_P_MPLS_MC_ 0x8848
#define ETH_HDR_LEN 14
#define MAX_VLAN_TAGS 2
/* Deepest MPLS label stack walked; a deeper one counts as non-IP. */
#define MAX_MPLS_LABELS 4
#define MPLS_LSE_LEN 4
#define MPLS_BOTTOM_OF_STACK 0x01 /* in the third byte of a label stack entry */
#define MAX_IPV6_EXT_HEADERS 8
#define IPV6_HDR_LEN 40

#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60
#define NEXTHDR_MOBILITY 135
#define IPPROTO_ICMPV6_ 58

/* Default size; user space sets the real one (--max-flows) at load time. */
#define DEFAULT_MAX_FLOWS 65536


/* Inode of the network namespace this program instance is attached in. */
volatile const __u32 NETNS_INO = 0;

/*
 * 1 when this program instance's interface carries bare IP packets: L3
 * devices (tun, WireGuard, ipip, sit, ip6tnl, point-to-point gre, ppp) have
 * no link-layer header, so the packet starts at the IP header and
 * skb->protocol gives the IP version. Set at load time from the device's
 * ARPHRD type.
 */
volatile const __u8 RAW_IP = 0;

/*
 * Packet selection (sampling) of this program instance, set at load time.
 * SAMPLE_INTERVAL 0 or 1 meters every packet: the verifier then knows the
 * test below is false and removes the selection code (a load of a frozen
 * constant and no branch remain). Else one packet in SAMPLE_INTERVAL is
 * metered: at random when SAMPLE_THRESHOLD is not 0 (a packet is selected
 * when bpf_get_prandom_u32() < SAMPLE_THRESHOLD = 2^32 / N, no division),
 * else every SAMPLE_INTERVAL-th packet on each CPU (flowctl_sampler).
 * SAMPLING is what the flows of this instance carry in flow_slot.sampling,
 * SAMPLING_TAG in flow_key.sampling_tag.
 */
volatile const __u32 SAMPLE_INTERVAL = 0;
volatile const __u32 SAMPLE_THRESHOLD = 0;
volatile const __u32 SAMPLING = 0;
volatile const __u8 SAMPLING_TAG = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DEFAULT_MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, __u32);
} flowctl_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DEFAULT_MAX_FLOWS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct flow_slot);
} flowctl_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DEFAULT_MAX_FLOWS / 2);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct ring_pair);
} flowctl_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct slot_ring);
} flowctl_ringctl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct spare_slot);
} flowctl_spare SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct datapath_counters);
} flowctl_stats SEC(".maps");

/* Private to each loaded object (so to each attachment), never pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sampler);
} flowctl_sampler SEC(".maps");

/* FLOWCTL_FRONT_ENTRIES per possible CPU; user space sets the real size. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * FLOWCTL_FRONT_ENTRIES);
	__type(key, __u32);
	__type(value, struct front_entry);
} flowctl_front SEC(".maps");

/* Header buffers, aligned so copies into them use word stores. */
#define HDR_BUF __attribute__((aligned(8)))

/* What the parser learnt about one packet besides its key. */
struct packet_meta {
	__u64 segments;    /* wire packets this skb stands for */
	__u64 octets;      /* L3 octets of those wire packets */
	__u32 ip_len;      /* IP total length from the header; 0: unknown */
	__u32 l4_off;      /* offset of the transport (upper-layer) header */
	__u32 l4_len;      /* length of the transport header; 0: none parsed */
	__u16 tcp_flags;
	__u8 ttl;
	__u8 tos;
};

/*
 * Working memory of one packet: the key, what the parser learnt, and the
 * value of a new flow. It lives in a per-CPU array rather than on the
 * stack: the verifier of kernels before 6.x, for a loader without
 * CAP_PERFMON (flowctl needs only CAP_BPF and CAP_NET_ADMIN), takes a narrow
 * store of a known scalar at an 8-byte aligned stack offset for a spill and
 * refuses any later narrow store into the same 8 bytes ("attempt to
 * corrupt spilled pointer on stack"); struct fields are written that way.
 * Map memory has no such rule. tc programs do not nest on a CPU, so one
 * slot per CPU is enough.
 */
struct scratch {
	struct flow_key key;
	__u64 last_fold;        /* key_fold() of the flow this CPU counted last */
	struct packet_meta m;
	/* Header copies, one area per parsing step. */
	__u8 eth[16] HDR_BUF;
	__u8 tag[8] HDR_BUF;
	__u8 ip[IPV6_HDR_LEN] HDR_BUF;
	__u8 ext[8] HDR_BUF;
	__u8 l4[16] HDR_BUF;
	__u8 inner[24] HDR_BUF; /* tunnel headers (encap.h) */
	/* Map keys whose address is passed to helpers: kept here, not on the
	 * stack, for the same reason as the buffers. zero is never written. */
	__u32 zero;
	__u32 slot;
	__u32 pair;
	__u32 cpu1;             /* this CPU's number + 1, once known (0 before) */
	__u32 last_slot;        /* the slot of the flow this CPU counted last (recent_slot) */
	__u32 hashed;           /* the slot index hashed_slot() read from the hash */
	__u32 front;            /* the index of the key's front cache entry (front_entry) */
	/* This CPU's last clock reading and the jiffy it was taken in (now_ns). */
	__u64 jiffies;
	__u64 boot_ns;
};
/* same_key() reads keys 8 bytes at a time: both start their map value. */
_Static_assert(__builtin_offsetof(struct scratch, key) == 0, "the scratch key starts the value");
_Static_assert(__builtin_offsetof(struct flow_slot, key) == 0, "the slot key starts the value");
/* clear_key(), same_key() and key_fold() take the key as 7 words and mpls_label. */
_Static_assert(__builtin_offsetof(struct flow_key, mpls_label) == 56 && sizeof(struct flow_key) == 60,
	       "the key is 7 words and mpls_label");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} flowctl_scratch SEC(".maps");

/*
 * CLOCK_BOOTTIME, read at most once per jiffy per CPU (the cache is in the
 * per-CPU scratch): the stamp of a packet is the boot time of the first
 * packet this CPU metered in the same jiffy, so it lags by less than one
 * jiffy (1/HZ). Reading the clock costs more than the rest of the hit path;
 * the jiffies counter is inlined by the verifier.
 */
static __always_inline __u64 now_ns(struct scratch *s)
{
	__u64 j = bpf_jiffies64();
	if (s->jiffies != j) {
		s->jiffies = j;
		s->boot_ns = bpf_ktime_get_boot_ns();
	}
	return s->boot_ns;
}


/* Offsets of the headers of an untagged frame (IPv4 without options, IPv6
 * without extension headers): the ones read straight from the packet. */
#define ETH_OFF 0
#define L3_OFF ETH_HDR_LEN
#define L4_OFF_IPV4 (L3_OFF + 20)
#define L4_OFF_IPV6 (L3_OFF + IPV6_HDR_LEN)
/* The same on a bare-IP interface, where the IP header is at 0. */
#define RAW_L4_OFF_IPV4 20
#define RAW_L4_OFF_IPV6 IPV6_HDR_LEN

/*
 * Copies len (a constant) bytes from the packet at p into buf (a HDR_BUF)
 * with 8-byte loads and stores, then 4, 2 and 1 for the rest. Typed words,
 * not memcpy: clang lowers an eBPF memcpy between pointers whose alignment
 * it cannot see (buf comes through a parameter) into byte loads and stores,
 * two instructions a byte. The loads from the packet may be unaligned: the
 * JITs of the architectures flowctl builds for (x86-64, arm64) load
 * unaligned words, and where they cannot the verifier refuses the program
 * rather than run it.
 */
static __always_inline void copy_words(void *buf, const void *p, __u32 len)
{
	__u32 i = 0;
#pragma unroll
	for (int w = 0; w < IPV6_HDR_LEN / 8; w++) {
		if (i + 8 > len)
			break;
		*(__u64 *)(buf + i) = *(const __u64 *)(p + i);
		i += 8;
	}
	if (len - i >= 4) {
		*(__u32 *)(buf + i) = *(const __u32 *)(p + i);
		i += 4;
	}
	if (len - i >= 2) {
		*(__u16 *)(buf + i) = *(const __u16 *)(p + i);
		i += 2;
	}
	if (len - i >= 1)
		*(__u8 *)(buf + i) = *(const __u8 *)(p + i);
}

/*
 * Copies len bytes at the constant offset k from the skb's linear area into
 * buf (a HDR_BUF); returns 0, or -1 when they are not all in the linear area.
 *
 * The offset must be a constant: the verifier accepts packet pointer
 * arithmetic with a variable offset only from a loader with CAP_PERFMON, and
 * flowctl loads with CAP_BPF and CAP_NET_ADMIN alone.
 */
static __always_inline int copy_direct(struct __sk_buff *skb, __u32 k, void *buf, __u32 len)
{
	void *p = (void *)(long)skb->data + k;
	/* libbpf's barrier_var hides how p was computed, so the compiler cannot
	 * fold the constant offsets of several calls into one variable one. */
	barrier_var(p);
	if (p + len > (void *)(long)skb->data_end)
		return -1;
	copy_words(buf, p, len);
	return 0;
}

/*
 * Copies len bytes at offset off into buf (a HDR_BUF); returns < 0 when the
 * packet is shorter. The headers of untagged frames are copied straight from
 * the linear area when they are there (almost every packet); anything else,
 * and headers in paged data (non-linear skbs), go through
 * bpf_skb_load_bytes, which reads both.
 */
static __always_inline long load(struct __sk_buff *skb, __u32 off, void *buf, __u32 len)
{
	if ((off == ETH_OFF && copy_direct(skb, ETH_OFF, buf, len) == 0) ||
	    (off == L3_OFF && copy_direct(skb, L3_OFF, buf, len) == 0) ||
	    (off == L4_OFF_IPV4 && copy_direct(skb, L4_OFF_IPV4, buf, len) == 0) ||
	    (off == L4_OFF_IPV6 && copy_direct(skb, L4_OFF_IPV6, buf, len) == 0) ||
	    (off == RAW_L4_OFF_IPV4 && copy_direct(skb, RAW_L4_OFF_IPV4, buf, len) == 0) ||
	    (off == RAW_L4_OFF_IPV6 && copy_direct(skb, RAW_L4_OFF_IPV6, buf, len) == 0))
		return 0;
	return bpf_skb_load_bytes(skb, off, buf, len);
}

/* The big-endian 16-bit field at p, an even offset into a header buffer:
 * one load and a byte swap (two byte loads, a shift and an or otherwise). */
static __always_inline __u16 be16_at(const __u8 *p)
{
	return bpf_ntohs(*(const __u16 *)p);
}

static __always_inline struct datapath_counters *counters(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&flowctl_stats, &zero);
}

static __always_inline void count_non_ip(struct __sk_buff *skb)
{
	struct datapath_counters *c = counters();
	if (c) {
		c->non_ip_packets += 1;
		c->non_ip_octets += skb->len;
	}
}

static __always_inline void count_malformed(struct __sk_buff *skb)
{
	struct datapath_counters *c = counters();
	if (c) {
		c->malformed_packets += 1;
		c->malformed_octets += skb->len;
	}
}

static __always_inline void count_not_recorded(const struct packet_meta *m)
{
	struct datapath_counters *c = counters();
	if (c) {
		c->not_recorded_packets += m->segments;
		c->not_recorded_octets += m->octets;
	}
}

#define META_TTL_MASK ((__u64)0xffff << FLOWCTL_META_TTL_MIN_SHIFT)

/* Lowers the min or raises the max TTL of a slot (rarely changes). */
static __always_inline void note_ttl(struct flow_slot *v, __u8 ttl)
{
#pragma unroll
	for (int i = 0; i < 2; i++) {
		__u64 old = v->meta;
		__u8 min = old >> FLOWCTL_META_TTL_MIN_SHIFT, max = old >> FLOWCTL_META_TTL_MAX_SHIFT;
		if (ttl >= min && ttl <= max)
			return;
		__u64 range = ((__u64)(ttl < min ? ttl : min) << FLOWCTL_META_TTL_MIN_SHIFT) |
			      ((__u64)(ttl > max ? ttl : max) << FLOWCTL_META_TTL_MAX_SHIFT);
		if (__sync_val_compare_and_swap(&v->meta, old, (old & ~META_TTL_MASK) | range) == old)
			return;
	}
}

/* Adds one packet to a flow's slot; other CPUs may add at the same time.
 * cpu1 is this CPU's number + 1: the slot's owner adds without atomics. */
static __always_inline void add_packet(struct flow_slot *v, const struct packet_meta *m, __u64 now, __u32 cpu1)
{
	__u64 meta = v->meta;
	__u32 owner = (meta >> FLOWCTL_META_OWNER_SHIFT) & 0xff;
	if (owner == FLOWCTL_OWNER_OPEN && cpu1 < FLOWCTL_OWNER_OPEN) {
		/* An open slot (handed over by user space): this CPU takes it. */
		__u64 mine = (meta & ~((__u64)0xff << FLOWCTL_META_OWNER_SHIFT)) |
			     ((__u64)cpu1 << FLOWCTL_META_OWNER_SHIFT);
		if (__sync_val_compare_and_swap(&v->meta, meta, mine) == meta)
			owner = cpu1;
	}
	/* CPU 254 and above (cpu1 >= FLOWCTL_OWNER_OPEN) never own a slot. */
	if (owner == cpu1 && cpu1 < FLOWCTL_OWNER_OPEN) {
		v->packets += m->segments;
		v->octets += m->octets;
	} else {
		__sync_fetch_and_add(&v->shared_packets, m->segments);
		__sync_fetch_and_add(&v->shared_octets, m->octets);
	}
	if (v->last_seen_ns != now)
		v->last_seen_ns = now;
	if ((__u64)m->tcp_flags & ~v->meta)
		__sync_fetch_and_or(&v->meta, (__u64)m->tcp_flags);
	note_ttl(v, m->ttl);
}

/* Whether slot key a is flow key b (60 bytes, compared as words). */
static __always_inline int same_key(const struct flow_key *a, const struct flow_key *b)
{
	/* Both keys start a map value (8-byte aligned): 7 words of 8 bytes,
	 * then the last 4 bytes (about 2 ns less than 15 words of 4). */
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	__u64 diff = 0;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(struct flow_key) / 8); i++)
		diff |= x[i] ^ y[i];
	diff |= a->mpls_label ^ b->mpls_label;
	return diff == 0;
}

/*
 * The slot the hash gives for s->key, if it still counts that key; the
 * index read from the hash entry, once, is left in s->hashed. The key is
 * checked because an entry deleted by user space can be reused by the
 * kernel for another flow while this program holds it.
 */
static __always_inline struct flow_slot *hashed_slot(struct scratch *s)
{
	__u32 *index = bpf_map_lookup_elem(&flowctl_flows, &s->key);
	if (!index)
		return 0;
	s->hashed = *index;
	struct flow_slot *v = bpf_map_lookup_elem(&flowctl_slots, &s->hashed);
	if (v && same_key(&v->key, &s->key))
		return v;
	return 0;
}

/*
 * An opaque zero computed from x: adding it to a pointer makes the loads
 * through the pointer depend on the load of x, which orders them after it on
 * every CPU (an address dependency), where two plain loads may be reordered
 * (arm64). The compiler cannot see that it is zero; the verifier can.
 */
static __always_inline __u64 zero_after(__u64 x)
{
	asm volatile("%[x] &= 0" : [x] "+r"(x));
	return x;
}

/*
 * The key folded into one word: its 7 words and its last 4 bytes, each
 * shifted by its position (so that words swapped between two keys, such as
 * the addresses of the two directions of a flow, do not cancel out) and
 * XORed. Only a filter: equal folds still have their keys compared.
 */
static __always_inline __u64 key_fold(const struct flow_key *key)
{
	const __u64 *w = (const __u64 *)key;
	return (w[0] ^ (w[1] << 1)) ^ ((w[2] << 2) ^ (w[3] << 3)) ^ ((w[4] << 4) ^ (w[5] << 5)) ^
	       ((w[6] << 6) ^ ((__u64)key->mpls_label << 7));
}

/*
 * The slot at *index, if it still counts the flow of the packet in s. A
 * slot counts a flow while its state is LIVE: user space marks it CLOSING
 * before deleting its key and waits for a grace period before freeing it
 * (so a program that saw LIVE has finished adding), and a slot taken again
 * for a flow becomes LIVE only once its new key is complete and published.
 * The key is read after the state (zero_after), so the key seen is the one
 * that was LIVE. A slot remembered by index (recent_slot, front_slot) may
 * since have been freed or taken by another flow: then it is not LIVE, or
 * its key differs, and the packet goes to the hash.
 */
static __always_inline struct flow_slot *live_slot(struct scratch *s, const __u32 *index)
{
	struct flow_slot *v = bpf_map_lookup_elem(&flowctl_slots, index);
	if (!v)
		return 0;
	__u64 meta = *(volatile __u64 *)&v->meta;
	if (((meta >> FLOWCTL_META_STATE_SHIFT) & 0xff) != FLOWCTL_SLOT_LIVE)
		return 0;
	v = (void *)v + zero_after(meta);
	return same_key(&v->key, &s->key) ? v : 0;
}

/*
 * The slot of the flow this CPU counted last, if the packet in s is of the
 * same flow and the slot still counts it (live_slot): a train of packets of
 * one flow (a bulk transfer, a GSO burst) skips even the front cache. A
 * packet of another flow is told by the fold of its key (fold), against
 * the fold of the last one, kept in the scratch: it costs a few
 * instructions, and no slot is read (a slot read then waits for memory as
 * often as not).
 */
static __always_inline struct flow_slot *recent_slot(struct scratch *s, __u64 fold)
{
	if (fold != s->last_fold)
		return 0;
	return live_slot(s, &s->last_slot);
}

/*
 * This CPU's front cache entry for a fold (flowctl.h), its index left in
 * s->front: the top FLOWCTL_FRONT_BITS of the fold times 2^64 / the golden
 * ratio (every bit of the fold moves them), in this CPU's part of the
 * array. 0 if the array has no such entry (it was sized for fewer CPUs).
 */
static __always_inline struct front_entry *front_entry(struct scratch *s, __u64 fold)
{
	__u32 bucket = (fold * 0x9e3779b97f4a7c15ull) >> (64 - FLOWCTL_FRONT_BITS);
	s->front = ((s->cpu1 - 1) << FLOWCTL_FRONT_BITS) | bucket;
	return bpf_map_lookup_elem(&flowctl_front, &s->front);
}

/* What a front entry holds to name a fold: never 0, the empty entry's. */
static __always_inline __u32 front_check(__u64 fold)
{
	return (__u32)fold | 1;
}

/*
 * The slot the front entry e names, if e was written for this fold and the
 * slot still counts the packet's flow (live_slot). With 10,000 flows in
 * turn, a packet found here skips the hash of its 60-byte key and the hash
 * element's two cache lines: 6 points of throughput (docs/performance.md).
 */
static __always_inline struct flow_slot *front_slot(struct scratch *s, struct front_entry *e, __u64 fold)
{
	if (!e || e->check != front_check(fold))
		return 0;
	return live_slot(s, &e->slot);
}

/*
 * Remembers that this CPU counted the flow of fold in slot: as its last
 * flow (recent_slot) and in its front entry, at s->front (front_entry).
 * The entry is looked up again rather than passed along: where front_entry
 * found none, the verifier of 6.1 for a loader without CAP_PERFMON still
 * follows the branch that uses it, speculatively, and refuses the program.
 */
static __always_inline void remember(struct scratch *s, __u32 slot, __u64 fold)
{
	s->last_slot = slot;
	s->last_fold = fold;
	struct front_entry *e = bpf_map_lookup_elem(&flowctl_front, &s->front);
	if (e) {
		e->slot = slot;
		e->check = front_check(fold);
	}
}

/*
 * Tries at the ring's head before a packet is given up as not recorded: a
 * compare-and-swap fails only when another CPU took a slot in between, so
 * each failure is another CPU's success; a few are normal when many CPUs
 * see new flows at once (a SYN flood, the flows of a cache just flushed).
 */
#define RING_TRIES 16

/*
 * A free slot for a new flow, into s->slot: this CPU's spare if it has
 * one, else the ring's head, claimed by compare-and-swap (RING_TRIES tries
 * under contention). The entry is read after the claim: the swap orders it
 * after the read of tail that showed it was filled. Returns 0 when none is
 * free.
 */
static __always_inline int take_slot(struct scratch *s)
{
	struct spare_slot *spare = bpf_map_lookup_elem(&flowctl_spare, &s->zero);
	if (spare && spare->held) {
		spare->held = 0;
		s->slot = spare->slot;
		return 1;
	}
	struct slot_ring *ring = bpf_map_lookup_elem(&flowctl_ringctl, &s->zero);
	if (!ring)
		return 0;
#pragma unroll
	for (int i = 0; i < RING_TRIES; i++) {
		__u64 head = *(volatile __u64 *)&ring->head;
		__u64 tail = *(volatile __u64 *)&ring->tail;
		if (head == tail)
			return 0;
		if (__sync_val_compare_and_swap(&ring->head, head, head + 1) != head)
			continue;
		__u32 pos = (__u32)head & ring->mask;
		s->pair = pos >> 1;
		struct ring_pair *entry = bpf_map_lookup_elem(&flowctl_ring, &s->pair);
		if (!entry)
			return 0;
		/* Both entries as one word, the one wanted shifted out: choosing
		 * between the two fields by pointer would be a variable offset,
		 * which the verifier explores speculatively (without
		 * CAP_PERFMON) until the program is too large. Little-endian:
		 * slot[0] is the low half. */
		__u64 both = *(__u64 *)entry->slot;
		s->slot = (__u32)(both >> ((pos & 1) * 32));
		return 1;
	}
	return 0;
}

/* Keeps s->slot, which this CPU could not use, for its next new flow. */
static __always_inline void keep_spare(struct scratch *s)
{
	struct spare_slot *spare = bpf_map_lookup_elem(&flowctl_spare, &s->zero);
	if (spare) {
		spare->slot = s->slot;
		spare->held = 1;
	}
}

/*
 * Tries to publish a new flow: each failed one found the key published by
 * another CPU and, by the time it looked it up, deleted again by user space
 * (which may end flows as fast as they come).
 */
#define PUBLISH_TRIES 4

/*
 * Creates the flow s->key in a free slot, published in the hash, and counts
 * the packet in it. Two CPUs may create the same flow at once: the one
 * whose insert fails adds to the other's slot and keeps its own as its
 * spare; if that flow was ended in between (user space deleted its key),
 * it tries to publish its own slot again. Returns 0 when the packet could
 * not be counted: no free slot, or PUBLISH_TRIES races lost.
 */
static __always_inline int create_flow(struct scratch *s, __u64 now, __u64 fold)
{
	struct flow_key *key = &s->key;
	struct packet_meta *m = &s->m;
	if (!take_slot(s))
		return 0;
	struct flow_slot *v = bpf_map_lookup_elem(&flowctl_slots, &s->slot);
	if (!v)
		return 0;
	__builtin_memcpy(&v->key, key, sizeof(*key));
	v->sampling = SAMPLING;
	v->packets = m->segments;
	v->octets = m->octets;
	v->first_seen_ns = now;
	v->last_seen_ns = now;
	v->shared_packets = 0;
	v->shared_octets = 0;
	__u64 owner = s->cpu1 < FLOWCTL_OWNER_OPEN ? s->cpu1 : FLOWCTL_OWNER_NONE;
	v->meta = (owner << FLOWCTL_META_OWNER_SHIFT) | (__u64)m->tcp_flags | ((__u64)m->ttl << FLOWCTL_META_TTL_MIN_SHIFT) |
		  ((__u64)m->ttl << FLOWCTL_META_TTL_MAX_SHIFT) | ((__u64)m->tos << FLOWCTL_META_TOS_SHIFT);
#pragma unroll
	for (int i = 0; i < PUBLISH_TRIES; i++) {
		/* The slot is complete before the hash publishes it, and user
		 * space sees it live only once it is published: a live slot's
		 * key always leads to it. A fetching atomic is fully ordered:
		 * the state comes after every field. */
		if (bpf_map_update_elem(&flowctl_flows, key, &s->slot, BPF_NOEXIST) == 0) {
			__u64 before = __sync_fetch_and_or(&v->meta, (__u64)FLOWCTL_SLOT_LIVE << FLOWCTL_META_STATE_SHIFT);
			barrier_var(before);
			remember(s, s->slot, fold);
			return 1;
		}
		struct flow_slot *theirs = hashed_slot(s);
		if (theirs) {
			keep_spare(s);
			add_packet(theirs, m, now, s->cpu1);
			return 1;
		}
	}
	keep_spare(s);
	return 0;
}

/*
 * Counts the packet in s->m on the flow s->key: into the slot this CPU
 * counted its last packet into, or the one its front cache names, or the
 * one the hash gives, or a new one (create_flow). With no free slot the
 * packet is counted as not recorded.
 */
static __always_inline void record(struct scratch *s)
{
	struct flow_key *key = &s->key;
	struct packet_meta *m = &s->m;
	__u64 now = now_ns(s);
	/* The scratch map is per-CPU: its copy of the CPU number stays true. */
	if (!s->cpu1)
		s->cpu1 = bpf_get_smp_processor_id() + 1;
	__u64 fold = key_fold(key);
	struct flow_slot *v = recent_slot(s, fold);
	if (v) {
		add_packet(v, m, now, s->cpu1);
		return;
	}
	struct front_entry *e = front_entry(s, fold);
	v = front_slot(s, e, fold);
	if (v) {
		s->last_slot = e->slot;
		s->last_fold = fold;
		add_packet(v, m, now, s->cpu1);
		return;
	}
	v = hashed_slot(s);
	if (v) {
		remember(s, s->hashed, fold);
		add_packet(v, m, now, s->cpu1);
		return;
	}
	if (!create_flow(s, now, fold))
		count_not_recorded(m);
}

/*
 * The wire packets and octets of a GSO skb: each of its segments repeats the
 * headers from the IP header to the end of the transport header, or, in a
 * tunnel (encap.h), to the end of the inner transport header (hdr_end is the
 * offset of the payload). The kernel leaves gso_segs 0 on skbs from
 * untrusted sources (SKB_GSO_DODGY: virtio-net, tap, packet sockets); their
 * segments are then counted as the kernel's segmentation will make them
 * (tcp_gso_segment, __udp_gso_segment): the payload divided by gso_size,
 * rounded up.
 */
static __always_inline void gso_wire_size(struct __sk_buff *skb, struct scratch *s, __u32 l3_off,
					  __u32 skb_l3_len, __u32 gso_size)
{
	struct packet_meta *m = &s->m;
	__u32 hdr_end = tunnel_payload(skb, &s->key, m->l4_off, s->inner);
	if (hdr_end == 0)
		hdr_end = m->l4_off + m->l4_len;
	__u64 segs = skb->gso_segs;

	if (segs == 0) {
		__u32 payload = skb->len > hdr_end ? skb->len - hdr_end : 0;
		segs = ((__u64)payload + gso_size - 1) / gso_size;
	}
	if (segs > 1) {
		m->segments = segs;
		m->octets = (__u64)skb_l3_len + (segs - 1) * (hdr_end - l3_off);
		return;
	}
	m->segments = 1;
	m->octets = m->ip_len && m->ip_len < skb_l3_len ? m->ip_len : skb_l3_len;
}

/* Octets of the wire packets a (possibly GSO) skb turns into. */
static __always_inline void wire_size(struct __sk_buff *skb, struct scratch *s, __u32 l3_off)
{
	struct packet_meta *m = &s->m;
	__u32 skb_l3_len = skb->len > l3_off ? skb->len - l3_off : 0;
	/* gso_size != 0 is what makes an skb GSO (skb_is_gso). */
	__u32 gso_size = skb->gso_size;

	if (gso_size) {
		gso_wire_size(skb, s, l3_off, skb_l3_len, gso_size);
		return;
	}
	m->segments = 1;
	/* The IP length excludes Ethernet padding; never exceed what is there. */
	m->octets = m->ip_len && m->ip_len < skb_l3_len ? m->ip_len : skb_l3_len;
}

/* Parses the transport header; returns its length for GSO accounting. */
static __always_inline __u32 parse_l4(struct __sk_buff *skb, __u32 off, struct scratch *s)
{
	struct flow_key *key = &s->key;
	struct packet_meta *m = &s->m;
	__u8 *hdr = s->l4;

	switch (key->protocol) {
	case IPPROTO_TCP:
		if (load(skb, off, hdr, 14) < 0)
			return 0;
		key->src_port = be16_at(&hdr[0]);
		key->dst_port = be16_at(&hdr[2]);
		m->tcp_flags = be16_at(&hdr[12]) & 0x0fff;
		return (__u32)(hdr[12] >> 4) * 4;
	case IPPROTO_UDP:
		if (load(skb, off, hdr, 4) < 0)
			return 0;
		key->src_port = be16_at(&hdr[0]);
		key->dst_port = be16_at(&hdr[2]);
		return 8;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6_:
		if (load(skb, off, hdr, 2) < 0)
			return 0;
		key->dst_port = be16_at(&hdr[0]);
		return 8;
	default:
		return 0;
	}
}

/* IPv4 at l3_off; returns 0 when the header is unusable. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, __u32 l3_off, struct scratch *s)
{
	struct flow_key *key = &s->key;
	struct packet_meta *m = &s->m;
	__u8 *ip = s->ip;

	if (load(skb, l3_off, ip, 20) < 0)
		return 0;
	__u32 ihl = (ip[0] & 0x0f) * 4;
	if ((ip[0] >> 4) != 4 || ihl < 20)
		return 0;

	key->ip_version = 4;
	key->protocol = ip[9];
	/* IPv4-mapped IPv6 (::ffff:a.b.c.d); word stores (the key fields are
	 * 4-byte aligned, ip is a HDR_BUF). */
	*(__u16 *)&key->src_addr[10] = 0xffff;
	*(__u32 *)&key->src_addr[12] = *(const __u32 *)&ip[12];
	*(__u16 *)&key->dst_addr[10] = 0xffff;
	*(__u32 *)&key->dst_addr[12] = *(const __u32 *)&ip[16];
	m->tos = ip[1];
	m->ttl = ip[8];

	m->ip_len = be16_at(&ip[2]);
	m->l4_off = l3_off + ihl;
	__u16 frag_offset = be16_at(&ip[6]) & 0x1fff;
	if (frag_offset == 0)
		m->l4_len = parse_l4(skb, m->l4_off, s);
	return 1;
}

/* Copies an IPv6 address from a header buffer into a key field, 4 bytes at
 * a time (both are 4-byte aligned; memcpy would copy bytes). */
static __always_inline void copy_addr(__u8 *dst, const __u8 *src)
{
#pragma unroll
	for (int i = 0; i < 16; i += 4)
		*(__u32 *)&dst[i] = *(const __u32 *)&src[i];
}

/* IPv6 at l3_off, walking extension headers; returns 0 when unusable. */
static __always_inline int parse_ipv6(struct __sk_buff *skb, __u32 l3_off, struct scratch *s)
{
	struct flow_key *key = &s->key;
	struct packet_meta *m = &s->m;
	__u8 *ip = s->ip;

	if (load(skb, l3_off, ip, IPV6_HDR_LEN) < 0)
		return 0;
	if ((ip[0] >> 4) != 6)
		return 0;

	key->ip_version = 6;
	copy_addr(key->src_addr, &ip[8]);
	copy_addr(key->dst_addr, &ip[24]);
	m->tos = (__u8)((ip[0] << 4) | (ip[1] >> 4));
	m->ttl = ip[7];

	__u32 payload_len = be16_at(&ip[4]);
	m->ip_len = payload_len ? IPV6_HDR_LEN + payload_len : 0;
	__u8 next = ip[6];
	__u32 off = l3_off + IPV6_HDR_LEN;
	int first_fragment = 1;

#pragma unroll
	for (int i = 0; i < MAX_IPV6_EXT_HEADERS; i++) {
		__u8 *ext = s->ext;
		if (next != NEXTHDR_HOP && next != NEXTHDR_ROUTING && next != NEXTHDR_DEST &&
		    next != NEXTHDR_FRAGMENT && next != NEXTHDR_AUTH && next != NEXTHDR_MOBILITY)
			break;
		if (load(skb, off, ext, 4) < 0) {
			first_fragment = 0; /* truncated chain: no transport header */
			break;
		}
		if (next == NEXTHDR_FRAGMENT) {
			if ((be16_at(&ext[2]) & 0xfff8) != 0) {
				/* A non-first fragment carries payload, not headers: the
				 * fragment header's next header is the flow's protocol. */
				first_fragment = 0;
				next = ext[0];
				break;
			}
			off += 8;
		} else if (next == NEXTHDR_AUTH) {
			off += ((__u32)ext[1] + 2) * 4;
		} else {
			off += ((__u32)ext[1] + 1) * 8;
		}
		next = ext[0];
	}

	key->protocol = next;
	m->l4_off = off;
	if (first_fragment)
		m->l4_len = parse_l4(skb, off, s);
	return 1;
}

/*
 * An MPLS label stack (unicast or multicast) at *off: up to MAX_MPLS_LABELS
 * entries, the top one into the key. Returns the ethertype of what follows
 * the bottom-of-stack entry, told by its first nibble (4: IPv4, 6: IPv6),
 * and moves *off to it; 0 (non-IP) for a deeper or truncated stack or any
 * other payload (pseudowires, with or without a control word).
 */
static __always_inline __u16 parse_mpls(struct __sk_buff *skb, struct scratch *s, __u32 *off)
{
	__u8 *lse = s->tag;
	__u32 at = *off;

#pragma unroll
	for (int i = 0; i < MAX_MPLS_LABELS; i++) {
		/* The entry and the byte after it: the first nibble of the
		 * payload when this is the bottom of the stack. */
		if (bpf_skb_load_bytes(skb, at, lse, MPLS_LSE_LEN + 1) < 0)
			return 0;
		if (i == 0)
			s->key.mpls_label = FLOWCTL_MPLS_PRESENT | ((__u32)lse[0] << 16) |
					    ((__u32)lse[1] << 8) | lse[2];
		at += MPLS_LSE_LEN;
		if (lse[2] & MPLS_BOTTOM_OF_STACK) {
			*off = at;
			if ((lse[MPLS_LSE_LEN] >> 4) == 4)
				return ETH_P_IP;
			if ((lse[MPLS_LSE_LEN] >> 4) == 6)
				return ETH_P_IPV6;
			return 0;
		}
	}
	return 0;
}

/* Zeroes the scratch key: 8 bytes a store (it starts the map value, so it
 * is 8-byte aligned; memset would store 4 bytes at a time, the alignment of
 * struct flow_key). */
static __always_inline void clear_key(struct flow_key *key)
{
	__u64 *words = (__u64 *)key;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(*key) / 8); i++)
		words[i] = 0;
	key->mpls_label = 0;
}

/*
 * Whether this packet is passed over by the attachment's packet selection
 * (only called when SAMPLE_INTERVAL > 1). Nothing else is read or written
 * for a packet passed over: it costs a random number, or a per-CPU counter.
 */
static __always_inline int passed_over(void)
{
	if (SAMPLE_THRESHOLD)
		return bpf_get_prandom_u32() >= SAMPLE_THRESHOLD;
	__u32 zero = 0;
	struct sampler *c = bpf_map_lookup_elem(&flowctl_sampler, &zero);
	if (!c)
		return 0;
	if (c->count + 1 < SAMPLE_INTERVAL) {
		c->count += 1;
		return 1;
	}
	c->count = 0;
	return 0;
}

static __always_inline int meter(struct __sk_buff *skb, __u8 direction)
{
	if (SAMPLE_INTERVAL > 1 && passed_over())
		return TC_ACT_UNSPEC;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&flowctl_scratch, &zero);
	if (!s)
		return TC_ACT_UNSPEC;
	struct flow_key *key = &s->key;
	struct packet_meta *m = &s->m;
	clear_key(key);
	/* Every other field of m is set on every path that records. */
	m->tcp_flags = 0;
	__u16 proto;
	__u32 off = 0;
	__u16 vlan = 0, inner_vlan = 0;

	if (RAW_IP) {
		proto = bpf_ntohs(skb->protocol);
	} else {
		/* Ethernet, with up to two 802.1Q/802.1ad tags (plus the
		 * offloaded tag in skb metadata). */
		__u8 *eth = s->eth;
		if (load(skb, 0, eth, ETH_HDR_LEN) < 0) {
			count_non_ip(skb);
			return TC_ACT_UNSPEC;
		}
		proto = be16_at(&eth[12]);
		off = ETH_HDR_LEN;
		int tags = 0;

		if (skb->vlan_present) {
			vlan = skb->vlan_tci & 0x0fff;
			tags = 1;
		}
#pragma unroll
		for (int i = 0; i < MAX_VLAN_TAGS; i++) {
			__u8 *tag = s->tag;
			if (proto != ETH_P_8021Q_ && proto != ETH_P_8021AD_)
				break;
			if (load(skb, off, tag, 4) < 0)
				break;
			__u16 vid = be16_at(&tag[0]) & 0x0fff;
			if (tags == 0)
				vlan = vid;
			else if (tags == 1)
				inner_vlan = vid;
			tags++;
			proto = be16_at(&tag[2]);
			off += 4;
		}
	}

	key->vlan_id = vlan;
	key->inner_vlan_id = inner_vlan;
	key->netns_ino = NETNS_INO;
	key->sampling_tag = SAMPLING_TAG;
	key->direction = direction;
	key->ingress_ifindex = skb->ingress_ifindex;
	key->egress_ifindex = direction == FLOWCTL_DIR_EGRESS ? skb->ifindex : 0;

	if (proto != ETH_P_IP && proto != ETH_P_IPV6) {
		/* Off the fast path: IP, tagged or not, never gets here. */
		if (proto == ETH_P_MPLS_UC_ || proto == ETH_P_MPLS_MC_)
			proto = parse_mpls(skb, s, &off);
		if (proto != ETH_P_IP && proto != ETH_P_IPV6) {
			count_non_ip(skb);
			return TC_ACT_UNSPEC;
		}
	}
	int ok;
	if (proto == ETH_P_IP)
		ok = parse_ipv4(skb, off, s);
	else
		ok = parse_ipv6(skb, off, s);
	if (!ok) {
		count_malformed(skb);
		return TC_ACT_UNSPEC;
	}
	wire_size(skb, s, off);
	record(s);
	return TC_ACT_UNSPEC;
}

SEC("classifier")
int flowctl_egress(struct __sk_buff *skb)
{
	return meter(skb, FLOWCTL_DIR_EGRESS);
}

SEC("classifier")
int flowctl_ingress(struct __sk_buff *skb)
{
	return meter(skb, FLOWCTL_DIR_INGRESS);
}

char _license[] SEC("license") = "Dual MIT/GPL";

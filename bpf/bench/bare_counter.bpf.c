// SPDX-License-Identifier: MIT
/*
 * Bare counter: the cheapest honest per-flow tc meter, the baseline the
 * flowctl datapath is benchmarked against (misc/bench/datapath.sh).
 *
 * Direct packet access, IPv4 5-tuple key (ports 0 for non-TCP/UDP and
 * non-first fragments), per-CPU hash of {packets, bytes}. Non-IPv4 frames
 * and frames whose headers are not in the linear area are ignored. Never
 * drops or changes a packet.
 *
 * bare_counter hashes the 16-byte 5-tuple; bare_counter_wide the same
 * 5-tuple padded with zeros to 60 bytes, the width of flowctl's key (which
 * also holds IPv6 addresses, the interface, the direction, VLAN, MPLS, ...):
 * the two tell what the key's width alone costs the kernel's hash.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct bare_key {
	__u32 src;
	__u32 dst;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* The 5-tuple as wide as flowctl's struct flow_key (60 bytes). */
struct bare_wide_key {
	struct bare_key tuple;
	__u8 zeros[44];
};

struct bare_value {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bare_key);
	__type(value, struct bare_value);
} bare_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct bare_wide_key);
	__type(value, struct bare_value);
} bare_flows_wide SEC(".maps");

/* The packet's 5-tuple into key; 0 for frames that are not counted. */
static __always_inline int parse(struct __sk_buff *skb, struct bare_key *key)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	key->src = ip->saddr;
	key->dst = ip->daddr;
	key->proto = ip->protocol;
	if ((ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) &&
	    !(ip->frag_off & bpf_htons(0x1fff))) {
		__u16 *ports = (void *)ip + ip->ihl * 4;
		if ((void *)(ports + 2) <= data_end) {
			key->sport = ports[0];
			key->dport = ports[1];
		}
	}
	return 1;
}

/* Adds the packet to the flow key in map (a per-CPU hash). */
static __always_inline void count(void *map, const void *key, struct __sk_buff *skb)
{
	struct bare_value *v = bpf_map_lookup_elem(map, key);
	if (v) {
		v->packets += 1;
		v->bytes += skb->len;
	} else {
		struct bare_value fresh = { .packets = 1, .bytes = skb->len };
		bpf_map_update_elem(map, key, &fresh, BPF_NOEXIST);
	}
}

SEC("classifier")
int bare_counter(struct __sk_buff *skb)
{
	struct bare_key key = {};
	if (parse(skb, &key))
		count(&bare_flows, &key, skb);
	return TC_ACT_UNSPEC;
}

SEC("classifier")
int bare_counter_wide(struct __sk_buff *skb)
{
	struct bare_wide_key key = {};
	if (parse(skb, &key.tuple))
		count(&bare_flows_wide, &key, skb);
	return TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "Dual MIT/GPL";

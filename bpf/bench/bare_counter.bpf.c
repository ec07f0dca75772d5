// SPDX-License-Identifier: MIT
/*
 * Bare counter: the cheapest honest per-flow tc meter, the baseline the
 * flowctl datapath is benchmarked against (misc/bench/datapath.sh).
 *
 * Direct packet access, IPv4 5-tuple key (ports 0 for non-TCP/UDP and
 * non-first fragments), per-CPU hash of {packets, bytes}. Non-IPv4 frames
 * and frames whose headers are not in the linear area are ignored. Never
 * drops or changes a packet.
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

SEC("classifier")
int bare_counter(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_UNSPEC;

	struct bare_key key = {
		.src = ip->saddr,
		.dst = ip->daddr,
		.proto = ip->protocol,
	};
	if ((ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) &&
	    !(ip->frag_off & bpf_htons(0x1fff))) {
		__u16 *ports = (void *)ip + ip->ihl * 4;
		if ((void *)(ports + 2) <= data_end) {
			key.sport = ports[0];
			key.dport = ports[1];
		}
	}

	struct bare_value *v = bpf_map_lookup_elem(&bare_flows, &key);
	if (v) {
		v->packets += 1;
		v->bytes += skb->len;
	} else {
		struct bare_value fresh = { .packets = 1, .bytes = skb->len };
		bpf_map_update_elem(&bare_flows, &key, &fresh, BPF_NOEXIST);
	}
	return TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "Dual MIT/GPL";

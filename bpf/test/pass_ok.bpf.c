// SPDX-License-Identifier: MIT
/*
 * A tc program that ends processing of every packet with TC_ACT_OK, as
 * firewalls and CNIs such as Cilium do: a program after it on the same hook
 * never sees the packet. The chain-order tests attach it next to flowctl.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("classifier")
int pass_ok(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Dual MIT/GPL";
